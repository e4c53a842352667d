#!/usr/bin/env bash
# make bench-scale: the server's shared consent state at BENCH_SUBJECTS
# (default 10,000,000) subjects with three events each (e-mail, name and
# birth date for 'personalize', granted or withdrawn at the survey's rates),
# on a customers table of as many rows with those three tagged columns and
# its raw twin.  Reports: the time to build the shared state (the first
# masked statement after a restart), its memory, a masked point look-up and
# a full-scan aggregate against the raw table, and a backend's private
# memory.  The consent events are recorded by consent.record_many() in
# batches, and its rate at this size reported.
# Runs in run.sh's throwaway cluster (run.sh execs it when BENCH_SCALE=1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${BENCH_SUBJECTS:-10000000}
reps=${BENCH_REPS:-3}
out=$here/results-scale.md

echo "setting up $n customers and $((n * 3)) consent events ..."
t0=$(date +%s)
psql -X -q -v n="$n" <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_consent;
DROP TABLE IF EXISTS customers, customers_raw;
CREATE TABLE customers (id bigint PRIMARY KEY, email consent.email, name consent.name, born consent.birthdate);
-- subject ids not in key order: the table is filled in hash order
INSERT INTO customers
SELECT g, 'user' || g || '@example.com', 'Name ' || g, date '1950-01-02' + (g % 20000)::int
FROM generate_series(1, :n) g ORDER BY hashint8(g);
CREATE TABLE customers_raw AS SELECT id, email::text AS email, name::text AS name, born::date AS born FROM customers;
ALTER TABLE customers_raw ADD PRIMARY KEY (id);
SELECT consent.protect('customers', 'id');
DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_app') THEN
    CREATE ROLE bench_app LOGIN PASSWORD 'bench'; END IF; END $$;
GRANT SELECT ON customers, customers_raw TO bench_app;
SELECT consent.allow_purpose('bench_app', 'personalize');
VACUUM ANALYZE customers, customers_raw;
SQL
# three events per subject at the survey's rates (57 % e-mail, 41 % name,
# 36 % birth date granted; the others withdrawn), recorded by
# consent.record_many() in batches of BENCH_BULK_SUBJECTS subjects (one
# transaction each)
chunk=${BENCH_BULK_SUBJECTS:-500000}
t1=$(date +%s%N)
for lo in $(seq 1 "$chunk" "$n"); do
    hi=$(( lo + chunk - 1 < n ? lo + chunk - 1 : n ))
    psql -X -q -A -t -v ON_ERROR_STOP=1 -v lo="$lo" -v hi="$hi" >/dev/null <<'SQL'
CREATE OR REPLACE VIEW scale_events AS
SELECT g::text AS subject, c.key AS category, 'personalize' AS purpose,
       CASE WHEN (hashint8(g * 7 + c.k) & 1023) < c.rate * 1024 THEN 'grant' ELSE 'withdraw' END AS action
FROM generate_series(:lo::bigint, :hi::bigint) g,
     (VALUES (1, 'user.contact.email', 0.57), (2, 'user.name', 0.41), (3, 'user.demographic.date_of_birth', 0.36))
         AS c(k, key, rate);
SELECT consent.record_many('scale_events');
SQL
done
record_ms=$(( ($(date +%s%N) - t1) / 1000000 ))
psql -X -q -c "DROP VIEW scale_events" -c "VACUUM ANALYZE consent.ledger, consent.subject_state" -c "CHECKPOINT"
setup_s=$(( $(date +%s) - t0 ))
events=$(psql -X -A -t -c "SELECT count(*) FROM consent.subject_state")

app() { PGUSER=bench_app PGPASSWORD=bench PGOPTIONS="-c consent.purpose=personalize" psql -X -q -A -t "$@"; }
ms() { sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }
median_of() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }

echo "building the shared state (the first masked statement of the server) ..."
first=$(app -c '\timing on' -c "SELECT count(email) FROM customers WHERE id = 42" | ms | head -n 1)
read -r status subjects bytes capacity build_ms <<< "$(psql -X -A -t -F ' ' -c "SELECT status, subjects, bytes, capacity, build_ms FROM consent.shared_state()")"

echo "point look-ups (new session each, second statement) ..."
for i in $(seq 1 "$reps"); do
    for v in consent raw; do
        rel=customers; [ $v = raw ] && rel=customers_raw
        app -c '\timing on' -c "SELECT count(email) FROM $rel WHERE id = $((i * 7919))" \
            -c "SELECT count(email) FROM $rel WHERE id = $((i * 104729))" | ms | sed -n 2p >> "/tmp/scale_point_$v.$$"
    done
done
point_consent=$(median_of < "/tmp/scale_point_consent.$$")
point_raw=$(median_of < "/tmp/scale_point_raw.$$")

echo "full-scan aggregate (warm session, the second run counts) ..."
agg() { echo "SELECT count(*) FILTER (WHERE email LIKE 'user1%'), sum(length(name)), max(born) FROM $1"; }
for i in $(seq 1 "$reps"); do
    for v in consent raw; do
        rel=customers; [ $v = raw ] && rel=customers_raw
        app -c "$(agg $rel)" -c '\timing on' -c "$(agg $rel)" | ms >> "/tmp/scale_agg_$v.$$"
    done
done
agg_consent=$(median_of < "/tmp/scale_agg_consent.$$")
agg_raw=$(median_of < "/tmp/scale_agg_raw.$$")

echo "private memory of a backend after a full scan ..."
# (read by the session itself, while its backend is alive)
private() {
    app <<SQL | tail -n 1
$(agg "$1");
SELECT pg_backend_pid() AS pid \gset
\setenv BACKEND_PID :pid
\! awk '/^RssAnon:/ {print \$2}' /proc/\$BACKEND_PID/status
SQL
}
priv_consent=$(private customers)
priv_raw=$(private customers_raw)
rm -f /tmp/scale_*."$$"

# huge pages in use by the server (none unless vm.nr_hugepages reserves some:
# huge_pages = try takes them when they are there)
huge_total=$(awk '/^HugePages_Total:/ {print $2}' /proc/meminfo)
huge_free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
server=$(psql -X -A -t -c "SELECT current_setting('server_version')")
shared_size=$(psql -X -A -t -c "SELECT current_setting('consent.shared_size')")
{
echo "# pg_consent at scale"
echo
echo "$(date -u +%F), PostgreSQL $server, $n subjects and customers, $events consent events (set up in ${setup_s} s), consent.shared_size = $shared_size. Command: \`BENCH_SUBJECTS=$n make bench-scale\`."
echo
echo "| measure | pg_consent | raw table | ratio |"
echo "|---|---|---|---|"
echo "| point look-up by primary key, a new session's second statement (ms) | $point_consent | $point_raw | $(awk -v a="$point_raw" -v b="$point_consent" 'BEGIN{printf "%.2f", a/b}') × speed |"
echo "| full-scan aggregate over 3 tagged columns, warm (ms) | $agg_consent | $agg_raw | $(awk -v a="$agg_raw" -v b="$agg_consent" 'BEGIN{printf "%.2f", a/b}') × speed |"
echo "| private memory of a backend after the scan (RssAnon, MB) | $(awk -v k="$priv_consent" 'BEGIN{printf "%.1f", k/1024}') | $(awk -v k="$priv_raw" 'BEGIN{printf "%.1f", k/1024}') | +$(awk -v a="$priv_consent" -v b="$priv_raw" 'BEGIN{printf "%.1f", (a-b)/1024}') MB |"
echo
echo "- consent recorded by \`consent.record_many\` in batches of $((chunk * 3)) events: $events events in $((record_ms / 1000)) s, $(awk -v e="$events" -v ms="$record_ms" 'BEGIN{printf "%.0f", e / (ms / 1000)}') events/s"
echo "- shared consent state: $status, $subjects subjects in $(awk -v b="$bytes" 'BEGIN{printf "%.0f", b/1048576}') MB (of $(awk -v b="$capacity" 'BEGIN{printf "%.0f", b/1048576}') MB reserved), built in $build_ms ms by the server's first masked statement (which took $first ms in all)"
echo "- huge pages (2 MB) in use: $((huge_total - huge_free)) of $huge_total reserved (vm.nr_hugepages), huge_pages = $(psql -X -A -t -c "SHOW huge_pages")"
} > "$out"
cat "$out"
