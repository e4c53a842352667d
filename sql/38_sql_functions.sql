-- SQL functions behave as in PostgreSQL without the extension: scalar ones
-- inline (generated columns, expression indexes and partition keys built on
-- them are accepted; plans keep their index scans), set-returning ones in
-- FROM inline too, and a table read in an inlined body is masked.
CREATE TABLE sf_gen (a int, b text GENERATED ALWAYS AS (a || ' sec') STORED);
INSERT INTO sf_gen (a) VALUES (1), (2);
SELECT * FROM sf_gen ORDER BY a;
CREATE INDEX sf_gen_expr ON sf_gen ((a || 'x'));
CREATE FUNCTION sf_bucket(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 / 10';
CREATE TABLE sf_parts (k int, v text) PARTITION BY RANGE (sf_bucket(k));
CREATE TABLE sf_parts_0 PARTITION OF sf_parts FOR VALUES FROM (0) TO (1);
CREATE TABLE sf_parts_1 PARTITION OF sf_parts FOR VALUES FROM (1) TO (2);
INSERT INTO sf_parts VALUES (5, 'low'), (15, 'high');
SELECT tableoid::regclass, * FROM sf_parts ORDER BY k;

-- an inlined SQL CASE wrapper evaluates only the branch it takes
CREATE FUNCTION sf_if(bool, int, int) RETURNS int LANGUAGE sql IMMUTABLE
    AS 'SELECT CASE WHEN $1 THEN $2 ELSE $3 END';
CREATE TABLE sf_ints (f1 int);
INSERT INTO sf_ints VALUES (2147483647), (-2147483647);
SELECT f1, sf_if(f1 > 0, f1, f1 + 1) FROM sf_ints ORDER BY f1;

-- plans: an index on an inlinable function serves the predicate, a
-- set-returning SQL function becomes its body
CREATE TABLE sf_plain (x int);
INSERT INTO sf_plain SELECT generate_series(1, 1000);
CREATE FUNCTION sf_key(sf_plain) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1.x';
CREATE INDEX sf_plain_key ON sf_plain (sf_key(sf_plain));
ANALYZE sf_plain;
EXPLAIN (COSTS OFF) SELECT * FROM sf_plain WHERE sf_key(sf_plain) = 2;
CREATE FUNCTION sf_rows() RETURNS SETOF sf_plain LANGUAGE sql STABLE AS 'SELECT * FROM sf_plain';
EXPLAIN (COSTS OFF) SELECT * FROM sf_rows() WHERE x = 3;

-- set-returning SQL functions that read tagged columns: inlined and masked,
-- through a view, in a BEGIN ATOMIC body, with a LATERAL tagged argument
CREATE TABLE sf_cust (id bigint PRIMARY KEY, email consent.email, name consent.name);
SELECT consent.protect('sf_cust', 'id');
INSERT INTO sf_cust VALUES (1, 'jane.doe@example.com', 'Jane Doe'), (2, 'max@example.de', 'Max Mustermann');
SELECT consent.grant(1, 'user.contact.email', 'personalize') > 0 AS granted;
CREATE VIEW sf_cust_v AS SELECT id, email FROM sf_cust;
CREATE FUNCTION sf_emails() RETURNS TABLE (id bigint, email text) LANGUAGE sql STABLE
    AS $$ SELECT id, email FROM sf_cust $$;
CREATE FUNCTION sf_emails_v() RETURNS TABLE (id bigint, email text) LANGUAGE sql STABLE
    AS $$ SELECT id, email FROM sf_cust_v $$;
CREATE FUNCTION sf_one(bigint) RETURNS SETOF sf_cust LANGUAGE sql STABLE
    BEGIN ATOMIC SELECT * FROM sf_cust WHERE id = $1; END;
CREATE FUNCTION sf_echo(text) RETURNS SETOF text LANGUAGE sql STABLE AS 'SELECT $1';
CREATE FUNCTION sf_probe(text) RETURNS SETOF bigint LANGUAGE sql STABLE
    AS $$ SELECT id FROM sf_cust WHERE email = $1 $$;
CREATE ROLE sf_app;
GRANT SELECT ON sf_cust, sf_cust_v TO sf_app;
SELECT consent.allow_purpose('sf_app', 'personalize');
SET ROLE sf_app;
SET consent.purpose = 'personalize';
SELECT * FROM sf_emails() ORDER BY id;
SELECT * FROM sf_emails_v() ORDER BY id;
SELECT * FROM sf_one(2);
SELECT c.id, e FROM sf_cust c, LATERAL sf_echo(c.email) e ORDER BY c.id;
-- the inlined body's predicate sees masked values: no probing
SELECT * FROM sf_probe('max@example.de');
SELECT * FROM sf_probe('jane.doe@example.com');
-- inlined: the plan reads the table under the masking node, no Function Scan
EXPLAIN (COSTS OFF) SELECT * FROM sf_emails();
-- a cached plan of an inlined function is dropped when the function changes
PREPARE sf_cached AS SELECT * FROM sf_emails() ORDER BY id;
EXECUTE sf_cached;
RESET ROLE;
CREATE OR REPLACE FUNCTION sf_emails() RETURNS TABLE (id bigint, email text) LANGUAGE sql STABLE
    AS $$ SELECT id, 'replaced'::text FROM sf_cust $$;
SET ROLE sf_app;
EXECUTE sf_cached;
DEALLOCATE sf_cached;
-- not inlinable (STRICT): runs through the function manager, masked there too
RESET ROLE;
CREATE FUNCTION sf_strict(bigint) RETURNS SETOF text LANGUAGE sql STABLE STRICT
    AS $$ SELECT email FROM sf_cust WHERE id = $1 $$;
SET ROLE sf_app;
SELECT * FROM sf_strict(2);
EXPLAIN (COSTS OFF) SELECT * FROM sf_strict(2);
RESET consent.purpose;
RESET ROLE;

DROP FUNCTION sf_emails(), sf_emails_v(), sf_one(bigint), sf_echo(text), sf_probe(text), sf_strict(bigint);
DROP VIEW sf_cust_v;
DELETE FROM consent.protected_tables WHERE relation = 'sf_cust'::regclass;
DROP TABLE sf_cust;
SELECT consent.revoke_purpose('sf_app', 'personalize');
DROP ROLE sf_app;
DROP FUNCTION sf_rows(), sf_if(bool, int, int);
DROP TABLE sf_gen, sf_parts, sf_ints;
DROP FUNCTION sf_bucket(int);
DROP TABLE sf_plain CASCADE;
