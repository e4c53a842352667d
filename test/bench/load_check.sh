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
# test/bench/lib.sh); run by make bench or by hand, not by make test:
#   test/bench/load_check.sh
#   LOAD_SECONDS=20 LOAD_CUSTOMERS=2000 test/bench/load_check.sh
#   PG_CONFIG=$(test/harness/pg-build.sh 18) test/bench/load_check.sh
# Settings: LOAD_SECONDS (60), LOAD_CUSTOMERS (10000), LOAD_CLIENTS (32),
# LOAD_CHANGES_PER_SECOND (100).  LOAD_CUSTOMERS=20 concentrates reads and
# changes on few subjects, so that many reads run while a change of their
# subject is in flight.  Needs the extension installed (make install).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/bench/lib.sh
. "$here/lib.sh"
# The PostgreSQL checked: $PG_CONFIG (make bench passes its PG_CONFIG), by
# default the Debian-packaged PostgreSQL 15; its bindir's psql and pgbench.
bench_postgres "load check"
# a throwaway cluster (lib.sh), fsync off as under pg_virtualenv
server_opts=(shared_preload_libraries=pg_consent max_connections=100
             max_locks_per_transaction=128 log_min_messages=warning fsync=off)
in_throwaway_cluster LOAD_CHECK_CLUSTER /tmp/pg_consent_load.XXXXXX "$@"

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
