#!/usr/bin/env bash
# make bench-citus: pg_consent on a Citus cluster, masked against raw.
# A coordinator and two workers on this machine (throwaway clusters of
# $PG_CONFIG's PostgreSQL, default the Debian 15, with Citus installed:
# test/harness/citus.sh; the servers run as BENCH_USER, default pgconsent,
# when run as root), BENCH_ROWS customers (default 200,000) distributed by
# id with seven consent-tagged columns, consent for 'marketing' at the
# survey's rates (e-mail 57 %, name 41 %, birth date 36 %, address 35 %,
# fingerprint 4 %, DNA 2 %, search history 3 %), and a raw twin table
# (the same values in plain columns, distributed alike).  Measured, masked
# (bench_app under SET consent.purpose = 'marketing') and raw in turn,
# BENCH_TPS_ROUNDS rounds (median):
#  - a full-scan aggregate over the seven columns (pgbench, 1 client);
#  - router point look-ups by id (pgbench, 2 clients, prepared).
# Prints the figures; writes test/bench/results-citus.md.
#
# Consent is recorded with record_many() on each node before the nodes
# form the cluster (on a cluster, events are recorded with grant() and
# withdraw(), one forwarded call each: minutes for a million events).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/bench/lib.sh
. "$here/lib.sh"
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pgbin=$("$pg_config" --bindir)
export PATH=$pgbin:$PATH
if [ ! -f "$("$pg_config" --pkglibdir)/citus.so" ]; then
    "$here/../harness/citus.sh" || { echo "bench-citus: Citus is not available for $("$pg_config" --version)"; exit 1; }
fi
rows=${BENCH_ROWS:-200000}
secs=${BENCH_SECONDS:-10}
warm=${BENCH_WARMUP:-3}
rounds=${BENCH_TPS_ROUNDS:-3}
base=$(mktemp -d /tmp/pg_consent_citus.XXXXXX)
bench_owner "$base"
nodes=(coordinator worker1 worker2)
declare -A port
for n in "${nodes[@]}"; do
    port[$n]=$(free_port)
done
stop() {
    for n in "${nodes[@]}"; do
        [ -d "$base/$n" ] && (cd / && "${owner[@]}" pg_ctl -D "$base/$n" -m immediate -w stop >/dev/null 2>&1) || true
    done
    rm -rf "$base"
}
trap stop EXIT
run() { (cd / && "${owner[@]}" "$@"); }
export PGHOST=$base PGUSER=postgres PGDATABASE=postgres
unset PGOPTIONS PGPASSWORD
for n in "${nodes[@]}"; do
    run initdb -D "$base/$n" -U postgres -A trust --no-sync >/dev/null
    cat >> "$base/$n/postgresql.conf" <<CONF
listen_addresses = ''
port = ${port[$n]}
unix_socket_directories = '$base'
shared_preload_libraries = 'citus,pg_consent'
shared_buffers = 256MB
max_worker_processes = 16
max_prepared_transactions = 50
citus.shard_count = 8
citus.shard_replication_factor = 1
citus.enable_statistics_collection = off
jit = off
max_parallel_workers_per_gather = 0
CONF
    run pg_ctl -D "$base/$n" -l "$base/$n.log" -w start >/dev/null
done

echo "recording consent for $rows customers on each node ..."
for n in "${nodes[@]}"; do
    psql -X -q -v ON_ERROR_STOP=1 -p "${port[$n]}" -v n="$rows" <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION citus;
CREATE EXTENSION pg_consent;
CREATE TABLE ev AS
SELECT g AS subject, c.category, 'marketing' AS purpose, 'grant' AS action
  FROM generate_series(1, :n) g,
       (VALUES ('user.contact.email', 57), ('user.name', 41), ('user.demographic.date_of_birth', 36),
               ('user.contact.address', 35), ('user.biometric.fingerprint', 4),
               ('user.health_and_medical.genetic', 2), ('user.behavior.search_history', 3)) c(category, pct)
 WHERE abs(hashtext(c.category || g)) % 100 < c.pct;
SELECT consent.record_many('ev');
DROP TABLE ev;
SQL
done
c=${port[coordinator]}
psql -X -q -p "$c" -c "SELECT citus_set_coordinator_host('$base', $c)" >/dev/null
for n in worker1 worker2; do psql -X -q -p "$c" -c "SELECT citus_add_node('$base', ${port[$n]})" >/dev/null; done

echo "setting up the tables ..."
psql -X -q -v ON_ERROR_STOP=1 -p "$c" -v n="$rows" <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE ROLE bench_app LOGIN;
CREATE TABLE customers (id bigint PRIMARY KEY, name consent.name, email consent.email, born consent.birthdate,
                        address consent.address, fingerprint consent.fingerprint, dna consent.dna,
                        search_history consent.search_history, since date);
CREATE TABLE customers_raw (id bigint PRIMARY KEY, name text, email text, born date, address text,
                            fingerprint bytea, dna bytea, search_history text, since date);
SELECT consent.protect('customers', 'id');
SELECT create_distributed_table('customers', 'id');
SELECT create_distributed_table('customers_raw', 'id', colocate_with => 'customers');
INSERT INTO customers
SELECT g, 'Näme ' || g, 'user' || g || '@mail' || (g % 97) || '.example', date '1940-01-02' + (g % 20000),
       'Street ' || (g % 5000) || ', ' || (10000 + g % 80000) || ' Stadt', decode(md5(g::text), 'hex'),
       decode(md5('dna' || g), 'hex'), 'search ' || md5((g * 7)::text), date '2000-01-01' + (g % 9000)
  FROM generate_series(1, :n) g;
INSERT INTO customers_raw SELECT id, name, email, born, address, fingerprint, dna, search_history, since FROM customers;
GRANT SELECT ON customers, customers_raw TO bench_app;
SELECT consent.allow_purpose('bench_app', 'marketing');
VACUUM ANALYZE customers;
VACUUM ANALYZE customers_raw;
SQL
for t in customers customers_raw; do
    cat > "$base/agg_$t.sql" <<SQL
SELECT count(name), count(email), count(born), count(address), count(fingerprint), count(dna), count(search_history),
       sum(length(email)), max(born) FROM $t;
SQL
    printf '\\set id random(1, %d)\nSELECT * FROM %s WHERE id = :id;\n' "$rows" "$t" > "$base/point_$t.sql"
done
chmod 644 "$base"/*.sql
# the masked run shows masked values, the raw one raw values
shown=$(PGOPTIONS="-c consent.purpose=marketing" psql -X -A -t -p "$c" -U bench_app \
    -c "SELECT count(*) FILTER (WHERE email NOT LIKE '%***%') || ' of ' || count(*) FROM customers")
tps() { # file clients
    PGOPTIONS="-c consent.purpose=marketing" PGUSER=bench_app pgbench -n -p "$c" -c "$2" -j "$2" \
        -T "$((secs + warm))" -P 1 -M prepared -f "$1" 2>&1 >/dev/null |
        awk -v w="$warm" '/^progress:/ { t = $2 + 0; if (t > w) { s += $4; n++ } } END { if (n) printf "%.2f", s / n }'
}
declare -A res
for i in $(seq 1 "$rounds"); do
    for t in customers customers_raw; do
        res[agg.$t]+="$(tps "$base/agg_$t.sql" 1) "
        res[point.$t]+="$(tps "$base/point_$t.sql" 2) "
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ms() { awk -v t="$1" 'BEGIN { printf "%.0f", 1000 / t }'; }
server=$(psql -X -A -t -p "$c" -c "SELECT current_setting('server_version')")
citus=$(psql -X -A -t -p "$c" -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'")
events=$(psql -X -A -t -p "$c" -c "SELECT count(*) FROM consent.ledger")
ma=$(echo "${res[agg.customers]}" | median); ra=$(echo "${res[agg.customers_raw]}" | median)
mp=$(echo "${res[point.customers]}" | median); rp=$(echo "${res[point.customers_raw]}" | median)
out=$here/results-citus.md
{
echo "# pg_consent on a Citus cluster"
echo
echo "$(date -u +%F), PostgreSQL $server, Citus $citus: a coordinator and two workers on one $(nproc)-CPU machine, $rows customers in 8 shards, seven tagged columns, $events consent events on each node; $shown e-mails shown under marketing. pgbench (prepared, mean over ${secs}s after ${warm}s, median of $rounds rounds, masked and raw in turn), as bench_app under consent.purpose = marketing. Command: \`BENCH_ROWS=$rows make bench-citus\`."
echo
echo "| query | pg_consent | raw table | pg_consent / raw |"
echo "|---|---|---|---|"
echo "| 7-column full-scan aggregate (1 client) | $(ms "$ma") ms ($ma/s) | $(ms "$ra") ms ($ra/s) | $(ratio "$ma" "$ra") × |"
echo "| router point look-up by id (2 clients) | $mp TPS | $rp TPS | $(ratio "$mp" "$rp") × |"
} > "$out"
cat "$out"
