-- Stored generated columns (src/utility.cpp, refuse_untagged_generated()).
-- PostgreSQL computes a generated column from the raw cells of its row, so a
-- generated column of an untagged type that reads a tagged column would store
-- raw-derived values that masked roles read in full: refused (0A000), for
-- every way a table gets such a column; nothing is created or added.  A
-- generated column of a tagged type is masked like any tagged column.
\set SHOW_CONTEXT never

-- the full message once
CREATE TABLE gen_refused (
    id bigint PRIMARY KEY,
    email consent.email,
    local_part text GENERATED ALWAYS AS (split_part(email::text, '@', 1)) STORED
);
SELECT to_regclass('gen_refused') IS NULL AS not_created;

\set VERBOSITY sqlstate
-- the column read through a qualified reference to the row
CREATE TABLE gen_refused (id bigint, email consent.email,
                          n int GENERATED ALWAYS AS (length((gen_refused).email)) STORED);
-- a whole-row reference: PostgreSQL itself refuses it in generation expressions
CREATE TABLE gen_refused (id bigint, email consent.email,
                          j text GENERATED ALWAYS AS (row_to_json(gen_refused)::text) STORED);
-- types built from tagged types: a domain over one, an array of one
CREATE DOMAIN gen_work_email AS consent.email;
CREATE TABLE gen_refused (id bigint, email gen_work_email,
                          local_part text GENERATED ALWAYS AS (split_part(email::text, '@', 1)) STORED);
CREATE TABLE gen_refused (id bigint, emails consent.email[],
                          n int GENERATED ALWAYS AS (cardinality(emails)) STORED);
-- a domain that is not tagged is no tag
CREATE DOMAIN gen_plain_text AS text;
CREATE TABLE gen_refused (id bigint, email consent.email,
                          local_part gen_plain_text GENERATED ALWAYS AS (split_part(email::text, '@', 1)) STORED);
-- whatever the result type and however little it tells
CREATE TABLE gen_refused (id bigint, born consent.birthdate,
                          adult boolean GENERATED ALWAYS AS (born < '2000-01-01') STORED);
\set VERBOSITY default
SELECT count(*) AS created FROM pg_class WHERE relname = 'gen_refused';

-- allowed: tables without tagged columns are PostgreSQL's own business
CREATE TABLE gen_plain (a text, n int GENERATED ALWAYS AS (length(a)) STORED);
INSERT INTO gen_plain (a) VALUES ('abc');
SELECT * FROM gen_plain;
-- allowed: a generated column of a tagged type (the same category or another)
-- over a tagged column, and an untagged one over untagged columns only
CREATE TABLE gen_customers (
    id bigint PRIMARY KEY,
    email consent.email,
    local_part consent.email GENERATED ALWAYS AS (split_part(email::text, '@', 1)) STORED,
    first_name consent.name GENERATED ALWAYS AS (initcap(split_part(email::text, '.', 1))) STORED,
    work_email gen_work_email GENERATED ALWAYS AS (email) STORED,
    note text,
    note_length int GENERATED ALWAYS AS (length(note)) STORED
);
SELECT consent.protect('gen_customers', 'id');
INSERT INTO gen_customers (id, email, note) VALUES (3401, 'jane.doe@example.com', 'vip'),
                                                   (3402, 'max@example.de', 'new');

-- ALTER TABLE ... ADD COLUMN ... GENERATED ... STORED
\set VERBOSITY sqlstate
ALTER TABLE gen_customers ADD COLUMN domain_part text GENERATED ALWAYS AS (split_part(email::text, '@', 2)) STORED;
-- also next to allowed subcommands: the whole statement fails
ALTER TABLE gen_customers ADD COLUMN extra int,
                          ADD COLUMN domain_part text GENERATED ALWAYS AS (split_part(email::text, '@', 2)) STORED;
-- a tagged generated column changed to an untagged type
ALTER TABLE gen_customers ALTER COLUMN local_part TYPE text;
\set VERBOSITY default
ALTER TABLE gen_customers ADD COLUMN domain_part consent.email
    GENERATED ALWAYS AS (split_part(email::text, '@', 2)) STORED;
SELECT attname, atttypid::regtype FROM pg_attribute
 WHERE attrelid = 'gen_customers'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;

-- CREATE TABLE ... (LIKE ... INCLUDING GENERATED) copies tagged generated columns
CREATE TABLE gen_like (LIKE gen_customers INCLUDING GENERATED);
SELECT attname, atttypid::regtype, attgenerated FROM pg_attribute
 WHERE attrelid = 'gen_like'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
CREATE TABLE gen_like_plain (LIKE gen_plain INCLUDING GENERATED);
\set VERBOSITY sqlstate
CREATE TABLE gen_like_refused (LIKE gen_customers INCLUDING GENERATED,
                               domain_text text GENERATED ALWAYS AS (split_part(email::text, '@', 2)) STORED);
\set VERBOSITY default
SELECT to_regclass('gen_like_refused') IS NULL AS not_created;

-- partitions inherit the parent's generated columns
CREATE TABLE gen_parted (id bigint, email consent.email,
                         local_part consent.email GENERATED ALWAYS AS (split_part(email::text, '@', 1)) STORED)
    PARTITION BY RANGE (id);
CREATE TABLE gen_parted_1 PARTITION OF gen_parted FOR VALUES FROM (0) TO (5000);
SELECT attname, atttypid::regtype, attgenerated FROM pg_attribute
 WHERE attrelid = 'gen_parted_1'::regclass AND attnum > 0 ORDER BY attnum;
\set VERBOSITY sqlstate
CREATE TABLE gen_parted_bad (id bigint, email consent.email,
                             local_part text GENERATED ALWAYS AS (split_part(email::text, '@', 1)) STORED)
    PARTITION BY RANGE (id);
ALTER TABLE gen_parted ADD COLUMN domain_part text GENERATED ALWAYS AS (split_part(email::text, '@', 2)) STORED;
\set VERBOSITY default
SELECT count(*) AS added FROM pg_attribute WHERE attname = 'domain_part'
   AND attrelid IN ('gen_parted'::regclass, 'gen_parted_1'::regclass);

-- foreign tables (their generated values are computed here and stored remotely)
CREATE FOREIGN DATA WRAPPER gen_fdw;
CREATE SERVER gen_server FOREIGN DATA WRAPPER gen_fdw;
\set VERBOSITY sqlstate
CREATE FOREIGN TABLE gen_foreign_bad (id bigint, email consent.email,
                                      local_part text GENERATED ALWAYS AS (split_part(email::text, '@', 1)) STORED)
    SERVER gen_server;
\set VERBOSITY default
SELECT to_regclass('gen_foreign_bad') IS NULL AS not_created;
CREATE FOREIGN TABLE gen_foreign (id bigint, email consent.email,
                                  local_part consent.email GENERATED ALWAYS AS (split_part(email::text, '@', 1)) STORED)
    SERVER gen_server;
CREATE FOREIGN TABLE gen_parted_2 PARTITION OF gen_parted FOR VALUES FROM (5000) TO (6000) SERVER gen_server;
\set VERBOSITY sqlstate
ALTER FOREIGN TABLE gen_foreign ADD COLUMN domain_part text GENERATED ALWAYS AS (split_part(email::text, '@', 2)) STORED;
\set VERBOSITY default
DROP FOREIGN TABLE gen_foreign, gen_parted_2;
DROP SERVER gen_server;
DROP FOREIGN DATA WRAPPER gen_fdw;

-- inheritance children: inherited columns, their own generated columns
CREATE TABLE gen_parent (id bigint, email consent.email);
\set VERBOSITY sqlstate
CREATE TABLE gen_child_bad (local_part text GENERATED ALWAYS AS (split_part(email::text, '@', 1)) STORED)
    INHERITS (gen_parent);
\set VERBOSITY default
SELECT to_regclass('gen_child_bad') IS NULL AS not_created;
CREATE TABLE gen_child (local_part consent.email GENERATED ALWAYS AS (split_part(email::text, '@', 1)) STORED)
    INHERITS (gen_parent);
\set VERBOSITY sqlstate
ALTER TABLE gen_parent ADD COLUMN domain_part text GENERATED ALWAYS AS (split_part(email::text, '@', 2)) STORED;
\set VERBOSITY default
SELECT count(*) AS added FROM pg_attribute WHERE attname = 'domain_part'
   AND attrelid IN ('gen_parent'::regclass, 'gen_child'::regclass);
ALTER TABLE gen_parent ADD COLUMN domain_part consent.email
    GENERATED ALWAYS AS (split_part(email::text, '@', 2)) STORED;
SELECT attrelid::regclass, attname, atttypid::regtype, attgenerated FROM pg_attribute
 WHERE attrelid IN ('gen_parent'::regclass, 'gen_child'::regclass) AND attnum > 0 ORDER BY 1, attnum;

-- the tagged generated columns are masked for a masked role
CREATE ROLE gen_app;
GRANT SELECT ON gen_customers TO gen_app;
SELECT consent.allow_purpose('gen_app', 'personalize');
-- the superuser sees what is stored
SELECT id, email, local_part, first_name, work_email, domain_part, note_length FROM gen_customers ORDER BY id;
BEGIN;
-- subject 3401 agreed to contact and name data for personalize
SELECT consent.grant(3401, 'user.contact', 'personalize') > 0 AS granted,
       consent.grant(3401, 'user.name', 'personalize') > 0 AS granted;
SET ROLE gen_app;
-- no purpose: every tagged cell is masked, the generated ones too
SELECT id, email, local_part, first_name, work_email, domain_part, note_length FROM gen_customers ORDER BY id;
SET consent.purpose = 'personalize';
SELECT id, email, local_part, first_name, work_email, domain_part, note_length FROM gen_customers ORDER BY id;
-- predicates see the masked value
SELECT id FROM gen_customers WHERE local_part = 'max';
ROLLBACK;

-- clean up
SELECT consent.revoke_purpose('gen_app', 'personalize');
DROP TABLE gen_customers, gen_like, gen_like_plain, gen_plain, gen_parted, gen_child, gen_parent;
DROP ROLE gen_app;
DROP DOMAIN gen_work_email, gen_plain_text;
SELECT count(*) AS left_behind FROM consent.protected_tables WHERE relation::text LIKE 'gen\_%';
