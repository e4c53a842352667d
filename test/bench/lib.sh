# shellcheck shell=bash
# test/bench/lib.sh: what the benchmark scripts share (sourced, not run).
#
#   free_port              a free TCP port on localhost
#   bench_postgres NAME    the PostgreSQL measured: $PG_CONFIG, by default the
#                          Debian-packaged 15; sets pg_config, pg_version,
#                          pg_major, pgbin and exports PG_CONFIG and PATH
#                          (its bindir's psql and pgbench come first)
#   bench_owner DIR        as root, the servers run as BENCH_USER (default
#                          pgconsent, created when missing), which gets DIR:
#                          sets user and owner=(runuser -u $user --); as any
#                          other user owner=() (PostgreSQL refuses to run
#                          as root)
#   in_throwaway_cluster MARKER TEMPLATE ARGS...
#                          unless $MARKER is set: runs "$0 ARGS..." again in
#                          a throwaway cluster started with the settings in
#                          the array server_opts (name=value), and exits
#                          with its status

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

bench_postgres() { # name of the calling script, for the error message
    pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
    case $pg_config in */*) ;; *) pg_config=$(command -v "$pg_config" || echo "$pg_config") ;; esac
    pg_version=$("$pg_config" --version 2>/dev/null) ||
        { echo "$1: $pg_config does not run (set PG_CONFIG)" >&2; exit 1; }
    pg_major=$(echo "$pg_version" | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p')
    pgbin=$("$pg_config" --bindir)
    export PG_CONFIG=$pg_config PATH=$pgbin:$PATH
}

bench_owner() { # directory the server user gets
    owner=()
    if [ "$(id -u)" -eq 0 ]; then
        user=${BENCH_USER:-pgconsent}
        id "$user" >/dev/null 2>&1 ||
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
        chown "$user:" "$1"
        chmod 755 "$1"
        owner=(runuser -u "$user" --)
    fi
}

# The Debian-packaged PostgreSQL runs under pg_virtualenv.  Any other
# installation (built from source: test/harness/pg-build.sh;
# CONSENT_TEMP_INSTANCE=1 for a Debian one too) gets a cluster made with its
# initdb and pg_ctl as pg_virtualenv makes one, so that both measure the
# same thing: initdb with the caller's locale, password (scram-sha-256)
# authentication, clients over TCP to localhost, no SSL, a free port.
in_throwaway_cluster() { # marker variable, mktemp template, script arguments
    local marker=$1 template=$2 o rc
    shift 2
    [ -z "${!marker:-}" ] || return 0
    export "$marker=1"
    PGPORT=$(free_port)
    export PGPORT
    if [ "$pgbin" = "/usr/lib/postgresql/$pg_major/bin" ] && [ -z "${CONSENT_TEMP_INSTANCE:-}" ] &&
       command -v pg_virtualenv >/dev/null; then
        # shellcheck disable=SC2154  # server_opts: set by the caller
        exec pg_virtualenv -t -v "$pg_major" "${server_opts[@]/#/-o}" "$0" "$@"
    fi
    inst=$(mktemp -d "$template")
    bench_owner "$inst"
    PGPASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    export PGHOST=localhost PGUSER=postgres PGDATABASE=postgres PGPASSWORD
    unset PGHOSTADDR PGSERVICE PGOPTIONS
    # shellcheck disable=SC2317  # called by the EXIT trap
    stop_instance() {
        (cd / && "${owner[@]}" "$pgbin/pg_ctl" -D "$inst/data" -m fast -w -t 120 stop) >/dev/null 2>&1 ||
            (cd / && "${owner[@]}" "$pgbin/pg_ctl" -D "$inst/data" -m immediate -w stop) >/dev/null 2>&1 || true
        rm -rf "$inst"
    }
    trap stop_instance EXIT
    trap 'exit 130' INT TERM
    (umask 077 && echo "$PGPASSWORD" >"$inst/pwfile")
    [ ${#owner[@]} -eq 0 ] || chown "$user:" "$inst/pwfile"
    echo "throwaway cluster: $pg_version in $inst (port $PGPORT${user:+, server as user $user})"
    if ! (cd / && "${owner[@]}" "$pgbin/initdb" -D "$inst/data" -U postgres --pwfile="$inst/pwfile" \
              -A scram-sha-256 --no-sync) >"$inst/initdb.log" 2>&1; then
        cat "$inst/initdb.log" >&2; exit 1
    fi
    {
        echo "listen_addresses = 'localhost'"
        echo "port = $PGPORT"
        echo "unix_socket_directories = '$inst'"
        for o in "${server_opts[@]}"; do echo "${o%%=*} = '${o#*=}'"; done
    } >>"$inst/data/postgresql.conf"
    if ! (cd / && "${owner[@]}" "$pgbin/pg_ctl" -D "$inst/data" -l "$inst/server.log" -w -t 120 start) \
           >"$inst/pg_ctl.log" 2>&1; then
        cat "$inst/pg_ctl.log" "$inst/server.log" >&2; exit 1
    fi
    rc=0
    "$0" "$@" || rc=$?
    [ "$rc" -eq 0 ] || { echo "*** server log (last 100 lines) ***"; tail -n 100 "$inst/server.log"; }
    exit "$rc"
}
