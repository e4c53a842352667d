#!/usr/bin/env bash
# `make fuzz`: fuzzes the masks and the parsers of pg_consent for a bounded
# time, in two parts (test/fuzz/README.md says what each covers and why):
#
#  1. mask_fuzzer, a libFuzzer target (clang -fsanitize=fuzzer,address,
#     undefined) built from src/mask.cpp and src/boundary.cpp unchanged:
#     the mask spec parser and the masks on arbitrary bytes, with the
#     promises of src/mask.h checked on every result;
#  2. a SQL-driven fuzz loop against a real server (a throwaway cluster
#     under pg_virtualenv, pg_consent preloaded): random mask specs, keys,
#     subjects, type names and values through consent.mask_value,
#     check_mask, define_category, define_purpose, grant, withdraw,
#     granted, set_mask, discover and masked reads.  It fails when the
#     server crashes (the log names the statement) or raises an internal
#     error (XX000 and the like).
#
# Environment:
#   FUZZ_SECONDS  time for each part, default 60
#   FUZZ_SEED     seed of both parts, default 1 (the same seed replays the
#                 same inputs; how many run depends on the machine's speed)
#   FUZZ_DIR      build directory and libFuzzer corpus, kept between runs,
#                 default /tmp/pg_consent_fuzz
#   FUZZ_PARTS    'libfuzzer sql' (default), or just one of them
# Not part of `make test`.  Exit status 0 when neither part found anything.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
export PATH=/usr/lib/postgresql/15/bin:$PATH
seconds=${FUZZ_SECONDS:-60}
seed=${FUZZ_SEED:-1}
dir=${FUZZ_DIR:-/tmp/pg_consent_fuzz}
parts=${FUZZ_PARTS:-libfuzzer sql}
mkdir -p "$dir/corpus"
status=0

# The extension must be built and installed for the SQL part.
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
if ! make --no-print-directory all >/dev/null || ! $SUDO make --no-print-directory install >/dev/null; then
    echo "fuzz: building or installing pg_consent failed"; exit 1
fi

# --- 1. libFuzzer ----------------------------------------------------------------
if [[ " $parts " == *" libfuzzer "* ]]; then
    echo "== libFuzzer: mask_fuzzer for $seconds s (seed $seed, corpus $dir/corpus)"
    server=$(pg_config --includedir-server)
    pglib=$(pg_config --pkglibdir)  # libpgcommon_shlib.a and libpgport_shlib.a
    # shellcheck disable=SC2046
    if ! clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -Wall -Wno-unused-parameter -I"$top/src" -I"$top/test/fuzz" -isystem "$server" \
            $(pkg-config --cflags icu-uc icu-i18n) \
            "$top/src/mask.cpp" "$top/src/boundary.cpp" "$top/test/fuzz/pg_stubs.cpp" "$top/test/fuzz/mask_fuzzer.cpp" \
            -L"$pglib" -lpgcommon_shlib -lpgport_shlib $(pkg-config --libs icu-uc icu-i18n) -lcrypto \
            -o "$dir/mask_fuzzer" 2>"$dir/build.log"; then
        cat "$dir/build.log"
        echo "fuzz: building mask_fuzzer failed (needs clang, libFuzzer, ICU and postgresql-server-dev-15)"
        exit 1
    fi
    (cd "$dir" && ./mask_fuzzer -seed="$seed" -max_total_time="$seconds" -dict="$top/test/fuzz/mask.dict" \
        -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/" corpus \
        >"$dir/libfuzzer.log" 2>&1)
    rc=$?
    grep -a -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$dir/libfuzzer.log"
    if [ $rc -ne 0 ]; then
        grep -a -E 'broken promise|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|pg_stubs:' \
            "$dir/libfuzzer.log" | head -n 5
        grep -a -A 30 -E '^==[0-9]+==ERROR' "$dir/libfuzzer.log" | head -n 40
        crash=$(grep -a -o "Test unit written to .*" "$dir/libfuzzer.log" | tail -n 1 | sed 's/Test unit written to //')
        echo "FAIL libFuzzer found a problem; reproduce with: $dir/mask_fuzzer $crash"
        status=1
    else
        echo "ok   libFuzzer: nothing found"
    fi
fi

# --- 2. the SQL loop ---------------------------------------------------------------
if [[ " $parts " == *" sql "* ]]; then
    echo "== SQL fuzz loop for $seconds s (seed $seed)"
    # shellcheck disable=SC2016
    pg_virtualenv -t -v 15 -o shared_preload_libraries=pg_consent -o log_min_messages=warning \
        sh -c '
        top=$1 seconds=$2 seed=$3
        log=$(dirname "$PG_CLUSTER_CONF_ROOT")/log/postgresql-15-regress.log
        psql -X -q -v ON_ERROR_STOP=1 -f "$top/test/fuzz/sql_fuzz.sql" >/dev/null || { echo "setup failed"; exit 1; }
        end=$(( $(date +%s) + seconds )); batch=0; rc=0
        while [ "$(date +%s)" -lt "$end" ]; do
            batch=$((batch + 1))
            # setseed() takes a number in [-1, 1]: one per batch, from the seed
            printf "SET client_min_messages = warning;\nSELECT setseed(%s);\nSELECT fz_statement() FROM generate_series(1, 100) \\\\gexec\n" \
                "$(awk -v s="$seed" -v b="$batch" "BEGIN { printf \"%.6f\", ((s * 7919 + b * 104729) % 2000000) / 1000000 - 1 }")" |
                psql -X -q -o /dev/null 2>"$top/.fuzz_batch_err.$$" || true
            if grep -q -E "server closed the connection|terminated abnormally|connection to server was lost" "$top/.fuzz_batch_err.$$"; then
                echo "FAIL the server crashed in batch $batch:"
                grep -E "terminated by signal|Failed process was running" "$log" | tail -n 4
                rc=1; break
            fi
            if ! psql -X -Atc "SELECT 1" >/dev/null 2>&1; then echo "FAIL the server does not answer after batch $batch"; rc=1; break; fi
        done
        rm -f "$top/.fuzz_batch_err.$$"
        if grep -E "terminated by signal|was terminated by exception|PANIC" "$log"; then rc=1; fi
        echo "$batch batches of 100 statements; outcomes per operation:"
        psql -X -A -t -f "$top/test/fuzz/sql_fuzz_report.sql" | sed "s/^/  /"
        findings=$(psql -X -Atc "SELECT count(*) FROM fz_findings" 2>/dev/null || echo 0)
        if [ "${findings:-0}" != 0 ]; then
            echo "FAIL $findings internal error(s):"
            psql -X -A -t -c "SELECT * FROM fz_findings LIMIT 10"
            rc=1
        fi
        exit $rc' fuzz "$top" "$seconds" "$seed" 2>&1 | grep -v -E '^(Creating new PostgreSQL cluster|Dropping cluster)'
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then status=1; else echo "ok   SQL fuzz loop: no crash, no internal error"; fi
fi

exit $status
