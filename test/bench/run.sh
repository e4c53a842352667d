#!/usr/bin/env bash
# make bench: pg_consent against the physical limit and against what a DBA
# would write by hand, on BENCH_ROWS customers (default 1,000,000) with the
# seven survey attributes as tagged columns.  Prints medians and ratios and
# writes them to test/bench/results.md (its section of the PostgreSQL major
# version measured).  Not part of make test.
#   BENCH_ROWS=200000 BENCH_REPS=5 BENCH_SECONDS=10 make bench
#   make bench PG_CONFIG=$(test/harness/pg-build.sh 18)
# The server: $PG_CONFIG's installation (default the Debian-packaged 15) in a
# throwaway cluster, pg_virtualenv for a Debian-packaged one, else initdb +
# pg_ctl (test/bench/lib.sh); psql and pgbench are that installation's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=test/bench/lib.sh
. "$here/lib.sh"
# The PostgreSQL measured: $PG_CONFIG (make bench passes its PG_CONFIG), by
# default the Debian-packaged PostgreSQL 15; its bindir's psql and pgbench.
bench_postgres bench
# shared_buffers holds every table of the run: all variants read from memory
# fsync=on (pg_virtualenv turns it off): consent changes commit durably, as in production
# consent.shared_size: room for 10 million subjects (BENCH_SHARED_SIZE)
server_opts=(shared_preload_libraries=pg_consent shared_buffers=4GB fsync=on
             work_mem=64MB max_parallel_workers_per_gather=0 jit=off
             "consent.shared_size=${BENCH_SHARED_SIZE:-700MB}")
in_throwaway_cluster BENCH_CLUSTER /tmp/pg_consent_bench.XXXXXX "$@"
# make bench-scale: the shared consent state at 10 million subjects (scale.sh)
[ -z "${BENCH_SCALE:-}" ] || exec "$here/scale.sh"
# make bench-varied: the scan figures on five data sets (varied.sh)
[ -z "${BENCH_VARIED:-}" ] || exec "$here/varied.sh"
rows=${BENCH_ROWS:-1000000}
reps=${BENCH_REPS:-5}
secs=${BENCH_SECONDS:-10}
# 10 s: each pgbench client's first statement loads the consent cache
# (2.2-2.6 s alone, two at once on 2 cores; with 5 s, a slow phase could
# leave part of it in the steady-state figure of pg_consent only)
warm=${BENCH_WARMUP:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$here/results.md
echo "setting up $rows customers ..."
psql -X -q -v n="$rows" -f "$here/sql/setup.sql" >/dev/null

# Latency sessions run on one CPU, the same for every variant: BENCH_CPU,
# by default the last CPU this script may use ("none": not pinned).  The
# vCPUs of the VM this was written on differ by up to 1.8 x, and which one a
# new session landed on was a lottery that moved the ratios by 20-40 %.
bench_cpu=${BENCH_CPU:-$(awk -F'[-,]' '/^Cpus_allowed_list/ {print $NF}' /proc/self/status)}
pin_lines() {
    [ "$bench_cpu" = none ] && return
    echo 'SELECT pg_backend_pid() AS bench_pid \gset'
    echo '\setenv BENCH_PID :bench_pid'
    echo "\\! taskset -pc $bench_cpu \$BENCH_PID >/dev/null"
}
# The timings in ms of the statements of a psql script after pin_lines.
psql_times() { # role purpose script
    PGUSER=$1 PGPASSWORD=bench PGOPTIONS="-c consent.purpose=$2" psql -X -q -f "$3" \
        | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
# median latency in ms of one statement file, over $reps runs in one warm
# session (BENCH_SLOW_REPS for the hand-written EXISTS view, two orders of
# magnitude slower); the first run loads the consent cache and is not counted
median_ms() { # role purpose file [reps]
    local reps=${4:-$reps} f i
    f=$(mktemp -p "$work")
    { pin_lines; echo '\o /dev/null'; echo '\timing on'; for i in $(seq 0 "$reps"); do cat "$3"; done; } > "$f"
    psql_times "$1" "$2" "$f" | tail -n +2 | median_of
}
# median time in ms of a COPY, run in psql (pgbench cannot COPY), warm session
median_copy_ms() { # role purpose relation [reps]
    local f
    f=$(mktemp -p "$work")
    echo "COPY (SELECT * FROM $3) TO STDOUT;" > "$f"
    median_ms "$1" "$2" "$f" "${4:-$reps}"
}
# One warm sample in ms: a new session runs the statement twice and the
# second run counts (the first loads the consent cache and warms the plan).
one_ms() { # role purpose file
    local f
    f=$(mktemp -p "$work")
    { pin_lines; echo '\o /dev/null'; echo '\timing on'; cat "$3"; cat "$3"; } > "$f"
    psql_times "$1" "$2" "$f" | tail -n 1
}
one_copy_ms() { # role purpose relation
    local f
    f=$(mktemp -p "$work")
    echo "COPY (SELECT * FROM $3) TO STDOUT;" > "$f"
    one_ms "$1" "$2" "$f"
}
median_of() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }
# The variants of one workload measured in turn, $reps rounds: a slow
# moment of the machine (a checkpoint, another process) hits all of them.
# Sets r[<w>_raw], r[<w>_bypass], r[<w>_consent], r[<w>_join].
interleaved() { # workload (agg|copy|join)
    local w=$1 i v role rel
    for i in $(seq 1 "$reps"); do
        for v in raw bypass consent join; do
            case $v in raw) role=bench_app rel=customers_raw;; bypass) role=bench_bypass rel=customers;;
                consent) role=bench_app rel=customers;; join) role=bench_app rel=customers_join_view;; esac
            case $w in
                agg) one_ms $role personalize "$(agg $rel)" ;;
                aggpar) one_ms $role personalize "$(agg_par $rel)" ;;
                join) one_ms $role personalize "$(join_q $rel)" ;;
                copy) one_copy_ms $role personalize $rel ;;
            esac >> "$work/samples_${w}_$v"
            echo >> "$work/samples_${w}_$v"
        done
    done
    for v in raw bypass consent join; do
        r[${w}_$v]=$(grep . "$work/samples_${w}_$v" | median_of)
    done
}

# Point look-ups of the variants in turn, BENCH_TPS_ROUNDS rounds (default
# 3), the median of each variant's steady-state TPS.
interleaved_point() {
    local i v role rel
    for i in $(seq 1 "${BENCH_TPS_ROUNDS:-3}"); do
        for v in raw bypass consent join; do
            case $v in raw) role=bench_app rel=customers_raw;; bypass) role=bench_bypass rel=customers;;
                consent) role=bench_app rel=customers;; join) role=bench_app rel=customers_join_view;; esac
            steady_tps $role personalize "$(point $rel)" >> "$work/samples_point_$v"
            echo >> "$work/samples_point_$v"
        done
    done
    for v in raw bypass consent join; do
        r[point_$v]=$(grep . "$work/samples_point_$v" | median_of | awk '{printf "%.0f", $1}')
    done
}

# transactions per second of a script with 2 clients
tps() { # role purpose file [extra pgbench args]; BENCH_OPTIONS: more settings
    local role=$1 purpose=$2 file=$3; shift 3
    PGUSER=$role PGPASSWORD=bench PGOPTIONS="-c consent.purpose=$purpose ${BENCH_OPTIONS:-}" \
        pgbench -n -c 2 -j 2 -T "$secs" -M prepared -f "$file" "$@" 2>/dev/null \
        | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
# steady-state TPS with 2 clients: the mean of pgbench's per-second progress
# over $secs seconds after $warm seconds of warm-up, the same for every
# variant (long-lived sessions, as behind a connection pool; what a new
# session's first statement costs is measured on its own below)
steady_tps() { # role purpose file
    local role=$1 purpose=$2 file=$3
    PGUSER=$role PGPASSWORD=bench PGOPTIONS="-c consent.purpose=$purpose" \
        pgbench -n -c 2 -j 2 -T "$((secs + warm))" -P 1 -M prepared -f "$file" 2>&1 >/dev/null \
        | awk -v w="$warm" '/^progress:/ { t = $2 + 0; if (t > w) { s += $4; n++ } } END { if (n) printf "%.0f", s / n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n / (ms / 1000) }'; } # events, milliseconds

agg() { # relation
    cat > "$work/agg_$1.sql" <<SQL
SELECT count(*) FILTER (WHERE email LIKE 'u%'), sum(length(name)), max(born), sum(length(address)),
       sum(length(fingerprint)), sum(length(dna)), sum(length(searches)) FROM $1;
SQL
    echo "$work/agg_$1.sql"
}
agg_par() { # relation: the aggregate with 2 parallel workers (the server's default here is 0)
    { echo "SET max_parallel_workers_per_gather = 2;"; cat "$(agg "$1")"; } > "$work/aggpar_$1.sql"
    echo "$work/aggpar_$1.sql"
}
point() { # relation
    printf '\\set id random(1, %d)\nSELECT * FROM %s WHERE id = :id;\n' "$rows" "$1" > "$work/point_$1.sql"
    echo "$work/point_$1.sql"
}
join_q() { # relation
    echo "SELECT count(*), sum(length(c.email)), sum(length(c.name)) FROM orders o JOIN $1 c ON c.id = o.customer_id;" > "$work/join_$1.sql"
    echo "$work/join_$1.sql"
}

declare -A r
echo "full-scan aggregate over the 7 columns ..."
interleaved agg
r[agg_exists]=n/a; [ -n "${BENCH_NO_EXISTS:-}" ] || r[agg_exists]=$(median_ms bench_app personalize "$(agg customers_exists_view)" "${BENCH_SLOW_REPS:-1}")
echo "full-scan aggregate with 2 parallel workers ..."
interleaved aggpar
r[aggpar_exists]=n/a
r[aggpar_workers]=$(PGUSER=bench_app PGPASSWORD=bench PGOPTIONS="-c consent.purpose=personalize -c max_parallel_workers_per_gather=2" \
    psql -X -A -t -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $(tr '\n' ' ' < "$(agg customers)" | sed 's/;[[:space:]]*$//')" | sed -n 's/.*Workers Launched: \([0-9]*\).*/\1/p' | head -1)
echo "COPY of all columns ..."
interleaved copy
r[copy_exists]=n/a; [ -n "${BENCH_NO_EXISTS:-}" ] || r[copy_exists]=$(median_copy_ms bench_app personalize customers_exists_view "${BENCH_SLOW_REPS:-1}")
echo "join of orders to customers ..."
interleaved join
r[join_exists]=n/a; [ -n "${BENCH_NO_EXISTS:-}" ] || r[join_exists]=$(median_ms bench_app personalize "$(join_q customers_exists_view)" "${BENCH_SLOW_REPS:-1}")
echo "point look-ups, 2 clients, ${secs}s each ..."
interleaved_point
r[point_exists]=n/a; [ -n "${BENCH_NO_EXISTS:-}" ] || r[point_exists]=$(steady_tps bench_app personalize "$(point customers_exists_view)")

echo "row filtering under marketing (count(*)) ..."
echo "SELECT count(*) FROM customers_raw;" > "$work/count_raw.sql"
echo "SELECT count(*) FROM customers_rc;" > "$work/count_rc.sql"
echo "SELECT count(*) FROM customers_ex;" > "$work/count_ex.sql"
r[rows_nopolicy]=$(median_ms bench_app marketing "$work/count_raw.sql")
r[rows_require]=$(median_ms bench_app marketing "$work/count_rc.sql")
r[rows_exists]=$(median_ms bench_app marketing "$work/count_ex.sql" "${BENCH_SLOW_REPS:-1}")
r[rows_visible]=$(PGUSER=bench_app PGPASSWORD=bench PGOPTIONS="-c consent.purpose=marketing" psql -X -A -t -c "SELECT count(*) FROM customers_rc")

echo "consent changes, 2 clients ..."
cat > "$work/change.sql" <<SQL
\\set id random(1, $rows)
SELECT consent.grant(:id, 'user.contact.email', 'marketing');
SELECT consent.withdraw(:id, 'user.contact.email', 'marketing');
SQL
r[changes]=$(tps bench_app personalize "$work/change.sql" | awk '{printf "%.0f", $1 * 2}')
# the same without waiting for the WAL flush at commit: what recording costs in CPU
r[changes_async]=$(BENCH_OPTIONS="-c synchronous_commit=off" tps bench_app personalize "$work/change.sql" \
    | awk '{printf "%.0f", $1 * 2}')
# the disk's limit for one-row transactions: a plain INSERT per commit
cat > "$work/plain.sql" <<SQL
\\set id random(1, $rows)
INSERT INTO plain_events (subject, category, purpose, action) VALUES (:id, 'user.contact.email', 'marketing', 'grant');
INSERT INTO plain_events (subject, category, purpose, action) VALUES (:id, 'user.contact.email', 'marketing', 'withdraw');
SQL
r[plain_inserts]=$(tps bench_app personalize "$work/plain.sql" | awk '{printf "%.0f", $1 * 2}')
# a consent form: the seven survey attributes recorded in one transaction
cat > "$work/form.sql" <<SQL
\\set id random(1, $rows)
BEGIN;
SELECT consent.grant(:id, 'user.contact.email', 'marketing');
SELECT consent.grant(:id, 'user.name', 'marketing');
SELECT consent.withdraw(:id, 'user.demographic.date_of_birth', 'marketing');
SELECT consent.grant(:id, 'user.contact.address', 'marketing');
SELECT consent.withdraw(:id, 'user.biometric.fingerprint', 'marketing');
SELECT consent.withdraw(:id, 'user.health_and_medical.genetic', 'marketing');
SELECT consent.withdraw(:id, 'user.behavior.search_history', 'marketing');
COMMIT;
SQL
r[changes_form]=$(tps bench_app personalize "$work/form.sql" | awk '{printf "%.0f", $1 * 7}')

echo "point look-ups while consent changes are committed at 100/s ..."
# the change measurements above left dead rows and dirty pages: clean up now,
# not by autovacuum during the rounds below
psql -X -q -c "VACUUM ANALYZE consent.ledger, consent.subject_state, plain_events" -c "CHECKPOINT"
cat > "$work/change1.sql" <<SQL
\\set id random(1, $rows)
SELECT consent.grant(:id, 'user.name', 'marketing');
SQL
# rounds of (quiet, under changes), so that both see the same machine; the
# raw table under the same changes is the control: what a third busy
# session costs the readers on this machine whatever they read
for i in $(seq 1 "${BENCH_TPS_ROUNDS:-3}"); do
    for v in consent raw; do
        rel=customers; [ $v = raw ] && rel=customers_raw
        steady_tps bench_app personalize "$(point $rel)" >> "$work/samples_quiet_$v"; echo >> "$work/samples_quiet_$v"
        PGUSER=bench_app PGPASSWORD=bench pgbench -n -c 1 -T "$((secs + warm))" -R 100 -f "$work/change1.sql" >/dev/null 2>&1 &
        changer=$!
        steady_tps bench_app personalize "$(point $rel)" >> "$work/samples_busy_$v"; echo >> "$work/samples_busy_$v"
        wait $changer || true
    done
done
r[point_quiet]=$(grep . "$work/samples_quiet_consent" | median_of | awk '{printf "%.0f", $1}')
r[point_under_changes]=$(grep . "$work/samples_busy_consent" | median_of | awk '{printf "%.0f", $1}')
r[raw_quiet]=$(grep . "$work/samples_quiet_raw" | median_of | awk '{printf "%.0f", $1}')
r[raw_under_changes]=$(grep . "$work/samples_busy_raw" | median_of | awk '{printf "%.0f", $1}')

echo "first statement of a new session ..."
# the median over 5 new sessions of each, in turn
for i in 1 2 3 4 5; do
    for v in consent raw; do
        rel=customers; [ $v = raw ] && rel=customers_raw
        PGUSER=bench_app PGPASSWORD=bench PGOPTIONS="-c consent.purpose=personalize" psql -X -q \
            -c '\timing on' -c "SELECT count(email) FROM $rel WHERE id = $((i * 7919 % rows + 1))" \
            -c "SELECT count(email) FROM $rel WHERE id = $((i * 104729 % rows + 1))" \
            | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tr '\n' ' ' >> "$work/cold_$v"
        echo >> "$work/cold_$v"
    done
done
r[cold_first]=$(awk 'NF {print $1}' "$work/cold_consent" | median_of)
r[cold_second]=$(awk 'NF {print $2}' "$work/cold_consent" | median_of)
r[cold_first_raw]=$(awk 'NF {print $1}' "$work/cold_raw" | median_of)

echo "a new connection per transaction (pgbench -C) ..."
for i in $(seq 1 "${BENCH_TPS_ROUNDS:-3}"); do
    for v in consent raw; do
        rel=customers; [ $v = raw ] && rel=customers_raw
        tps bench_app personalize "$(point $rel)" -C >> "$work/samples_connect_$v"; echo >> "$work/samples_connect_$v"
    done
done
r[connect_consent]=$(grep . "$work/samples_connect_consent" | median_of | awk '{printf "%.0f", $1}')
r[connect_raw]=$(grep . "$work/samples_connect_raw" | median_of | awk '{printf "%.0f", $1}')

echo "private memory of a backend after reads ..."
# RssAnon of the backend (its private memory; shared memory it touched is
# RssShmem) after 1,000 point look-ups and a full-scan aggregate
# (read by the session itself, while its backend is alive)
private_kb() { # relation
    PGUSER=bench_app PGPASSWORD=bench PGOPTIONS="-c consent.purpose=personalize" psql -X -q -A -t <<SQL | tail -n 1
SELECT count(email) FROM $1 WHERE id IN (SELECT (g * 7919) % $rows + 1 FROM generate_series(1, 1000) g);
$(cat "$(agg "$1")")
SELECT pg_backend_pid() AS pid \gset
\setenv BACKEND_PID :pid
\! awk '/^RssAnon:/ {print \$2}' /proc/\$BACKEND_PID/status
SQL
}
for i in 1 2 3; do
    for v in consent raw; do
        rel=customers; [ $v = raw ] && rel=customers_raw
        private_kb $rel >> "$work/private_$v"
    done
done
r[private_consent]=$(median_of < "$work/private_consent")
r[private_raw]=$(median_of < "$work/private_raw")
shared=$(psql -X -A -t -c "SELECT status || ' ' || subjects || ' ' || bytes || ' ' || capacity || ' ' || build_ms FROM consent.shared_state()")
read -r s_status s_subjects s_bytes s_capacity s_build_ms <<< "$shared"
r[shared_status]=$s_status r[shared_subjects]=$s_subjects r[shared_bytes]=$s_bytes
r[shared_capacity]=$s_capacity r[shared_build_ms]=$s_build_ms

echo "cache memory with all subjects loaded ..."
mem=$(PGUSER=bench_app PGPASSWORD=bench PGOPTIONS="-c consent.purpose=personalize" psql -X -A -t -q \
    -c "SELECT count(email) FROM customers" -c "SELECT subjects || ' ' || bytes FROM consent.cache_stats()" | tail -n 1)
r[cache_subjects]=${mem% *}
r[cache_bytes]=${mem#* }
echo "bulk consent (consent.record_many) ..."
# BENCH_BULK events (default 350,000): the seven survey attributes of new
# subjects under analytics at the survey's rates, recorded in one call,
# then the same events again (every pair then has a state); against it, the
# same rows written by plain INSERTs into tables of the ledger's and the
# derived state's shape (their keys, no triggers): what the writes cost
bulk_subjects=$(( ${BENCH_BULK:-350000} / 7 ))
psql -X -q -v n="$bulk_subjects" <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS bulk_events, bulk_ledger, bulk_state;
CREATE TABLE bulk_events AS
SELECT 'bulk' || g AS subject, c.key AS category, 'analytics' AS purpose,
       CASE WHEN (hashint8(g * 7 + c.k) & 1023) < c.rate * 1024 THEN 'grant' ELSE 'withdraw' END AS action
FROM generate_series(1, :n) g,
     (VALUES (1, 'user.contact.email', 0.57), (2, 'user.name', 0.41), (3, 'user.demographic.date_of_birth', 0.36),
             (4, 'user.contact.address', 0.35), (5, 'user.biometric.fingerprint', 0.04),
             (6, 'user.health_and_medical.genetic', 0.02), (7, 'user.behavior.search_history', 0.03)) AS c(k, key, rate);
CREATE TABLE bulk_ledger (LIKE consent.ledger INCLUDING INDEXES);
CREATE TABLE bulk_state (LIKE consent.subject_state INCLUDING INDEXES);
VACUUM ANALYZE bulk_events;
CHECKPOINT;
SQL
timed() { psql -X -q -A -t -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }
r[bulk_events]=$((bulk_subjects * 7))
r[bulk_new_ms]=$(timed "SELECT consent.record_many('bulk_events')")
r[bulk_again_ms]=$(timed "SELECT consent.record_many('bulk_events')")
r[bulk_plain_ms]=$(timed "WITH e AS (SELECT row_number() OVER () AS n, e.subject, c.key AS category, p.key AS purpose, e.action
    FROM bulk_events e JOIN consent.categories c ON c.key = e.category JOIN consent.purposes p ON p.key = e.purpose),
  l AS (INSERT INTO bulk_ledger (id, subject, category, purpose, action, recorded_at, recorded_by)
    SELECT n, subject, category, purpose, action, now(), 'bench' FROM e)
  INSERT INTO bulk_state (subject, category, purpose, event_id, action, recorded_at)
    SELECT subject, category, purpose, n, action, now() FROM e")
psql -X -q -c "DROP TABLE bulk_events, bulk_ledger, bulk_state"
events=$(psql -X -A -t -c "SELECT count(*) FROM consent.ledger")
settings=$(psql -X -A -t -c "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'jit', 'max_parallel_workers_per_gather', 'data_checksums', 'io_method')")
server=$(psql -X -A -t -c "SELECT current_setting('server_version')")
database=$(psql -X -A -t -c "SELECT 'encoding ' || pg_encoding_to_char(encoding) || ', collation ' || datcollate FROM pg_database WHERE datname = current_database()")
# the command that reproduces this run: the BENCH_ variables it was given
command="BENCH_ROWS=$rows"
for v in BENCH_REPS BENCH_SECONDS BENCH_WARMUP BENCH_TPS_ROUNDS BENCH_CPU BENCH_NO_EXISTS BENCH_SLOW_REPS BENCH_SHARED_SIZE BENCH_BULK; do
    [ -z "${!v:-}" ] || command+=" $v=${!v}"
done
command+=" make bench"
[ "$pg_config" = /usr/lib/postgresql/15/bin/pg_config ] || command+=" PG_CONFIG=$pg_config"

# This run's section of results.md: headed by the PostgreSQL it measured.
section=$work/section.md
{
echo "## PostgreSQL $server, \`$pg_config\`"
echo
echo "$(date -u +%F), $rows customers, $events consent events; latencies: median of $reps rounds, each variant once per round in turn, each run the second in a new session (on CPU $bench_cpu)"
echo "(point look-ups: pgbench TPS, 2 clients, prepared, mean over ${secs}s after ${warm}s of warm-up, median of ${BENCH_TPS_ROUNDS:-3} rounds in turn). Command: \`$command\`."
echo "Server settings: $settings (shared_buffers in 8kB pages); database $database."
echo
echo "| workload | raw table | bypass role | pg_consent (personalize) | hand-written LEFT JOIN view | hand-written EXISTS view | pg_consent / raw | pg_consent / LEFT JOIN view |"
echo "|---|---|---|---|---|---|---|---|"
for w in agg aggpar copy join; do
    case $w in agg) label="full-scan aggregate, 7 columns (ms)";; aggpar) label="the same, max_parallel_workers_per_gather = 2 (ms; ${r[aggpar_workers]:-0} workers launched, masked)";;
        copy) label="COPY (SELECT *) TO STDOUT (ms)";; join) label="orders ⋈ customers (ms)";; esac
    echo "| $label | ${r[${w}_raw]} | ${r[${w}_bypass]} | ${r[${w}_consent]} | ${r[${w}_join]} | ${r[${w}_exists]} | $(ratio "${r[${w}_raw]}" "${r[${w}_consent]}") × speed | $(ratio "${r[${w}_join]}" "${r[${w}_consent]}") × faster |"
done
echo "| point look-ups by primary key (TPS) | ${r[point_raw]} | ${r[point_bypass]} | ${r[point_consent]} | ${r[point_join]} | ${r[point_exists]} | $(ratio "${r[point_consent]}" "${r[point_raw]}") × TPS | $(ratio "${r[point_consent]}" "${r[point_join]}") × TPS |"
echo
echo "- row filtering, \`SELECT count(*)\` under marketing (${r[rows_visible]} of $rows rows visible): no policy ${r[rows_nopolicy]} ms, require_consent ${r[rows_require]} ms, hand-written EXISTS policy on the ledger ${r[rows_exists]} ms ($(ratio "${r[rows_nopolicy]}" "${r[rows_require]}") × the speed without policy, $(ratio "${r[rows_exists]}" "${r[rows_require]}") × faster than the EXISTS policy)"
echo "- consent changes (grant + withdraw) per second, 2 clients, one change per transaction: ${r[changes]} (a plain one-row INSERT per transaction, the disk's limit here: ${r[plain_inserts]}/s; with synchronous_commit = off, i.e. CPU only: ${r[changes_async]}/s)"
echo "- consent changes per second when a form records the seven survey attributes in one transaction, 2 clients: ${r[changes_form]}"
echo "- bulk consent, \`consent.record_many\` of ${r[bulk_events]} events in one call: $(rate "${r[bulk_events]}" "${r[bulk_new_ms]}") events/s for new pairs, $(rate "${r[bulk_events]}" "${r[bulk_again_ms]}") events/s when every pair has a state (the same rows as plain INSERTs into tables of the ledger's and the state's shape, without triggers or conflict checks: $(rate "${r[bulk_events]}" "${r[bulk_plain_ms]}") events/s)"
echo "- point look-ups while 100 consent changes/s are committed: ${r[point_under_changes]} TPS ($(ratio "${r[point_under_changes]}" "${r[point_quiet]}") × the ${r[point_quiet]} TPS without changes, rounds in turn; the raw table under the same changes, the machine's share: ${r[raw_under_changes]} TPS, $(ratio "${r[raw_under_changes]}" "${r[raw_quiet]}") × its ${r[raw_quiet]} TPS without)"
echo "- a new session's first masked look-up: ${r[cold_first]} ms (the raw table's: ${r[cold_first_raw]} ms; the session's next masked look-up: ${r[cold_second]} ms)"
echo "- a new connection per transaction (\`pgbench -C\`, point look-ups, 2 clients): ${r[connect_consent]} TPS, the raw table ${r[connect_raw]} TPS ($(ratio "${r[connect_consent]}" "${r[connect_raw]}") ×)"
echo "- private memory (RssAnon) of a backend after 1,000 look-ups and a full-scan aggregate: $(awk -v k="${r[private_consent]}" 'BEGIN{printf "%.1f", k/1024}') MB masked, $(awk -v k="${r[private_raw]}" 'BEGIN{printf "%.1f", k/1024}') MB raw (+$(awk -v a="${r[private_consent]}" -v b="${r[private_raw]}" 'BEGIN{printf "%.1f", (a-b)/1024}') MB)"
echo "- shared consent state (consent.shared_size): ${r[shared_status]}, ${r[shared_subjects]} subjects in $(awk -v b="${r[shared_bytes]}" 'BEGIN{printf "%.1f", b/1048576}') MB of $(awk -v b="${r[shared_capacity]}" 'BEGIN{printf "%.0f", b/1048576}') MB, built in ${r[shared_build_ms]} ms"
echo "- this backend's own consent cache after a full scan: ${r[cache_subjects]} subjects, $(awk -v b="${r[cache_bytes]}" 'BEGIN{printf "%.1f", b/1048576}') MB (the shared state serves the others; bound: consent.cache_size)"
} > "$section"
echo
echo "# pg_consent benchmark"
echo
cat "$section"

# results.md keeps the latest run of each PostgreSQL major version, one
# section each ("## PostgreSQL <version>, ..."), in version order; this run
# replaces the section of its major version.  Text before the first section
# other than the title (a file from before there were sections) is dropped.
[ -f "$out" ] && awk -v dir="$work" '
    /^## PostgreSQL [0-9]+/ { split($3, v, "."); f = sprintf("%s/old_%05d.md", dir, v[1] + 0) }
    f { print > f }' "$out"
rm -f "$work/old_$(printf %05d "$pg_major").md"
cp "$section" "$work/old_$(printf %05d "$pg_major").md"
{
echo "# pg_consent benchmark"
echo
echo "The latest \`make bench\` (test/bench/run.sh) on each PostgreSQL major version, one section each; a run replaces the section of its version."
for f in "$work"/old_*.md; do
    echo
    sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$f"   # without trailing blank lines
done
} > "$out.tmp"
mv "$out.tmp" "$out"
