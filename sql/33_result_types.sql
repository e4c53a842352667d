-- What a client is told about result columns: PostgreSQL describes a domain
-- column by its base type, so drivers decode tagged scalars as text, date,
-- bytea...; arrays of tagged types are described as arrays of their base
-- types too (text[], not consent.email[], which no driver knows), in
-- queries, RETURNING and cursors.  Values stored by the server keep their
-- tagged types: CREATE TABLE AS, views, functions.
CREATE TABLE rt_customers (id bigint, emails consent.email[], born consent.birthdate[], email consent.email);
SELECT consent.protect('rt_customers', 'id');
INSERT INTO rt_customers VALUES (1, '{jane.doe@example.com,jd@example.org}', '{1987-06-05}', 'jane.doe@example.com'),
                                (2, '{max@example.de}', '{1990-01-02}', 'max@example.de');
SELECT consent.grant(1, 'user.contact.email', 'personalize') > 0 AS granted;
CREATE ROLE rt_app;
GRANT SELECT, INSERT ON rt_customers TO rt_app;
SELECT consent.allow_purpose('rt_app', 'personalize');
SET ROLE rt_app;
SET consent.purpose = 'personalize';
SELECT id, emails, born, email FROM rt_customers ORDER BY id \gdesc
SELECT id, emails, born, email FROM rt_customers ORDER BY id;
-- sorting and comparing the described arrays works as before
SELECT emails FROM rt_customers ORDER BY emails DESC;
SELECT count(*) FROM rt_customers WHERE emails = '{m***@example.de}';
INSERT INTO rt_customers VALUES (3, '{zoe@example.no}', NULL, NULL) RETURNING id, emails \gdesc
BEGIN;
DECLARE c CURSOR FOR SELECT emails FROM rt_customers WHERE id = 1;
FETCH 1 FROM c;
COMMIT;
RESET consent.purpose;
RESET ROLE;
-- stored results keep the tag
CREATE TABLE rt_copy AS SELECT emails FROM rt_customers;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'rt_copy'::regclass AND attname = 'emails';
CREATE VIEW rt_view AS SELECT emails FROM rt_customers;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'rt_view'::regclass AND attname = 'emails';
CREATE FUNCTION rt_emails() RETURNS SETOF consent.email[] LANGUAGE plpgsql STABLE
    AS 'BEGIN RETURN QUERY SELECT emails FROM rt_customers ORDER BY id; END';
SELECT * FROM rt_emails();
DROP FUNCTION rt_emails();
DROP VIEW rt_view;
DROP TABLE rt_copy;
SELECT consent.revoke_purpose('rt_app', 'personalize');
DROP OWNED BY rt_app;
DROP ROLE rt_app;
DELETE FROM consent.protected_tables WHERE relation = 'rt_customers'::regclass;
DROP TABLE rt_customers;
