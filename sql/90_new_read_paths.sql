-- Read paths of newer PostgreSQL releases are masked like every other:
-- SQL/JSON constructors (16), JSON_TABLE and the SQL/JSON query functions,
-- MERGE ... RETURNING (17), virtual generated columns and RETURNING
-- OLD/NEW (18).  On an older server the file stops here (expected output
-- 90_new_read_paths_1.out).
SELECT current_setting('server_version_num')::int >= 180000 AS pg18 \gset
\if :pg18
\else
\echo 'PostgreSQL before 18: nothing to test'
\quit
\endif

CREATE TABLE nr_customers (id bigint PRIMARY KEY, email consent.email, name consent.name, note text);
SELECT consent.protect('nr_customers', 'id');
-- subjects 9001-9003 are used by no other test file of the suite (the ledger is shared)
INSERT INTO nr_customers VALUES (9001, 'jane.doe@example.com', 'Jane Doe', 'n1'), (9002, 'max@example.de', 'Max Mustermann', 'n2');
SELECT consent.grant(9001, 'user.contact.email', 'personalize') > 0 AS granted;
CREATE ROLE nr_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON nr_customers TO nr_app;
SELECT consent.allow_purpose('nr_app', 'personalize');
SET ROLE nr_app;
SET consent.purpose = 'personalize';

-- SQL/JSON constructors and query functions see masked values
SELECT id, JSON_OBJECT('email': email, 'name': name) FROM nr_customers ORDER BY id;
SELECT JSON_ARRAYAGG(email ORDER BY id) FROM nr_customers;
SELECT id, JSON_VALUE(to_jsonb(c), '$.email') AS email, JSON_QUERY(to_jsonb(c), '$.name') AS name
FROM nr_customers c ORDER BY id;
SELECT id FROM nr_customers c WHERE JSON_EXISTS(to_jsonb(c), '$.email ? (@ == "max@example.de")');
-- JSON_TABLE over a document built from the row
SELECT jt.* FROM nr_customers c,
    JSON_TABLE(JSON_OBJECT('id': c.id, 'email': c.email), '$' COLUMNS (id bigint PATH '$.id', email text PATH '$.email')) jt
ORDER BY jt.id;

-- MERGE ... RETURNING: what is returned is masked
MERGE INTO nr_customers t USING (VALUES (9002::bigint, 'n2b')) v(id, note) ON t.id = v.id
WHEN MATCHED THEN UPDATE SET note = v.note
RETURNING merge_action(), t.id, t.email, t.name;

-- RETURNING OLD and NEW: both masked
UPDATE nr_customers SET note = 'n1b' WHERE id = 9001 RETURNING old.email AS old_email, new.email AS new_email, old.name, new.name;
UPDATE nr_customers SET note = 'n2c' WHERE id = 9002 RETURNING old.email AS old_email, new.email AS new_email, old.name, new.name;
INSERT INTO nr_customers VALUES (9003, 'zoe@example.no', 'Zoë', 'n3') RETURNING old.email, new.email;
DELETE FROM nr_customers WHERE id = 9003 RETURNING old.email, old.name, new.email;
-- a predicate on OLD sees the mask too
UPDATE nr_customers SET note = note WHERE id = 9002 RETURNING old.email = 'max@example.de' AS probe;
RESET consent.purpose;
RESET ROLE;

-- COPY FROM with ON_ERROR ignore and LOG_VERBOSITY verbose (17): the
-- notice quotes the rejected input (the client's own), never a stored
-- cell; what was loaded is masked on reading like any row
CREATE TABLE nr_born (id bigint, born consent.birthdate, email consent.email);
SELECT consent.protect('nr_born', 'id');
COPY nr_born FROM STDIN (ON_ERROR ignore, LOG_VERBOSITY verbose);
9011	1987-06-05	ann@example.com
9012	not a date	ben@example.org
9013	2001-12-31	cem@example.net
\.
GRANT SELECT ON nr_born TO nr_app;
SET ROLE nr_app;
SET consent.purpose = 'personalize';
SELECT * FROM nr_born ORDER BY id;
RESET consent.purpose;
RESET ROLE;
DELETE FROM consent.protected_tables WHERE relation = 'nr_born'::regclass;
DROP TABLE nr_born;

-- virtual generated columns (the default kind in 18): PostgreSQL 18 refuses
-- one that reads a column of a user-defined type (every tagged type is a
-- domain) and one of a domain type, so none is computed from a tagged
-- cell; pg_consent refuses such a column of an untagged type as well
-- (0A000) should a later release allow it.  One over untagged columns works.
\set VERBOSITY sqlstate
ALTER TABLE nr_customers ADD COLUMN local_part text GENERATED ALWAYS AS (split_part(email::text, '@', 1));
ALTER TABLE nr_customers ADD COLUMN email_lower consent.email GENERATED ALWAYS AS (lower(note)::consent.email) VIRTUAL;
ALTER TABLE nr_customers ADD COLUMN local_part text GENERATED ALWAYS AS (split_part(email::text, '@', 1)) STORED;
\set VERBOSITY default
ALTER TABLE nr_customers ADD COLUMN local_part text GENERATED ALWAYS AS (split_part(email::text, '@', 1));
ALTER TABLE nr_customers ADD COLUMN note_upper text GENERATED ALWAYS AS (upper(note)) VIRTUAL;
SELECT attname, attgenerated FROM pg_attribute WHERE attrelid = 'nr_customers'::regclass AND attgenerated <> '' ORDER BY attnum;
SET ROLE nr_app;
SET consent.purpose = 'personalize';
SELECT id, email, note_upper FROM nr_customers ORDER BY id;
SELECT c FROM nr_customers c ORDER BY id;
RESET consent.purpose;
RESET ROLE;

SELECT consent.revoke_purpose('nr_app', 'personalize');
DROP OWNED BY nr_app;
DROP ROLE nr_app;
DELETE FROM consent.protected_tables WHERE relation = 'nr_customers'::regclass;
DROP TABLE nr_customers;
