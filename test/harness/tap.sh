#!/usr/bin/env bash
# Runs the TAP tests of pg_consent (test/t/*.pl, PostgreSQL::Test::Cluster)
# with prove and ends with prove's "Result: PASS" or "Result: FAIL".
#
# The PostgreSQL: $PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config);
# its bindir comes first in PATH, its PGXS gives pg_regress and the TAP
# modules.  PostgreSQL refuses to run as root.  As root, this script runs the tests as
# an ordinary system user (TAP_USER, default pgconsent; created when
# missing) in a copy of test/t it owns; as any other user it runs them in
# test/t itself.  Expects the extension to be installed (make install).
#
# The node logs end up in test/harness/log/tap/ (kept for a failed run).
# TAP_USER=name picks the user, PROVE_FLAGS adds flags for prove
# (e.g. PROVE_FLAGS='--timer'), arguments select test files (t/001_preload.pl).
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)

# The PostgreSQL under test: $PG_CONFIG (run-tests.sh passes make test's),
# by default the Debian-packaged PostgreSQL 15.
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
case $pg_config in */*) ;; *) pg_config=$(command -v "$pg_config" || echo "$pg_config") ;; esac
pgbin=$("$pg_config" --bindir 2>/dev/null) || { echo "tap: $pg_config does not run (set PG_CONFIG; Debian: postgresql-server-dev-15)"; echo "Result: FAIL"; exit 1; }
pgxs=$(dirname "$(dirname "$(dirname "$("$pg_config" --pgxs)")")")
export PATH=$pgbin:$PATH
export PERL5LIB=$pgxs/src/test/perl${PERL5LIB:+:$PERL5LIB}
export PG_REGRESS=$pgxs/src/test/regress/pg_regress

for need in "$pgbin/pg_ctl" "$PG_REGRESS" "$pgxs/src/test/perl/PostgreSQL/Test/Cluster.pm"; do
    [ -e "$need" ] || { echo "tap: $need is missing ($("$pg_config" --version); Debian: postgresql-NN and postgresql-server-dev-NN; a source build needs --enable-tap-tests)"; echo "Result: FAIL"; exit 1; }
done
echo "tap: $("$pg_config" --version) ($pg_config)"
perl -MIPC::Run -e 1 2>/dev/null || { echo "tap: perl module IPC::Run is missing (Debian: libipc-run-perl)"; echo "Result: FAIL"; exit 1; }

tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
    tests=()
    for f in test/t/*.pl; do tests+=("t/$(basename "$f")"); done
fi

# t/031_pg_upgrade.pl upgrades a PostgreSQL 15 cluster to the server under
# test: run when that server is newer than 15 (the 15 one is Debian's, or
# PG_UPGRADE_OLD_CONFIG); pg_consent must be installed in both
old_config=${PG_UPGRADE_OLD_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ -z "${PG_UPGRADE_NEW_CONFIG:-}" ] && [ -x "$old_config" ] &&
   [ "$("$pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')" -gt 15 ]; then
    export PG_UPGRADE_OLD_CONFIG=$old_config PG_UPGRADE_NEW_CONFIG=$pg_config
fi

log_dest=$top/test/harness/log/tap
rm -rf "$log_dest"

if [ "$(id -u)" -ne 0 ]; then
    # test/t is the working directory: PostgreSQL::Test::Utils puts its
    # nodes and logs in ./tmp_check (test/t/tmp_check, cleaned by make clean).
    cd "$top/test"
    rm -rf t/tmp_check
    rc=0
    # the nodes and logs in t/tmp_check and t/tmp_check/log: PostgreSQL 15
    # puts them there by itself, later versions read these two variables
    (cd t && TESTDATADIR=$top/test/t/tmp_check TESTLOGDIR=$top/test/t/tmp_check/log \
        prove -v ${PROVE_FLAGS:-} "${tests[@]#t/}") || rc=$?
    mkdir -p "$log_dest" 2>/dev/null && cp -r t/tmp_check/log/. "$log_dest/" 2>/dev/null || true
    exit $rc
fi

user=${TAP_USER:-pgconsent}
if ! id "$user" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
fi
work=$(mktemp -d /tmp/pg_consent_tap.XXXXXX)
cleanup() { [ -n "${PG_TEST_NOCLEAN:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
cp -r "$top/test/t" "$work/t"
rm -rf "$work/t/tmp_check"
chown -R "$user:" "$work"

# TESTDATADIR, TESTLOGDIR: where PostgreSQL after 15 puts the nodes and logs
# (15 puts them in t/tmp_check and t/tmp_check/log by itself)
env_vars=(PATH="$PATH" PERL5LIB="$PERL5LIB" PG_REGRESS="$PG_REGRESS" HOME="$work"
          TESTDATADIR="$work/t/tmp_check" TESTLOGDIR="$work/t/tmp_check/log"
          LANG=C.UTF-8 LC_ALL=C.UTF-8 PROVE_FLAGS="${PROVE_FLAGS:-}")
[ -n "${PG_UPGRADE_NEW_CONFIG:-}" ] && env_vars+=(PG_UPGRADE_NEW_CONFIG="$PG_UPGRADE_NEW_CONFIG")
[ -n "${PG_UPGRADE_OLD_CONFIG:-}" ] && env_vars+=(PG_UPGRADE_OLD_CONFIG="$PG_UPGRADE_OLD_CONFIG")
[ -n "${PG_TEST_NOCLEAN:-}" ] && env_vars+=(PG_TEST_NOCLEAN=1)
[ -n "${PG_TEST_TIMEOUT_DEFAULT:-}" ] && env_vars+=(PG_TEST_TIMEOUT_DEFAULT="$PG_TEST_TIMEOUT_DEFAULT")
rc=0
# shellcheck disable=SC2016
runuser -u "$user" -- env -i "${env_vars[@]}" \
    sh -c 'cd "$1/t" && shift && exec prove -v $PROVE_FLAGS "$@"' prove "$work" "${tests[@]#t/}" || rc=$?
mkdir -p "$log_dest" && cp -r "$work/t/tmp_check/log/." "$log_dest/" 2>/dev/null || true
exit $rc
