#!/usr/bin/env bash
# make bench-varied: do make bench's scan figures depend on its data?  The
# same full-scan measurement (raw table, bypass role, pg_consent) on five
# data sets of BENCH_ROWS customers (default 1,000,000) with the seven
# survey attributes as tagged columns, consent at the survey's rates for
# personalize, and two aggregates over every column:
#   key order   bigint subjects, rows in subject order (make bench's data)
#   hash order  bigint subjects, rows in hash order (each row a random subject)
#   uuid        uuid subjects, rows in random uuid order
#   text        text subjects ('K-00000042-DE'), non-ASCII names, e-mail
#               addresses and streets, rows in hash order
#   parents     bigint subjects in order, consent given through parent
#               categories (user, user.contact) and leaves, some of it
#               withdrawn again for one leaf
# Aggregates: make bench's (LIKE, length(), max(born)) and another one
# (max()/min() of text, which compares instead of measuring, and count()).
# Each figure: the median of BENCH_ROUNDS rounds (default 3; the variants
# run in turn), each the median of BENCH_REPS warm runs (default 3) in one
# session pinned to one CPU (the first run not counted).  pg_consent is measured as planned
# and with consent.mask_scan = off (the aggregate's plain mask calls, no
# ConsentMask node and no read-ahead).  Writes test/bench/results-varied.md.
# Runs in run.sh's throwaway cluster (run.sh execs it when BENCH_VARIED=1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${BENCH_ROWS:-1000000}
reps=${BENCH_REPS:-3}
rounds=${BENCH_ROUNDS:-3}
out=$here/results-varied.md
bench_cpu=${BENCH_CPU:-$(awk -F'[-,]' '/^Cpus_allowed_list/ {print $NF}' /proc/self/status)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "setting up 5 data sets of $n customers ..."
t0=$(date +%s)
psql -X -q -v ON_ERROR_STOP=1 -v n="$n" <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_consent;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_app') THEN CREATE ROLE bench_app LOGIN PASSWORD 'bench'; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_bypass') THEN CREATE ROLE bench_bypass LOGIN BYPASSRLS PASSWORD 'bench'; END IF;
END $$;
SELECT consent.allow_purpose('bench_app', 'personalize');
-- one generator per data set: g -> (subject, the seven values), in table order
CREATE TEMP TABLE gen AS
SELECT g,
       'user' || g || '@example.com' AS email, 'Kunde' || g || ' Müller' AS name,
       date '1940-01-01' + (g % 25000)::int AS born,
       'Hauptstraße ' || (g % 300) || ', ' || (10000 + g % 89999) || ' Berlin' AS address,
       decode(md5(g::text), 'hex') AS fingerprint, decode(md5((g * 7)::text) || md5((g * 11)::text), 'hex') AS dna,
       'shoes size ' || (g % 13) || ' red' AS searches
FROM generate_series(1, :n) g;
CREATE FUNCTION pg_temp.make(tab text, subject_type text, subject_expr text, order_expr text, texts text) RETURNS void
    LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE format($q$CREATE TABLE %I (id %s PRIMARY KEY, email consent.email, name consent.name, born consent.birthdate,
        address consent.address, fingerprint consent.fingerprint, dna consent.dna, searches consent.search_history)$q$,
        tab, subject_type);
    EXECUTE format($q$INSERT INTO %I SELECT %s, %s FROM pg_temp.gen ORDER BY %s$q$, tab, subject_expr, texts, order_expr);
    EXECUTE format('CREATE TABLE %I AS SELECT id, email::text AS email, name::text AS name, born::date AS born,
        address::text AS address, fingerprint::bytea AS fingerprint, dna::bytea AS dna, searches::text AS searches
        FROM %I', tab || '_raw', tab);
    EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (id)', tab || '_raw');
    PERFORM consent.protect(tab::regclass, 'id');
    EXECUTE format('GRANT SELECT ON %I, %I TO bench_app, bench_bypass', tab, tab || '_raw');
END
$f$;
SELECT pg_temp.make('v_keyorder', 'bigint', 'g', 'g',
    'email, name, born, address, fingerprint, dna, searches');
SELECT pg_temp.make('v_hashorder', 'bigint', '1000000000 + g', 'hashint8(g)',
    'email, name, born, address, fingerprint, dna, searches');
SELECT pg_temp.make('v_uuid', 'uuid', 'md5(''v'' || g)::uuid', 'g',
    'email, name, born, address, fingerprint, dna, searches');
SELECT pg_temp.make('v_text', 'text', '''K-'' || lpad(g::text, 8, ''0'') || ''-DE''', 'hashint8(g)',
    $t$'jürgen.' || g || '@straße.example', 'Zoë Ångström-Çelik ' || g || ' Øre', born,
       'Große Straße ' || (g % 300) || ', ' || (10000 + g % 89999) || ' Köln', fingerprint, dna,
       'schuhe größe ' || (g % 13) || ' rot'$t$);
SELECT pg_temp.make('v_parents', 'bigint', '2000000000 + g', 'g',
    'email, name, born, address, fingerprint, dna, searches');

-- Consent: the ledger and derived state consent.grant() writes, set-wise.
-- Leaves at the survey's rates for the first four sets (one draw per
-- subject and attribute, as in make bench).
CREATE TEMP TABLE rates (k int, category text, share numeric);
INSERT INTO rates VALUES
    (1, 'user.contact.email', 0.57), (2, 'user.name', 0.41), (3, 'user.demographic.date_of_birth', 0.36),
    (4, 'user.contact.address', 0.35), (5, 'user.biometric.fingerprint', 0.04),
    (6, 'user.health_and_medical.genetic', 0.02), (7, 'user.behavior.search_history', 0.03);
CREATE TEMP TABLE events (subject text, category text, action text, k int);
INSERT INTO events
SELECT s.subject, r.category, 'grant', 1
FROM (SELECT g, g::text AS subject FROM generate_series(1, :n) g
      UNION ALL SELECT g, (1000000000 + g)::text FROM generate_series(1, :n) g
      UNION ALL SELECT g, md5('v' || g)::uuid::text FROM generate_series(1, :n) g
      UNION ALL SELECT g, 'K-' || lpad(g::text, 8, '0') || '-DE' FROM generate_series(1, :n) g) s, rates r
WHERE (hashint8(s.g * 8 + r.k) & 2147483647) % 10000 < r.share * 10000;
-- The parents set: 20 % grant user (all but special categories), 25 %
-- user.contact (e-mail and address), the others leaves at the survey's
-- rates; a tenth of the user.contact grants withdraw the e-mail leaf later.
INSERT INTO events
SELECT (2000000000 + g)::text, c.category, 'grant', 1
FROM generate_series(1, :n) g,
     LATERAL (SELECT (hashint8(g) & 2147483647) % 100 AS bucket) b,
     LATERAL (SELECT 'user' AS category WHERE b.bucket < 20
              UNION ALL SELECT 'user.contact' WHERE b.bucket >= 20 AND b.bucket < 45
              UNION ALL SELECT r.category FROM rates r
               WHERE b.bucket >= 45 AND (hashint8(g * 8 + r.k) & 2147483647) % 10000 < r.share * 10000) c;
INSERT INTO events
SELECT (2000000000 + g)::text, 'user.contact.email', 'withdraw', 2
FROM generate_series(1, :n) g
WHERE (hashint8(g) & 2147483647) % 100 BETWEEN 20 AND 44 AND g % 10 = 0;
INSERT INTO consent.ledger (subject, category, purpose, action, recorded_at, recorded_by, source)
SELECT subject, category, 'personalize', action, now() - interval '1 day' + k * interval '1 hour', 'bench', 'varied'
FROM events ORDER BY k;
INSERT INTO consent.subject_state (subject, category, purpose, event_id, action, valid_until, recorded_at,
                                   withdrawn_at, withdrawn_id)
SELECT DISTINCT ON (subject, category) subject, category, purpose, id, action, valid_until, recorded_at,
       CASE WHEN action = 'withdraw' THEN recorded_at END, CASE WHEN action = 'withdraw' THEN id END
FROM consent.ledger WHERE source = 'varied' ORDER BY subject, category, id DESC;
VACUUM ANALYZE;
CHECKPOINT;
SQL
setup_s=$(( $(date +%s) - t0 ))
events=$(psql -X -A -t -c "SELECT count(*) FROM consent.ledger WHERE source = 'varied'")

median_of() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# median ms of a statement over $reps warm runs in one session pinned to bench_cpu
median_ms() { # role relation query-template [options]
    local f q
    f=$(mktemp -p "$work")
    q=${3//@/$2}
    {
        if [ "$bench_cpu" != none ]; then
            echo 'SELECT pg_backend_pid() AS bench_pid \gset'
            echo '\setenv BENCH_PID :bench_pid'
            echo "\\! taskset -pc $bench_cpu \$BENCH_PID >/dev/null"
        fi
        echo '\o /dev/null'
        echo '\timing on'
        for _ in $(seq 0 "$reps"); do echo "$q;"; done
    } > "$f"
    PGUSER=$1 PGPASSWORD=bench PGOPTIONS="-c consent.purpose=personalize ${4:-}" psql -X -q -f "$f" \
        | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n +2 | median_of
}
agg1="SELECT count(*) FILTER (WHERE email LIKE 'u%'), sum(length(name)), max(born), sum(length(address)),
       sum(length(fingerprint)), sum(length(dna)), sum(length(searches)) FROM @"
agg2="SELECT max(email), min(name), min(born), max(address), count(fingerprint), count(dna), max(searches) FROM @"

echo "building the shared state ..."
PGUSER=bench_app PGPASSWORD=bench PGOPTIONS="-c consent.purpose=personalize" psql -X -q -A -t \
    -c "SELECT count(email) FROM v_keyorder WHERE id = 1" >/dev/null
read -r s_status s_subjects s_bytes s_build <<< "$(psql -X -A -t -F ' ' -c "SELECT status, subjects, bytes, build_ms FROM consent.shared_state()")"

# The variants of one figure run in turn, round after round, and each is
# the median of its rounds' medians: this VM's slow phases last seconds and
# would otherwise land on one variant.
rows=""
for set in keyorder hashorder uuid text parents; do
    for q in 1 2; do
        tmpl=$agg1; [ $q = 2 ] && tmpl=$agg2
        echo "$set, aggregate $q ..."
        raw_r="" byp_r="" con_r="" calls_r=""
        for _ in $(seq "$rounds"); do
            raw_r+="$(median_ms bench_app "v_${set}_raw" "$tmpl")"$'\n'
            byp_r+="$(median_ms bench_bypass "v_$set" "$tmpl")"$'\n'
            con_r+="$(median_ms bench_app "v_$set" "$tmpl")"$'\n'
            calls_r+="$(median_ms bench_app "v_$set" "$tmpl" "-c consent.mask_scan=off")"$'\n'
        done
        raw=$(printf '%s' "$raw_r" | median_of)
        byp=$(printf '%s' "$byp_r" | median_of)
        con=$(printf '%s' "$con_r" | median_of)
        calls=$(printf '%s' "$calls_r" | median_of)
        rows+="| $set | $q | $raw | $byp | $con | $calls | $(ratio "$raw" "$con") × | $(ratio "$raw" "$calls") × | $(ratio "$raw" "$byp") × |"$'\n'
    done
done

server=$(psql -X -A -t -c "SELECT current_setting('server_version')")
{
echo "# pg_consent on varied data"
echo
echo "$(date -u +%F), PostgreSQL $server, 5 data sets of $n customers, $events consent events (set up in ${setup_s} s); per variant the median of $rounds rounds (the variants in turn), each the median of $reps warm runs in one session (on CPU $bench_cpu), max_parallel_workers_per_gather = 0. Command: \`BENCH_ROWS=$n BENCH_REPS=$reps BENCH_ROUNDS=$rounds make bench-varied\`."
echo
echo "Aggregate 1: \`count(*) FILTER (WHERE email LIKE 'u%')\`, \`sum(length(...))\` of five columns, \`max(born)\` (make bench's). Aggregate 2: \`max()\`/\`min()\` of the text columns and the date, \`count()\` of the two binary ones."
echo
echo "pg_consent: as planned (the aggregate's mask calls computed by a ConsentMask node under it, which reads ahead when the rows come in no subject order); plain calls: \`consent.mask_scan = off\` (every mask call evaluated by the aggregate, no node)."
echo
echo "| data set | aggregate | raw table (ms) | bypass role (ms) | pg_consent (ms) | plain calls (ms) | pg_consent / raw | plain calls / raw | bypass / raw |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s' "$rows"
echo
echo "- shared consent state: $s_status, $s_subjects subjects in $(awk -v b="$s_bytes" 'BEGIN{printf "%.0f", b/1048576}') MB, built in $s_build ms"
} > "$out"
cat "$out"
