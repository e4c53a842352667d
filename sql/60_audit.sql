-- DBA audits, part 1: the consent.audit log lines and the consent.disclosures
-- counters (src/audit.cpp, docs/audit-guide.md).

-- settings: defaults
SHOW consent.audit;
SHOW consent.audit_log_level;
SHOW consent.track_disclosures;
SHOW consent.disclosures_max;
SELECT name, context, vartype, enumvals FROM pg_settings
 WHERE name IN ('consent.audit', 'consent.audit_log_level', 'consent.track_disclosures', 'consent.disclosures_max')
 ORDER BY name;
-- bad values
SELECT try($$SET consent.audit = 'bogus'$$);
SELECT try($$SET consent.audit = ''$$);
SELECT try($$SET consent.audit_log_level = 'error'$$);
SELECT try($$SET consent.track_disclosures = 'maybe'$$);
SELECT try($$SET consent.disclosures_max = 100$$);
-- every value of consent.audit is accepted (and so are the log levels)
SELECT try($$SET consent.audit = 'masked'$$), try($$SET consent.audit = 'ALL'$$), try($$SET consent.audit = off$$);
SELECT try(format('SET consent.audit_log_level = %s', l)) AS level_ok, count(*)
  FROM unnest(ARRAY['debug5', 'debug4', 'debug3', 'debug2', 'debug1', 'info', 'notice', 'warning', 'log']) l
 GROUP BY 1;
RESET consent.audit;
RESET consent.audit_log_level;

-- only superusers may change them; only auditors may read the counters; nobody
-- but superusers may reset them
CREATE ROLE au_plain;
CREATE ROLE au_dpo IN ROLE consent_auditor;
SET ROLE au_plain;
SELECT try($$SET consent.audit = 'all'$$);
SELECT try($$SET consent.audit_log_level = 'notice'$$);
SELECT try($$SET consent.track_disclosures = off$$);
SELECT try($$SELECT consent.disclosures_reset()$$);
SELECT try($$SELECT count(*) FROM consent.disclosures$$);
SELECT try($$SELECT count(*) FROM consent.disclosures_info$$);
SELECT try($$SELECT count(*) FROM consent._disclosures()$$);
SET ROLE au_dpo;
SELECT try($$SELECT count(*) FROM consent.disclosures$$);
SELECT try($$SELECT count(*) FROM consent.disclosures_info$$);
SELECT try($$SELECT consent.disclosures_reset()$$);
SELECT try($$SET consent.audit = 'all'$$);
RESET ROLE;
SELECT has_function_privilege('public', 'consent.disclosures_reset()', 'EXECUTE') AS public_may_reset,
       has_function_privilege('consent_auditor', 'consent.disclosures_reset()', 'EXECUTE') AS auditor_may_reset,
       has_table_privilege('public', 'consent.disclosures', 'SELECT') AS public_may_read;

-- a small shop: 4 customers (subjects 9101-9104: the ledger is shared by all
-- tables, so no other test may use these numbers); 9101 agreed to e-mail for
-- marketing, 9102 to name
CREATE TABLE au_customers (id bigint PRIMARY KEY, email consent.email, name consent.name, note text);
SELECT consent.protect('au_customers', 'id');
INSERT INTO au_customers VALUES
    (9101, 'ann@example.com', 'Ann Bell', 'n1'),
    (9102, 'bob@example.org', 'Bob Cole', 'n2'),
    (9103, NULL, 'Cy Dunn', 'n3'),
    (9104, 'dee@example.net', 'Dee Eve', 'n4');
SELECT consent.grant(9101, 'user.contact.email', 'marketing') > 0, consent.grant(9102, 'user.name', 'marketing') > 0;
CREATE ROLE au_app;
CREATE ROLE au_admin SUPERUSER;
GRANT SELECT ON au_customers TO au_app;
SELECT consent.allow_purpose('au_app', 'marketing');
SELECT consent.disclosures_reset();
SELECT entries, evictions, stats_reset > now() - interval '1 hour' AS reset_recently FROM consent.disclosures_info;

-- consent.audit = off (the default): no log line, but the counters count
SET consent.audit_log_level = notice;
SET ROLE au_app;
SET consent.purpose = 'marketing';
SELECT id, email, name FROM au_customers ORDER BY id;                     -- (A) email 1 revealed, 2 masked; name 1/3

-- consent.audit = all: one line per statement and column, sorted by column
RESET ROLE;
SET consent.audit = 'all';
SET ROLE au_app;
SELECT id, email, name FROM au_customers ORDER BY id;                     -- (B) as (A)
SELECT email FROM au_customers WHERE id = 9101;                           -- (C) email 1/0
-- a statement that reads no tagged column logs nothing; NULL cells are not counted
SELECT id, note FROM au_customers ORDER BY id;
SELECT email FROM au_customers WHERE id = 9103;
-- predicates see masked values, and are counted too
SELECT id FROM au_customers WHERE email = 'bob@example.org';              -- (D) email 1/2
-- no purpose: every cell masked, purpose field empty
RESET consent.purpose;
SELECT name FROM au_customers ORDER BY id;                                -- (E) name 0/4, no purpose
SET consent.purpose = 'marketing';

-- consent.audit = masked: only statements that masked at least one cell
RESET ROLE;
SET consent.audit = 'masked';
SET ROLE au_app;
SELECT email FROM au_customers WHERE id = 9101;                           -- (F) email 1/0, not logged
SELECT email, name FROM au_customers WHERE id = 9102;                     -- (G) email 0/1, name 1/0, logged
RESET ROLE;
SET consent.audit = 'all';
SET ROLE au_app;

-- nested statements (functions called per row) count in the statement that ran them
RESET ROLE;
CREATE FUNCTION au_email_of(bigint) RETURNS text LANGUAGE plpgsql STABLE
    AS $$ BEGIN RETURN (SELECT email FROM au_customers WHERE id = $1); END $$;
CREATE FUNCTION au_name_of(bigint) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT name FROM au_customers WHERE id = $1 $$;
SET ROLE au_app;
SELECT i, au_email_of(i), au_name_of(i) FROM generate_series(9101, 9104) i;    -- (H) email 1/2, name 1/3
DO $$ BEGIN PERFORM email FROM au_customers; PERFORM name FROM au_customers WHERE id = 9102; END $$;  -- (I) email 1/2, name 1/0

-- a cursor: each FETCH is a statement
BEGIN;
DECLARE au_cur CURSOR FOR SELECT email FROM au_customers;
FETCH 2 FROM au_cur;                                                      -- (J) email 1/1
FETCH ALL FROM au_cur;                                                    -- (K) email 0/1 (9103 is NULL)
CLOSE au_cur;
COMMIT;

-- prepared statements, COPY (the table form is rewritten to a query)
PREPARE au_q AS SELECT name FROM au_customers WHERE id = $1;
EXECUTE au_q(9102);                                                       -- (L) name 1/0
EXECUTE au_q(9101);                                                       -- (M) name 0/1
DEALLOCATE au_q;
COPY (SELECT id, email FROM au_customers ORDER BY id) TO STDOUT;          -- (N) email 1/2
COPY au_customers (id, name) TO STDOUT;                                   -- (O) name 1/3

-- a statement that fails after deciding cells is logged and counted at abort
-- (the line is sent after the error: whether psql prints it before or after
-- the error depends on timing, so it is hidden here; the counters check it,
-- and the statement number it took)
SET client_min_messages = warning;
SELECT id, email, 10 / (id - 9102) FROM au_customers ORDER BY id;         -- (P) email 1/1, then division by zero
RESET client_min_messages;
-- an error caught in a function: the cells count in the statement around it
SELECT try($$SELECT id, email, 10 / (id - 9102) FROM au_customers ORDER BY id$$);  -- (P2) email 1/1

-- read-only transactions and sessions: nothing is written, lines and counts still appear
SET default_transaction_read_only = on;
SELECT email FROM au_customers WHERE id = 9104;                           -- (Q) email 0/1
RESET default_transaction_read_only;
BEGIN READ ONLY;
SELECT email FROM au_customers WHERE id = 9101;                           -- (R) email 1/0
SELECT name FROM au_customers WHERE id = 9101;                            -- (S) name 0/1
COMMIT;
BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE;
SELECT count(email) FROM au_customers;                                    -- (T) email 1/2
COMMIT;

-- a superuser sees everything: counted as revealed, under its own name
RESET ROLE;
SET ROLE au_admin;
SELECT email FROM au_customers WHERE id = 9102;                           -- (U) au_admin: email 1/0

-- the mask functions are called by the masking rewrite only: a direct call
-- is refused, so nobody can forge disclosures (or use the hash mask as an
-- oracle)
RESET ROLE;
SET ROLE au_plain;
SELECT count(consent._mask('x@example.com'::text, 9101::bigint, 'au_customers'::regclass, 2::int2))
  FROM generate_series(1, 10);
RESET ROLE;

-- names that need quoting are quoted as in CSV (after SQL quoting)
RESET ROLE;
CREATE ROLE "au,odd";
CREATE TABLE "au,t""x" (id int PRIMARY KEY, "e,mail" consent.email);
SELECT consent.protect('"au,t""x"', 'id');
INSERT INTO "au,t""x" VALUES (1, 'q@example.com');
GRANT SELECT ON "au,t""x" TO "au,odd";
SET ROLE "au,odd";
-- consent.purpose is still 'marketing', which "au,odd" was not allowed: no purpose
SELECT "e,mail" FROM "au,t""x";                                           -- (V) masked
RESET ROLE;

-- consent.audit_log_level = log writes to the server log only, never to the client
SET client_min_messages = log;
SET consent.audit_log_level = log;
SET ROLE au_app;
SELECT email FROM au_customers WHERE id = 9101;                           -- (W) email 1/0, not shown
RESET ROLE;
RESET client_min_messages;
-- warning reaches the client as a WARNING
SET consent.audit_log_level = warning;
SET ROLE au_app;
SELECT email FROM au_customers WHERE id = 9102;                           -- (X) email 0/1
RESET ROLE;
SET consent.audit_log_level = notice;

-- consent.track_disclosures = off: logged, not counted
SET consent.track_disclosures = off;
SET ROLE au_app;
SELECT email FROM au_customers WHERE id = 9101;                           -- logged, not counted
RESET ROLE;
-- both off: nothing
SET consent.audit = off;
SET ROLE au_app;
SELECT email FROM au_customers WHERE id = 9101;
RESET ROLE;
SET consent.track_disclosures = on;

-- the counters: A+B+C+D+F+G+H+I+J+K+N+P+P2+Q+R+T+W+X for au_app's e-mail under marketing:
-- revealed 1+1+1+1+1+0+1+1+1+0+1+1+1+0+1+1+1+0 = 14, masked 2+2+0+2+0+1+2+2+1+1+2+1+1+1+0+2+0+1 = 21;
-- name under marketing: A+B+G+H+I+L+M+O+S: revealed 1+1+1+1+1+1+0+1+0 = 7, masked 3+3+0+3+0+0+1+3+1 = 14;
-- name without purpose: E 0/4
SELECT database = current_database() AS this_db, role, purpose, relation, column_name, category, revealed, masked,
       last_time > now() - interval '1 hour' AS recent, relid = relation::regclass AS relid_ok
  FROM consent.disclosures
 WHERE role IN ('au_app', 'au_admin', 'au,odd', 'au_plain')
 ORDER BY relation, column_name, role, purpose NULLS FIRST;
SELECT entries, evictions FROM consent.disclosures_info;
-- an auditor reads them too
SET ROLE au_dpo;
SELECT sum(revealed) AS revealed, sum(masked) AS masked FROM consent.disclosures WHERE role = 'au_app';
RESET ROLE;

-- reset: all gone
SELECT consent.disclosures_reset();
SELECT count(*) AS entries_after_reset FROM consent.disclosures;
SELECT entries, evictions FROM consent.disclosures_info;

-- the names of log lines and counters follow renames (they are cached between
-- statements), and counting goes on into fresh entries after a reset
SET ROLE au_app;
SELECT email FROM au_customers WHERE id = 9101;                           -- au_customers.email 1/0
RESET ROLE;
SELECT relation, column_name, revealed, masked FROM consent.disclosures
 WHERE role = 'au_app' AND relid = 'au_customers'::regclass ORDER BY attnum;
ALTER TABLE au_customers RENAME TO au_clients;
ALTER TABLE au_clients RENAME COLUMN email TO mail;
SET consent.audit = 'all';
SET ROLE au_app;
SELECT mail FROM au_clients WHERE id = 9101;                              -- au_clients.mail 1/0
RESET ROLE;
SELECT relation, column_name, revealed, masked FROM consent.disclosures
 WHERE role = 'au_app' AND relid = 'au_clients'::regclass ORDER BY attnum;
SELECT consent.disclosures_reset();
SET ROLE au_app;
SELECT mail FROM au_clients WHERE id = 9102;                              -- au_clients.mail 0/1
SELECT mail FROM au_clients WHERE id = 9101;                              -- au_clients.mail 1/0
RESET ROLE;
SELECT relation, column_name, revealed, masked FROM consent.disclosures WHERE role = 'au_app';
-- without Citus, consent.cluster_disclosures() is this server's disclosures
SELECT node, role, purpose, relation, column_name, category, revealed, masked
  FROM consent.cluster_disclosures() WHERE role = 'au_app'
EXCEPT ALL
SELECT 'local', role, purpose, relation, column_name, category, revealed, masked
  FROM consent.disclosures WHERE role = 'au_app';
SELECT count(*) > 0 AS counted FROM consent.cluster_disclosures() WHERE role = 'au_app' AND node = 'local';
ALTER TABLE au_clients RENAME COLUMN mail TO email;
ALTER TABLE au_clients RENAME TO au_customers;
RESET consent.audit;

RESET consent.audit_log_level;
DROP TABLE "au,t""x";
DROP FUNCTION au_email_of(bigint), au_name_of(bigint);
DROP TABLE au_customers;
SELECT consent.revoke_purpose('au_app', 'marketing');
DROP ROLE au_app, au_admin, au_plain, au_dpo, "au,odd";
