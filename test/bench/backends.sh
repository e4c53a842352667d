#!/usr/bin/env bash
# make bench-backends: many backends at once.  BENCH_ROWS customers (default
# 1,000,000) with tagged e-mail and name and consent for about half of each,
# in a throwaway cluster of $PG_CONFIG's PostgreSQL (default the Debian 15;
# test/bench/lib.sh) with max_connections = 260.  pgbench point look-ups
# (prepared, 2 threads) with BENCH_CLIENTS clients (default "2 50 200"),
# masked and raw table in turn, BENCH_TPS_ROUNDS rounds (default 3); at the
# largest count also under 100 consent changes/s on the same server, the
# private memory (RssAnon) of the clients' backends mid-run, and a new
# connection per transaction (-C).  Prints TPS and ratios; writes
# test/bench/results-backends.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/bench/lib.sh
. "$here/lib.sh"
bench_postgres bench-backends
server_opts=(shared_preload_libraries=pg_consent shared_buffers=1GB fsync=on max_connections=260
             max_parallel_workers_per_gather=0 jit=off)
in_throwaway_cluster BENCH_BACKENDS_CLUSTER /tmp/pg_consent_backends.XXXXXX "$@"
rows=${BENCH_ROWS:-1000000}
secs=${BENCH_SECONDS:-10}
warm=${BENCH_WARMUP:-5}
rounds=${BENCH_TPS_ROUNDS:-3}
read -r -a clients <<<"${BENCH_CLIENTS:-2 50 200}"
most=${clients[-1]}
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

echo "setting up $rows customers ..."
psql -X -q -v n="$rows" -f "$here/sql/email_name.sql" >/dev/null
printf '\\set id random(1, %d)\nSELECT * FROM customers WHERE id = :id;\n' "$rows" >"$work/point_consent.sql"
printf '\\set id random(1, %d)\nSELECT * FROM customers_raw WHERE id = :id;\n' "$rows" >"$work/point_raw.sql"
chmod 644 "$work"/*.sql

app() { PGUSER=bench_app PGPASSWORD=bench PGOPTIONS="-c consent.purpose=personalize" "$@"; }
# steady-state TPS: the mean of pgbench's per-second progress after the warm-up
tps() { # clients variant [pgbench options...]
    local n=$1 v=$2
    shift 2
    app pgbench -n -c "$n" -j 2 -T "$((secs + warm))" -P 1 -M prepared "$@" -f "$work/point_$v.sql" 2>&1 >/dev/null |
        awk -v w="$warm" '/^progress:/ { t = $2 + 0; if (t > w) { s += $4; n++ } } END { if (n) printf "%.0f", s / n }'
}
# The private memory (RssAnon, kB) of the backends of a pgbench run with n
# clients, summed, read halfway through its measured seconds, and how many.
memory() { # clients variant
    app pgbench -n -c "$1" -j 2 -T "$((secs + warm))" -M prepared -f "$work/point_$2.sql" >/dev/null 2>&1 &
    local bench=$! pids total=0 n=0 k p
    sleep "$((warm + secs / 2))"
    pids=$(psql -X -A -t -c "SELECT pid FROM pg_stat_activity WHERE usename = 'bench_app'")
    for p in $pids; do
        k=$(awk '/^RssAnon:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        [ -n "$k" ] || continue
        total=$((total + k))
        n=$((n + 1))
    done
    wait "$bench" || true
    echo "$total $n"
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f", m}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

declare -A t
for i in $(seq 1 "$rounds"); do
    echo "round $i of $rounds ..."
    for n in "${clients[@]}"; do
        for v in consent raw; do t[$v.$n]+="$(tps "$n" "$v") "; done
    done
    # the largest count under 100 consent changes/s on the same server
    app pgbench -n -c 1 -T "$((2 * (secs + warm) + 4))" -R 100 -D rows="$rows" -f "$here/sql/change_name.sql" >/dev/null 2>&1 &
    changer=$!
    for v in consent raw; do t[$v.changes]+="$(tps "$most" "$v") "; done
    wait "$changer" || true
    # a new connection per transaction, 50 clients (or the largest count if fewer)
    c=$((most < 50 ? most : 50))
    for v in consent raw; do t[$v.connect]+="$(tps "$c" "$v" -C) "; done
done
echo "private memory of $most backends ..."
read -r mem_consent n_consent <<<"$(memory "$most" consent)"
read -r mem_raw n_raw <<<"$(memory "$most" raw)"
builds=$(psql -X -A -t -c "SELECT builds FROM consent.shared_state()")
shared=$(psql -X -A -t -c "SELECT round(bytes / 1048576.0, 1) FROM consent.shared_state()")
server=$(psql -X -A -t -c "SELECT current_setting('server_version')")
cpus=$(nproc)

out=$here/results-backends.md
{
    echo "# pg_consent with many backends"
    echo
    echo "$(date -u +%F), PostgreSQL $server, $cpus CPUs, $rows customers (tagged e-mail and name, consent for about half of each), point look-ups (pgbench, prepared, 2 threads, mean over ${secs}s after ${warm}s, median of $rounds rounds, masked and raw in turn). Shared consent state: $shared MB, built $builds time(s). Command: \`BENCH_ROWS=$rows BENCH_CLIENTS=\"${clients[*]}\" make bench-backends\`."
    echo
    echo "| clients | pg_consent TPS | raw table TPS | pg_consent / raw |"
    echo "|---|---|---|---|"
    for n in "${clients[@]}"; do
        a=$(echo "${t[consent.$n]}" | median); b=$(echo "${t[raw.$n]}" | median)
        echo "| $n | $a | $b | $(ratio "$a" "$b") |"
    done
    a=$(echo "${t[consent.changes]}" | median); b=$(echo "${t[raw.changes]}" | median)
    echo "| $most, under 100 consent changes/s | $a | $b | $(ratio "$a" "$b") |"
    c=$((most < 50 ? most : 50))
    a=$(echo "${t[consent.connect]}" | median); b=$(echo "${t[raw.connect]}" | median)
    echo "| $c, a new connection per transaction (\`-C\`) | $a | $b | $(ratio "$a" "$b") |"
    echo
    awk -v a="$mem_consent" -v na="$n_consent" -v b="$mem_raw" -v nb="$n_raw" 'BEGIN {
        printf "Private memory (RssAnon) of the clients'"'"' backends halfway through a run: %d masked backends %.1f MB in all (%.1f MB each), %d raw backends %.1f MB (%.1f MB each); +%.2f MB per backend.\n",
            na, a / 1024, (na ? a / na / 1024 : 0), nb, b / 1024, (nb ? b / nb / 1024 : 0), (na && nb ? (a / na - b / nb) / 1024 : 0) }'
} | tee "$out"
