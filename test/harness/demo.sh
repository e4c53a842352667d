#!/usr/bin/env bash
# make demo: shows pg_consent at work on a sample shop of 2,000 customers.
#
# Starts a throwaway PostgreSQL 15 cluster with pg_consent preloaded
# (pg_virtualenv: the server runs as an ordinary user and is removed
# afterwards, also on failure), then runs test/demo/*.sql in order, each in
# its own psql session as the superuser:
#   01_setup.sql          the shop, its customers, the application role
#                         shop_app and the consent each customer gave
#   02_four_sessions.sql  one query under no purpose, marketing, personalize
#                         and as the superuser, and the shares side by side
#   03_copy_withdraw.sql  COPY TO, a withdrawal from another session, and
#                         what the application cannot do
# Everything printed is output of the server; the scripts stop at the first
# failing statement (ON_ERROR_STOP) and this script then exits non-zero.
# Expects the extension to be built and installed (make demo does both).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/lib/postgresql/15/bin:$PATH

if ! command -v pg_virtualenv >/dev/null; then
    echo "demo: pg_virtualenv not found; run 'make demo', which installs postgresql-common" >&2
    exit 1
fi

CONSENT_DEMO_DIR=$(pwd)/test/demo
# The withdrawal of part 3 runs in a second session started by psql's \!;
# psql 15 cannot see that command fail, so the command leaves this file.
CONSENT_DEMO_FAILED=$(mktemp -u "${TMPDIR:-/tmp}/pg_consent_demo_failed.XXXXXX")
export CONSENT_DEMO_DIR CONSENT_DEMO_FAILED
trap 'rm -f "$CONSENT_DEMO_FAILED"' EXIT

# pg_virtualenv takes port 5432 unless PGPORT says otherwise, also when
# another throwaway cluster (make test) is using it: take the first free one.
port_in_use() {
    [ -e "/var/run/postgresql/.s.PGSQL.$1" ] || (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
if [ -z "${PGPORT:-}" ]; then
    PGPORT=5432
    while port_in_use "$PGPORT"; do PGPORT=$((PGPORT + 1)); done
    export PGPORT
fi

rc=0
# shellcheck disable=SC2016 # expanded by the inner shell, inside the environment
pg_virtualenv -t -v 15 -o shared_preload_libraries=pg_consent bash -c '
    set -euo pipefail
    # the client runs as the caller: it must be able to read the scripts
    for script in "$CONSENT_DEMO_DIR"/[0-9]*.sql; do
        psql -X -v ON_ERROR_STOP=1 -f "$script" 2>&1
    done
' || rc=$?
if [ $rc -eq 0 ] && [ -e "$CONSENT_DEMO_FAILED" ]; then
    echo "demo: the withdrawal in the second session failed" >&2
    rc=1
fi
if [ $rc -ne 0 ]; then
    echo "demo: FAILED (exit code $rc)" >&2
fi
exit $rc
