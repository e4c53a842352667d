-- Benchmark data: :n customers with the seven survey attributes as tagged
-- columns, consent following the 2019 survey (seed/customer-data-survey-2019)
-- for personalize, half of it for marketing; an untagged copy (the physical
-- limit) and the two hand-written masking views a DBA would write instead.
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pg_consent;
DROP TABLE IF EXISTS customers, customers_raw, orders, consent_bits CASCADE;

CREATE TABLE customers (
    id bigint PRIMARY KEY,
    email consent.email, name consent.name, born consent.birthdate, address consent.address,
    fingerprint consent.fingerprint, dna consent.dna, searches consent.search_history);
INSERT INTO customers
SELECT g, 'user' || g || '@example.com', 'Kunde' || g || ' Müller', date '1940-01-01' + (g % 25000),
       'Hauptstraße ' || (g % 300) || ', ' || (10000 + g % 89999) || ' Berlin',
       decode(md5(g::text), 'hex'), decode(md5((g * 7)::text) || md5((g * 11)::text), 'hex'),
       'shoes size ' || (g % 13) || ' red'
FROM generate_series(1, :n) g;
SELECT consent.protect('customers', 'id');

CREATE TABLE customers_raw (
    id bigint PRIMARY KEY, email text, name text, born date, address text,
    fingerprint bytea, dna bytea, searches text);
INSERT INTO customers_raw SELECT * FROM customers;

CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_id bigint NOT NULL, amount numeric, shipping consent.address);
INSERT INTO orders SELECT g, 1 + (hashint8(g) & 2147483647) % :n, (g % 1000) / 10.0, 'Packstation ' || (g % 500)
FROM generate_series(1, :n) g;
CREATE INDEX ON orders (customer_id);
SELECT consent.protect('orders', 'customer_id');

-- Consent per survey (share of customers who would share it), drawn
-- independently per attribute with a deterministic hash.
CREATE TEMP TABLE rates (k int, category text, share numeric);
INSERT INTO rates VALUES
    (1, 'user.contact.email', 0.57), (2, 'user.name', 0.41), (3, 'user.demographic.date_of_birth', 0.36),
    (4, 'user.contact.address', 0.35), (5, 'user.biometric.fingerprint', 0.04),
    (6, 'user.health_and_medical.genetic', 0.02), (7, 'user.behavior.search_history', 0.03);
-- Bulk load: the same rows consent.grant() writes (ledger + derived state),
-- inserted set-wise so that 1M subjects load in seconds.
INSERT INTO consent.ledger (subject, category, purpose, action, recorded_at, recorded_by, source)
SELECT g::text, r.category, p.purpose, 'grant', now() - interval '1 day', 'bench', 'bench setup'
FROM generate_series(1, :n) g, rates r, (VALUES ('personalize', 1.0), ('marketing', 0.5)) p(purpose, factor)
WHERE (hashint8(g * 8 + r.k) & 2147483647) % 10000 < r.share * p.factor * 10000;
INSERT INTO consent.subject_state (subject, category, purpose, event_id, action, valid_until, recorded_at)
SELECT subject, category, purpose, id, action, valid_until, recorded_at FROM consent.ledger;

-- The best a DBA would write by hand: a per-subject consent bitmap ...
CREATE TABLE consent_bits (subject bigint PRIMARY KEY, personalize int NOT NULL DEFAULT 0);
INSERT INTO consent_bits
SELECT subject::bigint, sum(DISTINCT CASE category
        WHEN 'user.contact.email' THEN 1 WHEN 'user.name' THEN 2 WHEN 'user.demographic.date_of_birth' THEN 4
        WHEN 'user.contact.address' THEN 8 WHEN 'user.biometric.fingerprint' THEN 16
        WHEN 'user.health_and_medical.genetic' THEN 32 WHEN 'user.behavior.search_history' THEN 64 END)
FROM consent.subject_state WHERE purpose = 'personalize' AND action = 'grant' GROUP BY subject;
-- ... joined with CASE per column (masks written in SQL)
CREATE VIEW customers_join_view AS
SELECT c.id,
    CASE WHEN b.personalize & 1 <> 0 THEN c.email ELSE left(c.email, 1) || '***' || substr(c.email, strpos(c.email, '@')) END AS email,
    CASE WHEN b.personalize & 2 <> 0 THEN c.name ELSE regexp_replace(c.name, '(\w)\w*', '\1.', 'g') END AS name,
    CASE WHEN b.personalize & 4 <> 0 THEN c.born ELSE date_trunc('year', c.born)::date END AS born,
    CASE WHEN b.personalize & 8 <> 0 THEN c.address ELSE '[redacted]' END AS address,
    CASE WHEN b.personalize & 16 <> 0 THEN c.fingerprint END AS fingerprint,
    CASE WHEN b.personalize & 32 <> 0 THEN c.dna END AS dna,
    CASE WHEN b.personalize & 64 <> 0 THEN c.searches END AS searches
FROM customers_raw c LEFT JOIN consent_bits b ON b.subject = c.id;
-- ... or one EXISTS per column against the consent state
CREATE VIEW customers_exists_view AS
SELECT c.id,
    CASE WHEN EXISTS (SELECT FROM consent.subject_state s WHERE s.subject = c.id::text AND s.purpose = 'personalize'
                      AND s.action = 'grant' AND s.category IN ('user', 'user.contact', 'user.contact.email'))
         THEN c.email ELSE left(c.email, 1) || '***' || substr(c.email, strpos(c.email, '@')) END AS email,
    CASE WHEN EXISTS (SELECT FROM consent.subject_state s WHERE s.subject = c.id::text AND s.purpose = 'personalize'
                      AND s.action = 'grant' AND s.category IN ('user', 'user.name'))
         THEN c.name ELSE regexp_replace(c.name, '(\w)\w*', '\1.', 'g') END AS name,
    CASE WHEN EXISTS (SELECT FROM consent.subject_state s WHERE s.subject = c.id::text AND s.purpose = 'personalize'
                      AND s.action = 'grant' AND s.category IN ('user', 'user.demographic', 'user.demographic.date_of_birth'))
         THEN c.born ELSE date_trunc('year', c.born)::date END AS born,
    CASE WHEN EXISTS (SELECT FROM consent.subject_state s WHERE s.subject = c.id::text AND s.purpose = 'personalize'
                      AND s.action = 'grant' AND s.category IN ('user', 'user.contact', 'user.contact.address'))
         THEN c.address ELSE '[redacted]' END AS address,
    CASE WHEN EXISTS (SELECT FROM consent.subject_state s WHERE s.subject = c.id::text AND s.purpose = 'personalize'
                      AND s.action = 'grant' AND s.category IN ('user.biometric', 'user.biometric.fingerprint'))
         THEN c.fingerprint END AS fingerprint,
    CASE WHEN EXISTS (SELECT FROM consent.subject_state s WHERE s.subject = c.id::text AND s.purpose = 'personalize'
                      AND s.action = 'grant' AND s.category IN ('user.health_and_medical', 'user.health_and_medical.genetic'))
         THEN c.dna END AS dna,
    CASE WHEN EXISTS (SELECT FROM consent.subject_state s WHERE s.subject = c.id::text AND s.purpose = 'personalize'
                      AND s.action = 'grant' AND s.category IN ('user', 'user.behavior', 'user.behavior.search_history'))
         THEN c.searches END AS searches
FROM customers_raw c;

-- Row filtering (issue 5): require_consent against no policy and against a
-- hand-written EXISTS policy on the ledger.
DROP TABLE IF EXISTS customers_rc, customers_ex;
CREATE TABLE customers_rc (id bigint PRIMARY KEY, email consent.email, name consent.name);
INSERT INTO customers_rc SELECT id, email, name FROM customers;
SELECT consent.protect('customers_rc', 'id');
SELECT consent.require_consent('customers_rc', 'marketing');
CREATE TABLE customers_ex (id bigint PRIMARY KEY, email text, name text);
INSERT INTO customers_ex SELECT id, email, name FROM customers;
ALTER TABLE customers_ex ENABLE ROW LEVEL SECURITY;
CREATE POLICY marketing_rows ON customers_ex USING (
    current_setting('consent.purpose', true) IS DISTINCT FROM 'marketing'
    OR EXISTS (SELECT FROM consent.ledger l WHERE l.subject = customers_ex.id::text AND l.purpose = 'marketing'
               AND l.action = 'grant'
               AND NOT EXISTS (SELECT FROM consent.ledger w WHERE w.subject = l.subject AND w.purpose = 'marketing'
                               AND w.action = 'withdraw' AND w.recorded_at > l.recorded_at)));
CREATE INDEX ON consent.ledger (subject, purpose, action);

DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_app') THEN CREATE ROLE bench_app LOGIN PASSWORD 'bench'; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_bypass') THEN CREATE ROLE bench_bypass LOGIN BYPASSRLS PASSWORD 'bench'; END IF;
END $$;
GRANT SELECT ON customers, customers_raw, orders, consent_bits, customers_join_view, customers_exists_view,
    customers_rc, customers_ex TO bench_app, bench_bypass;
GRANT SELECT ON consent.ledger TO bench_app; -- the hand-written policy reads it as the querying role
SELECT consent.allow_purpose('bench_app', 'personalize'), consent.allow_purpose('bench_app', 'marketing');
SELECT consent.allow_recording('bench_app');
-- The physical limit of recording: one plain INSERT of a ledger-sized row
-- per transaction, no validation, no derived state.
DROP TABLE IF EXISTS plain_events;
CREATE TABLE plain_events (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, subject text NOT NULL,
    category text NOT NULL, purpose text NOT NULL, action text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(), recorded_by name NOT NULL DEFAULT current_user);
CREATE INDEX ON plain_events (subject, recorded_at, id);
GRANT INSERT ON plain_events TO bench_app;
VACUUM ANALYZE customers, customers_raw, orders, consent_bits, customers_rc, customers_ex, consent.subject_state, consent.ledger;
VACUUM ANALYZE plain_events;
-- write everything out now, not during the measurements
CHECKPOINT;
SELECT count(*) AS ledger_events FROM consent.ledger;
