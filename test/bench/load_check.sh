#!/usr/bin/env bash
# Consistency under load: 32 application sessions read random customers
# under mixed purposes (personalize, marketing, analytics) with pgbench for
# a bounded time while one consent-service session commits grants and
# withdrawals at about 100 per second.  Every read records, per tagged cell
# (e-mail, name, date of birth), whether it was revealed, with the subject,
# purpose and statement time; afterwards every cell is checked against
# consent.granted(subject, category, purpose, at => statement time) (rule in
# load_check/check.sql).  Prints sessions, statements, cells checked and
# violations, and fails unless violations, over-masked cells and checker
# disagreements are all 0.
#
# Runs in a throwaway cluster of $PG_CONFIG's PostgreSQL (default the
# Debian-packaged 15: pg_virtualenv; another installation: initdb + pg_ctl,
# below); run by make bench or by hand, not by make test:
#   test/bench/load_check.sh
#   LOAD_SECONDS=20 LOAD_CUSTOMERS=2000 test/bench/load_check.sh
#   PG_CONFIG=$(test/harness/pg-build.sh 18) test/bench/load_check.sh
# Settings: LOAD_SECONDS (60), LOAD_CUSTOMERS (10000), LOAD_CLIENTS (32),
# LOAD_CHANGES_PER_SECOND (100).  LOAD_CUSTOMERS=20 concentrates reads and
# changes on few subjects, so that many reads run while a change of their
# subject is in flight.  Needs the extension installed (make install).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# The PostgreSQL checked: $PG_CONFIG (make bench passes its PG_CONFIG), by
# default the Debian-packaged PostgreSQL 15; its bindir's psql and pgbench.
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
case $pg_config in */*) ;; *) pg_config=$(command -v "$pg_config" || echo "$pg_config") ;; esac
pg_version=$("$pg_config" --version 2>/dev/null) ||
    { echo "load check: $pg_config does not run (set PG_CONFIG)" >&2; exit 1; }
pg_major=$(echo "$pg_version" | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p')
pgbin=$("$pg_config" --bindir)
export PG_CONFIG=$pg_config PATH=$pgbin:$PATH
if [ -z "${LOAD_CHECK_CLUSTER:-}" ]; then
    export LOAD_CHECK_CLUSTER=1
    # a free port, so that it runs next to other throwaway clusters
    PGPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export PGPORT
    server_opts=(shared_preload_libraries=pg_consent max_connections=100
                 max_locks_per_transaction=128 log_min_messages=warning)
    if [ "$pgbin" = "/usr/lib/postgresql/$pg_major/bin" ] && [ -z "${CONSENT_TEMP_INSTANCE:-}" ] &&
       command -v pg_virtualenv >/dev/null; then
        exec pg_virtualenv -t -v "$pg_major" "${server_opts[@]/#/-o}" "$0" "$@"
    fi
    # Any other installation (CONSENT_TEMP_INSTANCE=1: a Debian one too): a
    # throwaway cluster made with its initdb and pg_ctl as pg_virtualenv
    # makes one (as in run.sh: password authentication, TCP to localhost,
    # fsync off), the server as BENCH_USER (default pgconsent) when run as root.
    inst=$(mktemp -d /tmp/pg_consent_load.XXXXXX)
    owner=()
    if [ "$(id -u)" -eq 0 ]; then
        user=${BENCH_USER:-pgconsent}
        id "$user" >/dev/null 2>&1 ||
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
        chown "$user:" "$inst"
        chmod 755 "$inst"
        owner=(runuser -u "$user" --)
    fi
    PGPASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    export PGHOST=localhost PGUSER=postgres PGDATABASE=postgres PGPASSWORD
    unset PGHOSTADDR PGSERVICE PGOPTIONS
    stop_instance() {
        (cd / && "${owner[@]}" "$pgbin/pg_ctl" -D "$inst/data" -m fast -w -t 120 stop) >/dev/null 2>&1 ||
            (cd / && "${owner[@]}" "$pgbin/pg_ctl" -D "$inst/data" -m immediate -w stop) >/dev/null 2>&1 || true
        rm -rf "$inst"
    }
    trap stop_instance EXIT
    trap 'exit 130' INT TERM
    (umask 077 && echo "$PGPASSWORD" >"$inst/pwfile")
    [ ${#owner[@]} -eq 0 ] || chown "$user:" "$inst/pwfile"
    if ! (cd / && "${owner[@]}" "$pgbin/initdb" -D "$inst/data" -U postgres --pwfile="$inst/pwfile" \
              -A scram-sha-256 --no-sync) >"$inst/initdb.log" 2>&1; then
        cat "$inst/initdb.log" >&2; exit 1
    fi
    {
        echo "listen_addresses = 'localhost'"
        echo "port = $PGPORT"
        echo "unix_socket_directories = '$inst'"
        echo "fsync = off"
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
fi

seconds=${LOAD_SECONDS:-60}
customers=${LOAD_CUSTOMERS:-10000}
clients=${LOAD_CLIENTS:-32}
rate=${LOAD_CHANGES_PER_SECOND:-100}
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# pgbench and psql run in $work: the scripts are readable there by anyone
cp "$here"/load_check/*.sql "$work/"
chmod -R a+rX "$work"
cd "$work"

echo "load check on PostgreSQL $(psql -X -At -c 'SHOW server_version') ($pg_config): $customers customers, $clients reading sessions and 1 recording session for ${seconds}s, ~$rate changes/s"
start=$(date +%s)
psql -X -q -v customers="$customers" -v password="$password" -f setup.sql >/dev/null
echo "setup: $(psql -X -At -c 'SELECT initial_events FROM load_meta') initial consent events ($(($(date +%s) - start))s)"

# The recorder, in the background, at a fixed rate (one session: see check.sql).
PGUSER=load_recorder PGPASSWORD=$password \
    pgbench -n -M prepared -c 1 -j 1 -R "$rate" -T "$seconds" -D customers="$customers" \
    -f change.sql >changes.out 2>changes.err &
recorder=$!

# The readers.
readers_rc=0
PGUSER=load_app PGPASSWORD=$password \
    pgbench -n -M prepared -c "$clients" -j 4 -T "$seconds" -D customers="$customers" \
    -f read_personalize.sql@1 -f read_marketing.sql@1 -f read_analytics.sql@1 >reads.out 2>reads.err \
    || readers_rc=$?
recorder_rc=0
wait "$recorder" || recorder_rc=$?

processed() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$1"; }
failed() { sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$1"; }
tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$1"; }
reads=$(processed reads.out)
changes=$(processed changes.out)
echo "readers: ${reads:-?} reads ($(tps reads.out) per second), $(failed reads.out) failed; pgbench exit $readers_rc"
echo "recorder: ${changes:-?} changes ($(tps changes.out) per second), $(failed changes.out) failed; pgbench exit $recorder_rc"
ok=1
if [ "$readers_rc" -ne 0 ] || [ "$recorder_rc" -ne 0 ]; then
    ok=0
    echo "pgbench failed:"; tail -n 20 reads.err changes.err
fi

echo "checking every cell ..."
start=$(date +%s)
psql -X -At -f check.sql >check.out || { cat check.out; echo "load check: FAIL (the check did not run)"; exit 1; }
echo "check took $(($(date +%s) - start))s"
value() { sed -n "s/^$1=//p" check.out; }
sed -n '/^unexplained: \|^oracle: /p' check.out

# each read transaction is SET + SELECT + INSERT, each change SELECT + INSERT
echo
echo "sessions:             $((clients + 1)) ($clients reading, 1 recording consent)"
echo "statements:           $(( ${reads:-0} * 3 + ${changes:-0} * 2 )) ($(value read_statements) reads logged, $(value changes_during_load) consent changes, $(value changes_acknowledged) acknowledged)"
echo "reads per purpose:    $(value reads_per_purpose) ($(value subjects_read) distinct subjects)"
echo "cells checked:        $(value cells_checked) ($(value cells_revealed) revealed, $(value cells_masked) masked)"
echo "decided during a change in flight: $(value cells_decided_during_a_change)"
echo "violations:           $(value violations) (revealed without a covering grant)"
echo "over-masked:          $(value over_masked) (masked although a grant was in effect)"
echo "checker disagreements: $(value oracle_disagreements) (consent.granted vs the ledger read in SQL)"
echo "checker controls:     $(value controls_flagged) of $(value controls) flipped cells flagged (must be all)"

[ "$(value read_statements)" = "$reads" ] || { ok=0; echo "the log holds $(value read_statements) reads, pgbench counted $reads"; }
[ "$(value read_statements)" -gt 0 ] || ok=0
[ "$(value controls)" -gt 0 ] && [ "$(value controls_flagged)" = "$(value controls)" ] || { ok=0; echo "the check missed flipped cells"; }
[ "$(value violations)" = 0 ] && [ "$(value over_masked)" = 0 ] && [ "$(value oracle_disagreements)" = 0 ] || ok=0
if [ "$ok" = 1 ]; then echo "load check: PASS"; else echo "load check: FAIL"; exit 1; fi
