-- Benchmark data of make bench-standby and make bench-backends: :n customers
-- with tagged e-mail and name, a raw copy, and consent under personalize
-- for about half of each column (recorded with consent.record_many); the
-- role bench_app (password bench) reads both tables and records consent.
SET client_min_messages = warning;
CREATE EXTENSION pg_consent;
CREATE ROLE bench_app LOGIN PASSWORD 'bench';
CREATE TABLE customers (id bigint PRIMARY KEY, email consent.email, name consent.name);
INSERT INTO customers SELECT g, 'user' || g || '@example.com', 'Name ' || g FROM generate_series(1, :n) g;
CREATE TABLE customers_raw AS SELECT id, email::text AS email, name::text AS name FROM customers;
ALTER TABLE customers_raw ADD PRIMARY KEY (id);
SELECT consent.protect('customers', 'id');
GRANT SELECT ON customers, customers_raw TO bench_app;
SELECT consent.allow_purpose('bench_app', 'personalize');
SELECT consent.allow_recording('bench_app');
CREATE TABLE ev AS
SELECT g AS subject, c AS category, 'personalize' AS purpose,
       CASE WHEN hashint8(g * 3 + length(c)) & 1 = 0 THEN 'grant' ELSE 'withdraw' END AS action
FROM generate_series(1, :n) g, unnest(ARRAY['user.contact.email', 'user.name']) c;
SELECT consent.record_many('ev');
DROP TABLE ev;
VACUUM ANALYZE;
CHECKPOINT;
