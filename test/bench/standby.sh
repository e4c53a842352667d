#!/usr/bin/env bash
# make bench-standby: point look-ups on a hot standby while the primary
# commits consent changes.  A primary and a streaming standby (throwaway
# clusters of $PG_CONFIG's PostgreSQL, default the Debian 15; the servers
# run as BENCH_USER, default pgconsent, when run as root), BENCH_ROWS
# customers (default 1,000,000) with tagged e-mail and name and consent for
# about half of them.  pgbench point look-ups on the standby (2 clients,
# prepared, BENCH_SECONDS after BENCH_WARMUP), in rounds: no changes, 2
# changes/s and 100 changes/s on the primary (pgbench -R), masked and raw
# table in turn.  Prints TPS and ratios; writes test/bench/results-standby.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/bench/lib.sh
. "$here/lib.sh"
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pgbin=$("$pg_config" --bindir)
export PATH=$pgbin:$PATH
rows=${BENCH_ROWS:-1000000}
secs=${BENCH_SECONDS:-10}
warm=${BENCH_WARMUP:-5}
rounds=${BENCH_TPS_ROUNDS:-3}
base=$(mktemp -d /tmp/pg_consent_standby.XXXXXX)
bench_owner "$base"
port_p=$(free_port)
port_s=$(free_port)
stop() {
    for d in standby primary; do
        [ -d "$base/$d" ] && (cd / && "${owner[@]}" pg_ctl -D "$base/$d" -m immediate -w stop >/dev/null 2>&1) || true
    done
    rm -rf "$base"
}
trap stop EXIT
run() { (cd / && "${owner[@]}" "$@"); }
run initdb -D "$base/primary" -U postgres -A trust --no-sync >/dev/null
cat >> "$base/primary/postgresql.conf" <<CONF
listen_addresses = 'localhost'
port = $port_p
unix_socket_directories = '$base'
shared_preload_libraries = 'pg_consent'
shared_buffers = 1GB
max_wal_senders = 4
wal_level = replica
hot_standby = on
jit = off
max_parallel_workers_per_gather = 0
CONF
echo "host replication all 127.0.0.1/32 trust" >> "$base/primary/pg_hba.conf"
run pg_ctl -D "$base/primary" -l "$base/primary.log" -w start >/dev/null
export PGHOST=localhost PGUSER=postgres PGDATABASE=postgres
unset PGOPTIONS PGPASSWORD
echo "setting up $rows customers on the primary ..."
psql -X -q -p "$port_p" -v n="$rows" -f "$here/sql/email_name.sql" >/dev/null
run pg_basebackup -h localhost -p "$port_p" -U postgres -D "$base/standby" -R -X stream >/dev/null
sed -i "s/^port = .*/port = $port_s/" "$base/standby/postgresql.conf"
run pg_ctl -D "$base/standby" -l "$base/standby.log" -w start >/dev/null
until [ "$(psql -X -A -t -p "$port_s" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ]; do sleep 0.5; done
printf '\\set id random(1, %d)\nSELECT * FROM customers WHERE id = :id;\n' "$rows" > "$base/point.sql"
printf '\\set id random(1, %d)\nSELECT * FROM customers_raw WHERE id = :id;\n' "$rows" > "$base/point_raw.sql"
chmod 644 "$base"/*.sql
standby_tps() { # file
    PGOPTIONS="-c consent.purpose=personalize" PGUSER=bench_app pgbench -n -p "$port_s" -c 2 -j 2 -T "$((secs + warm))" -P 1 \
        -M prepared -f "$1" 2>&1 >/dev/null |
        awk -v w="$warm" '/^progress:/ { t = $2 + 0; if (t > w) { s += $4; n++ } } END { if (n) printf "%.0f", s / n }'
}
declare -A tps
for i in $(seq 1 "$rounds"); do
    for rate in 0 2 100; do
        changer=
        if [ "$rate" -gt 0 ]; then
            PGUSER=bench_app pgbench -n -p "$port_p" -c 1 -T "$((secs + warm + 2))" -R "$rate" -D rows="$rows" -f "$here/sql/change_name.sql" \
                >/dev/null 2>&1 &
            changer=$!
        fi
        for v in consent raw; do
            f=$base/point.sql; [ $v = raw ] && f=$base/point_raw.sql
            tps[$v.$rate]+="$(standby_tps "$f") "
        done
        [ -z "$changer" ] || wait "$changer" || true
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f", m}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
changes=$(psql -X -A -t -p "$port_p" -c "SELECT count(*) FROM consent.ledger WHERE source IS DISTINCT FROM 'x'")
builds=$(psql -X -A -t -p "$port_s" -c "SELECT builds FROM consent.shared_state()")
server=$(psql -X -A -t -p "$port_s" -c "SELECT current_setting('server_version')")
out=$here/results-standby.md
{
echo "# pg_consent on a hot standby"
echo
echo "$(date -u +%F), PostgreSQL $server, $rows customers, standby point look-ups (pgbench, 2 clients, prepared, mean over ${secs}s after ${warm}s, median of $rounds rounds; each round: no changes, 2/s, 100/s on the primary, masked and raw in turn). $changes consent events in the ledger at the end; the standby built its shared consent state $builds time(s). Command: \`BENCH_ROWS=$rows make bench-standby\`."
echo
echo "| consent changes/s on the primary | pg_consent TPS | raw table TPS | pg_consent / its TPS without changes | raw / its TPS without changes | pg_consent / raw |"
echo "|---|---|---|---|---|---|"
for rate in 0 2 100; do
    c=$(echo "${tps[consent.$rate]}" | median); r=$(echo "${tps[raw.$rate]}" | median)
    c0=$(echo "${tps[consent.0]}" | median); r0=$(echo "${tps[raw.0]}" | median)
    echo "| $rate | $c | $r | $(ratio "$c" "$c0") × | $(ratio "$r" "$r0") × | $(ratio "$c" "$r") × |"
done
} > "$out"
cat "$out"
