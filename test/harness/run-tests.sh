#!/usr/bin/env bash
# Runs every test suite of pg_consent against real PostgreSQL 15 servers and
# ends with one summary line "N passed, M failed".  Expects the extension to
# be built and installed (make test does both first).
#
# Suites: static checks (test/harness/check-*.sh), pg_regress (sql/), the
# isolation tests (test/isolation/), shell scenarios that restart a cluster
# (test/harness/scenario-*.sh) and TAP tests (test/t/*.pl).  Servers run as
# an ordinary user: pg_virtualenv and PostgreSQL::Test::Cluster see to that.
#
# CONSENT_VALGRIND=1 runs the pg_regress suite with the server under valgrind.
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
export PATH=/usr/lib/postgresql/15/bin:$PATH
log_dir=$top/test/harness/log
rm -rf "$log_dir"; mkdir -p "$log_dir"
passed=0
failed=0
failures=()

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1"; }

# Counts "... ok" and "... FAILED" lines of a pg_regress-style log.
count_regress() {
    local name=$1 log=$2 ok bad
    ok=$(grep -cE '^(test |     |ok [0-9]+ +- |[ ]*)?[a-z0-9_-]+ +\.\.\. ok' "$log" || true)
    bad=$(grep -cE '\.\.\. FAILED|\.\.\. failed' "$log" || true)
    grep -E '\.\.\. (FAILED|failed)' "$log" | sed "s/^/  $name: /"
    passed=$((passed + ok))
    failed=$((failed + bad))
    if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
        fail "$name: the suite did not run (see $log)"
    fi
    [ "$bad" -gt 0 ] && failures+=("$name ($bad failed)")
}

echo "== static checks"
for check in test/harness/check-*.sh; do
    if "$check" >"$log_dir/$(basename "$check").log" 2>&1; then pass "$check"; else fail "$check"; cat "$log_dir/$(basename "$check").log"; fi
done

echo "== pg_regress and isolation (server with shared_preload_libraries = pg_consent)"
server_opts=(-o "shared_preload_libraries=pg_consent" -o "max_worker_processes=16" -o "log_min_messages=warning")
# two steps: PGXS installcheck stops after the first failing pg_regress suite
make_check='make --no-print-directory installcheck ISOLATION=; r=$?; make --no-print-directory installcheck REGRESS= || r=1; exit $r'
if [ "${CONSENT_VALGRIND:-}" = 1 ]; then
    echo "(valgrind: see test/harness/valgrind.sh)"
    make_check="test/harness/valgrind.sh"
fi
pg_virtualenv -t -v 15 "${server_opts[@]}" sh -c "$make_check" >"$log_dir/installcheck.log" 2>&1
rc=$?
sed -n '/^test \|^ok \|^not ok\|\.\.\. \|^=====/p' "$log_dir/installcheck.log"
count_regress installcheck "$log_dir/installcheck.log"
if [ $rc -ne 0 ]; then
    grep -q '\.\.\. FAILED\|\.\.\. failed' "$log_dir/installcheck.log" || fail "installcheck exited with $rc (see $log_dir/installcheck.log)"
    for d in regression.diffs output_iso/regression.diffs; do [ -f "$d" ] && head -n 200 "$d"; done
fi

echo "== scenarios"
for scenario in test/harness/scenario-*.sh; do
    [ -e "$scenario" ] || continue
    if "$scenario" >"$log_dir/$(basename "$scenario").log" 2>&1; then pass "$scenario"; else fail "$scenario"; tail -n 40 "$log_dir/$(basename "$scenario").log"; fi
done

echo "== Citus (for the Citus TAP tests, test/t/06*_citus*.pl)"
if [ "${pg_major:-15}" = 15 ]; then
    # builds and installs Citus 13.2.2 when missing (cached), exit 3: no Citus and no source
    citus_start=$(date +%s)
    test/harness/citus.sh >"$log_dir/citus.log" 2>&1; citus_rc=$?
    case $citus_rc in
        0) pass "test/harness/citus.sh: Citus available ($(( $(date +%s) - citus_start )) s)" ;;
        3) echo "skip Citus: not installed and no source to build it from; the Citus TAP tests skip"; cat "$log_dir/citus.log" ;;
        *) fail "test/harness/citus.sh exited with $citus_rc: Citus could not be built or installed (see $log_dir/citus.log)"
           tail -n 30 "$log_dir/citus.log" ;;
    esac
else
    echo "skip Citus: test/harness/citus.sh builds Citus 13.2.2 for PostgreSQL 15 only, this is PostgreSQL ${pg_major:-15}; the Citus TAP tests skip unless Citus is installed for it"
fi

echo "== TAP"
if ls test/t/*.pl >/dev/null 2>&1; then
    if test/harness/tap.sh >"$log_dir/tap.log" 2>&1; then :; fi
    grep -E '^(ok|not ok) ' "$log_dir/tap.log" | sed 's/^/  /' | head -n 200
    tap_ok=$(grep -cE '^ *ok [0-9]+' "$log_dir/tap.log" || true)
    # "not ok ... # TODO" marks a documented known limit (docs/masking.md), not a failure
    tap_bad=$(grep -E '^ *not ok [0-9]+' "$log_dir/tap.log" | grep -vc '# TODO' || true)
    passed=$((passed + tap_ok)); failed=$((failed + tap_bad))
    if ! grep -q '^Result: PASS' "$log_dir/tap.log"; then
        fail "TAP suite (see $log_dir/tap.log)"; tail -n 60 "$log_dir/tap.log"
    fi
fi

echo
if [ ${#failures[@]} -gt 0 ]; then printf 'failed: %s\n' "${failures[@]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
