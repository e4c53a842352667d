#!/usr/bin/env bash
# Runs the pg_regress suite of pg_consent (sql/, `make installcheck`) against
# a PostgreSQL server ($PG_CONFIG, default the Debian-packaged 15) that
# runs under valgrind memcheck, and fails when
# valgrind reported an error in any server process.
#
# run-tests.sh calls it instead of `make installcheck` when CONSENT_VALGRIND=1
# (inside pg_virtualenv, whose cluster it does not use): the server must be
# started under valgrind, so this script makes its own throwaway cluster:
#   initdb, then valgrind --trace-children=yes ... postgres -D <data>
# and runs `make installcheck` against it.  It can also be run on its own:
#   test/harness/valgrind.sh
#
# PostgreSQL refuses to run as root: as root, the cluster belongs to an
# ordinary system user (VALGRIND_USER, default pgconsent, created when
# missing), as for the TAP tests (test/harness/tap.sh).
#
# The output ends with pg_regress's lines and one more,
#   valgrind_memcheck ... ok        (or ... FAILED, with the errors)
# Exit status 0 when every test passed and valgrind reported nothing.
#
# Environment:
#   REGRESS='a b'        run only these pg_regress tests (default: all)
#   VALGRIND_ISOLATION=1 also run the isolation suite under valgrind
#   (ISOLATION='spec ...': only these specs)
#   VALGRIND_KEEP=1      keep the cluster and the valgrind logs
#   VALGRIND_USER=name   the user that owns the cluster when run as root
#   VALGRIND_OPTS='...'  more valgrind options (e.g. --track-origins=yes)
# The cluster's postgresql.conf sets consent_regress.light = on: tests with
# heavy parts (sql/80_hostile.sql) then use smaller sizes, since valgrind
# runs the server 20-50 times slower.
#
# Expects the extension to be built and installed (make test does both).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
# The PostgreSQL: $PG_CONFIG (run-tests.sh passes make test's), by default
# the Debian-packaged PostgreSQL 15; `make installcheck` uses the same.
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
case $pg_config in */*) ;; *) pg_config=$(command -v "$pg_config" || echo "$pg_config") ;; esac
pgbin=$("$pg_config" --bindir 2>/dev/null) || { echo "valgrind: $pg_config does not run (set PG_CONFIG)"; echo "valgrind_memcheck ... FAILED"; exit 1; }
export PG_CONFIG=$pg_config
export PATH=$pgbin:$PATH

command -v valgrind >/dev/null || { echo "valgrind: not installed (Debian: apt-get install valgrind)"; echo "valgrind_memcheck ... FAILED"; exit 1; }

supp=$top/test/harness/valgrind.supp
work=$(mktemp -d /tmp/pg_consent_valgrind.XXXXXX)
data=$work/data
vglogs=$work/valgrind
sock=$work/socket
port=$((50000 + $$ % 10000))
mkdir -p "$vglogs" "$sock"

as_owner=()
if [ "$(id -u)" -eq 0 ]; then
    user=${VALGRIND_USER:-pgconsent}
    if ! id "$user" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
    fi
    chown -R "$user:" "$work"
    chmod 755 "$work"
    as_owner=(runuser -u "$user" --)
fi

server_pid=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        "${as_owner[@]}" "$pgbin/pg_ctl" -D "$data" -m immediate -w -t 120 stop >/dev/null 2>&1 || kill "$server_pid" 2>/dev/null
    fi
    if [ -n "${VALGRIND_KEEP:-}" ]; then
        echo "valgrind: cluster and logs kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

echo "valgrind: cluster in $work (port $port)"
"${as_owner[@]}" "$pgbin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 || {
    cat "$work/initdb.log"; echo "valgrind_memcheck ... FAILED"; exit 1; }
cat >>"$data/postgresql.conf" <<EOF
shared_preload_libraries = 'pg_consent'
max_worker_processes = 16
max_prepared_transactions = 4
listen_addresses = ''
port = $port
unix_socket_directories = '$sock'
log_min_messages = warning
autovacuum = off
shared_buffers = 64MB
# valgrind makes everything slow: no timeouts, smaller test sizes
statement_timeout = 0
consent_regress.light = on
# no JIT: loading llvmjit.so trips valgrind inside ld.so (strncmp past a
# strdup'd rpath, not ours), and valgrind cannot check generated code
jit = off
EOF

# --trace-children=yes: follow exec'd helpers too (forks are followed anyway);
# --leak-check=no: PostgreSQL frees by memory context, not by free();
# error markers let us count the errors of every process afterwards.
# shellcheck disable=SC2054,SC2206  # the comma is valgrind's; VALGRIND_OPTS is split on purpose
valgrind_cmd=(valgrind --quiet --trace-children=yes --leak-check=no --gen-suppressions=all
              --num-callers=30 --error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END
              --suppressions="$supp" --log-file="$vglogs/%p.log" ${VALGRIND_OPTS:-}
              "$pgbin/postgres" -D "$data")
echo "valgrind: starting the server: ${valgrind_cmd[*]}"
"${as_owner[@]}" "${valgrind_cmd[@]}" >"$work/server.log" 2>&1 &
server_pid=$!

export PGHOST=$sock PGPORT=$port PGUSER=postgres PGDATABASE=postgres
unset PGPASSWORD PGSERVICE PGOPTIONS
ready=
for _ in $(seq 1 600); do
    if pg_isready -q; then ready=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 1
done
if [ -z "$ready" ]; then
    echo "valgrind: the server did not start"; tail -n 50 "$work/server.log"; cat "$vglogs"/*.log 2>/dev/null | head -n 100
    echo "valgrind_memcheck ... FAILED"; exit 1
fi
echo "valgrind: server up ($(psql -XAtc 'SELECT version()'))"

rc=0
start=$(date +%s)
regress_args=()
[ -n "${REGRESS:-}" ] && regress_args=(REGRESS="$REGRESS")
make --no-print-directory installcheck ISOLATION= "${regress_args[@]}" || rc=1
if [ "${VALGRIND_ISOLATION:-}" = 1 ]; then
    isolation_args=()
    [ -n "${ISOLATION:-}" ] && isolation_args=(ISOLATION="$ISOLATION")
    make --no-print-directory installcheck REGRESS= "${isolation_args[@]}" || rc=1
fi
echo "valgrind: the suite took $(( $(date +%s) - start )) s"

# Stop the server cleanly so every process writes its last valgrind report.
"${as_owner[@]}" "$pgbin/pg_ctl" -D "$data" -m fast -w -t 600 stop >/dev/null 2>&1 || rc=1
wait "$server_pid" 2>/dev/null
server_pid=

# Crashes show up in the server log even when valgrind stays silent.
if grep -E 'terminated by signal|was terminated by exception' "$work/server.log"; then
    echo "valgrind: a server process crashed (see above)"
    rc=1
fi

errors=$(cat "$vglogs"/*.log 2>/dev/null | grep -c 'VALGRINDERROR-BEGIN' || true)
processes=$(find "$vglogs" -name '*.log' | wc -l)
if [ "$errors" -gt 0 ]; then
    echo "valgrind: $errors error(s) reported in $processes server processes:"
    for f in "$vglogs"/*.log; do
        grep -q VALGRINDERROR-BEGIN "$f" || continue
        echo "--- $(basename "$f")"
        # each error with its stack, then the suppression valgrind suggests
        sed -n '/VALGRINDERROR-BEGIN/,/^}/p' "$f" | head -n 200
    done
    echo "valgrind_memcheck ... FAILED"
    rc=1
else
    echo "valgrind: no error in $processes server processes"
    echo "valgrind_memcheck ... ok"
fi
exit $rc
