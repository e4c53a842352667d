-- consent.discover: suggests categories for untagged columns from their
-- names and a bounded sample of their values, reading as the caller.
CREATE SCHEMA dsc;
CREATE TABLE dsc.customers_raw (
    id bigint PRIMARY KEY,
    contact text,          -- e-mail addresses, no name hint
    telefon text,          -- phone numbers in international and national formats
    konto text,            -- IBANs, no name hint; two fail the checksum
    geburtsdatum date,     -- birth dates with a German name hint
    dob_text text,         -- birth dates written as text
    ip text,               -- IPv4 and IPv6 as text
    last_seen_from inet,   -- typed IP addresses, no hint
    vorname text,
    strasse text,
    zip int,               -- not sampled (type), name hint only
    notes text,            -- free text: nothing to suggest
    product_name text,     -- capitalized words, but "name" only counts alone
    created_at date,       -- recent dates: not birth dates
    email consent.email    -- tagged already: never listed
);
INSERT INTO dsc.customers_raw
SELECT i,
       'customer' || i || '@example.com',
       (ARRAY['+49 30 1234567', '(030) 1234-567', '+1-202-555-0143', '0049 (0)30 7654321', '030/1234567'])[i % 5 + 1],
       CASE WHEN i <= 2 THEN 'DE88370400440532013000'  -- wrong check digits
            WHEN i % 2 = 0 THEN 'DE89 3704 0044 0532 0130 00' ELSE 'GB82WEST12345698765432' END,
       date '1950-01-01' + i * 300,
       (ARRAY['05.06.1987', '1990-01-02', '12/31/1975', '2099-01-01', 'not a date'])[i % 5 + 1],
       CASE WHEN i % 2 = 0 THEN '192.168.0.' || i ELSE '2001:db8::' || i END,
       ('10.1.0.' || i)::inet,
       (ARRAY['Jürgen', 'Zoë', 'Ødegård', 'José', 'Anne-Marie'])[i % 5 + 1],
       'Hauptstraße ' || i,
       10115 + i,
       'called on ' || i || ', no answer',
       (ARRAY['Widget', 'Gadget', 'Sprocket'])[i % 3 + 1],
       current_date - i,
       'tagged@example.com'
FROM generate_series(1, 20) i;

SELECT relation, column_name, suggested_category, matches, sampled, confidence, reason
FROM consent.discover('dsc') ORDER BY relation::text, column_name;

-- the sample is bounded by sample_rows
SELECT column_name, matches, sampled FROM consent.discover('dsc', 7)
WHERE column_name IN ('contact', 'konto') ORDER BY 1;

-- a large table is sampled with TABLESAMPLE over its pages, at most
-- sample_rows rows: not just its first rows (the first 2000 hold no e-mail
-- address, so a plain LIMIT would find none)
CREATE TABLE dsc.big (id int, mail text);
INSERT INTO dsc.big SELECT i, CASE WHEN i > 2000 THEN 'person' || i || '@example.org' ELSE 'n/a' END
FROM generate_series(1, 50000) i;
ANALYZE dsc.big;
SELECT column_name, suggested_category, sampled, matches > 50 AS spread_over_the_table
FROM consent.discover('dsc', 100) WHERE relation = 'dsc.big'::regclass;

-- a partitioned table is sampled through its partitions, which are not
-- listed on their own
CREATE TABLE dsc.visits (at date, client_ip text) PARTITION BY RANGE (at);
CREATE TABLE dsc.visits_2024 PARTITION OF dsc.visits FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE dsc.visits_2025 PARTITION OF dsc.visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO dsc.visits VALUES ('2024-03-01', '10.0.0.1'), ('2025-03-01', '::1'), ('2025-04-01', 'fe80::1');
SELECT relation, column_name, suggested_category, matches, sampled FROM consent.discover('dsc')
WHERE relation::text LIKE 'dsc.visits%';

-- it reads with the caller's privileges: columns it may not read are
-- reported as 'no privilege' and never sampled (no matches, no count)
CREATE ROLE dsc_reader;
GRANT USAGE ON SCHEMA dsc TO dsc_reader;
GRANT SELECT (id, contact, vorname) ON dsc.customers_raw TO dsc_reader;
SET ROLE dsc_reader;
SELECT relation, column_name, suggested_category, matches, sampled, confidence, reason
FROM consent.discover('dsc') ORDER BY relation::text, column_name;
RESET ROLE;

-- row-level security applies to the sample: the reader sees no row of
-- this table, so only the name speaks
CREATE TABLE dsc.rls (id int, handy text);
INSERT INTO dsc.rls VALUES (1, '+49 171 1234567'), (2, '+49 171 7654321');
ALTER TABLE dsc.rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_own ON dsc.rls USING (false);
GRANT SELECT ON dsc.rls TO dsc_reader;
SELECT column_name, matches, sampled FROM consent.discover('dsc') WHERE relation = 'dsc.rls'::regclass;
SET ROLE dsc_reader;
SELECT column_name, suggested_category, matches, sampled, confidence, reason
FROM consent.discover('dsc') WHERE relation = 'dsc.rls'::regclass;
RESET ROLE;

-- masking applies to the sample too: untagged columns of a protected table
-- are read as usual, tagged ones are not read at all
CREATE TABLE dsc.shop (id bigint, e_mail text, mail consent.email);
INSERT INTO dsc.shop VALUES (1, 'a@example.com', 'b@example.com');
SELECT consent.protect('dsc.shop', 'id');
GRANT SELECT ON dsc.shop TO dsc_reader;
SET ROLE dsc_reader;
SELECT column_name, suggested_category, matches, sampled FROM consent.discover('dsc')
WHERE relation = 'dsc.shop'::regclass;
RESET ROLE;

-- sampling one table is stopped after its time budget (2 s); the other
-- tables are still sampled and the statement goes on
CREATE FUNCTION dsc.slow() RETURNS boolean LANGUAGE sql VOLATILE AS $$ SELECT pg_sleep(0.1) IS NOT NULL $$;
CREATE TABLE dsc.slow_table (id int, phone text);
INSERT INTO dsc.slow_table SELECT i, '+49 30 123456' || i FROM generate_series(1, 100) i;
ALTER TABLE dsc.slow_table ENABLE ROW LEVEL SECURITY;
CREATE POLICY slow ON dsc.slow_table USING (dsc.slow());
GRANT SELECT ON dsc.slow_table TO dsc_reader;
GRANT EXECUTE ON FUNCTION dsc.slow() TO dsc_reader;
SET ROLE dsc_reader;
SELECT relation, column_name, suggested_category, matches, sampled, confidence, reason
FROM consent.discover('dsc') WHERE relation IN ('dsc.slow_table'::regclass, 'dsc.rls'::regclass)
ORDER BY relation::text, column_name;
-- a statement timeout of the caller is not swallowed (and 57014 is not
-- caught by try(): PL/pgSQL's OTHERS leaves out query_canceled)
SET statement_timeout = '500ms';
\set VERBOSITY terse
SELECT count(*) FROM consent.discover('dsc');
\set VERBOSITY default
RESET statement_timeout;
SELECT 1 AS still_working;
RESET ROLE;

-- the value checks one by one
CREATE SCHEMA dsc_values;
CREATE TABLE dsc_values.t (v text);
INSERT INTO dsc_values.t VALUES
    ('+49 30 1234567'), ('(030) 1234-567'), ('+1-202-555-0143'), ('(202) 555-0143'),  -- phone numbers
    ('2020-01-01'), ('01.02.1990'), ('12345'), ('1234567890123456789'), ('+12');     -- not phone numbers
SELECT suggested_category, matches, sampled FROM consent.discover('dsc_values') ORDER BY 1;
TRUNCATE dsc_values.t;
INSERT INTO dsc_values.t VALUES
    ('DE89370400440532013000'), ('de89 3704 0044 0532 0130 00'), ('GB82WEST12345698765432'),
    ('FR1420041010050500013M02606'),                                     -- valid IBANs
    ('DE89370400440532013001'), ('GB82WEST1234569876543'), ('XX00');    -- checksum, length, shape
SELECT suggested_category, matches, sampled FROM consent.discover('dsc_values') ORDER BY 1;
TRUNCATE dsc_values.t;
INSERT INTO dsc_values.t VALUES
    ('1900-01-01'), ('29.02.2000'), ('1975/12/31'),                       -- plausible birth dates
    ('1899-12-31'), ('30.02.1990'), (to_char(current_date - interval '12 years', 'YYYY-MM-DD'));
SELECT suggested_category, matches, sampled FROM consent.discover('dsc_values') ORDER BY 1;
TRUNCATE dsc_values.t;
INSERT INTO dsc_values.t VALUES
    ('192.0.2.1'), ('2001:db8::1'), ('::ffff:192.0.2.1'),                 -- IP addresses
    ('256.1.1.1'), ('1.2.3'), ('2001:db8:::1');
SELECT suggested_category, matches, sampled FROM consent.discover('dsc_values') ORDER BY 1;
TRUNCATE dsc_values.t;
INSERT INTO dsc_values.t VALUES
    ('jane.doe@example.com'), ('jürgen@müller.de'), ('x+tag@sub.example.co.uk'),  -- e-mail addresses
    ('not an email'), ('a@b'), ('@example.com'), (repeat('a', 300) || '@example.com');
SELECT suggested_category, matches, sampled FROM consent.discover('dsc_values') ORDER BY 1;

-- column names in English and German, also camelCase and with digits
CREATE TABLE dsc_values.names ("firstName" int, nachname int, "E_Mail2" int, telefon int, handy int, dob int,
                                iban int, ip int, plz int, street int, customer_email int, email_verified int,
                                name int, product_name int, zip int, "Geburtsdatum" int, adresse int);
SELECT column_name, suggested_category, matches, sampled, confidence FROM consent.discover('dsc_values')
WHERE relation = 'dsc_values.names'::regclass ORDER BY column_name;

-- bad input
SELECT try($$SELECT * FROM consent.discover(NULL)$$);
SELECT try($$SELECT * FROM consent.discover('dsc', NULL)$$);
SELECT try($$SELECT * FROM consent.discover('dsc', 0)$$);
SELECT try($$SELECT * FROM consent.discover('dsc', 1000001)$$);
SELECT try($$SELECT * FROM consent.discover('no_such_schema')$$);
CREATE SCHEMA dsc_closed;
SET ROLE dsc_reader;
SELECT try($$SELECT * FROM consent.discover('dsc_closed')$$);
RESET ROLE;
-- an empty schema gives no rows
SELECT count(*) FROM consent.discover('dsc_closed');
-- EXECUTE is granted to PUBLIC (it reads as the caller)
SELECT has_function_privilege('dsc_reader', 'consent.discover(name, int)', 'EXECUTE');

DELETE FROM consent.protected_tables WHERE relation = 'dsc.shop'::regclass;
DROP SCHEMA dsc, dsc_values, dsc_closed CASCADE;
DROP ROLE dsc_reader;
