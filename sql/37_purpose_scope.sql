-- consent.purpose_scope: how long a purpose lasts.  'session' (the default):
-- until the session changes it.  'transaction' (for transaction-pooling
-- proxies such as PgBouncer): only until the end of the transaction that set
-- it, however it was set, and SET consent.purpose for the session outside a
-- transaction block fails.  The scope is a server setting (postgresql.conf or
-- ALTER SYSTEM, then a reload); this file switches it and switches it back.

-- 'ok', or the SQLSTATE of the error (run in an exception block, that is a
-- subtransaction)
CREATE FUNCTION ps_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

CREATE TABLE ps_customers (id bigint PRIMARY KEY, email consent.email);
SELECT consent.protect('ps_customers', 'id');
-- subjects 3701 and 3702: the ledger is shared with the other test files
INSERT INTO ps_customers VALUES (3701, 'jane.doe@example.com'), (3702, 'max@example.de');
SELECT consent.grant(3701, 'user.contact.email', 'marketing') > 0 AS granted;
CREATE ROLE ps_app;
GRANT SELECT ON ps_customers TO ps_app;
SELECT consent.allow_purpose('ps_app', 'marketing');
-- reads under a purpose set by its SET clause, for the length of the call
CREATE FUNCTION ps_marketing_email(bigint) RETURNS text LANGUAGE sql STABLE
    SET consent.purpose = 'marketing' AS $$ SELECT email FROM ps_customers WHERE id = $1 $$;
-- rolls back, then reads the purpose in simple expressions (no statement)
CREATE PROCEDURE ps_after_rollback() LANGUAGE plpgsql AS $$
BEGIN
    ROLLBACK;
    RAISE NOTICE 'after ROLLBACK: consent.purpose reads "%", subject 3701''s email granted under it: %',
        current_setting('consent.purpose'), consent.granted(3701::bigint, 'user.contact.email');
END
$$;

-- the setting: a server setting, 'session' unless configured
SELECT name, setting, context, vartype, enumvals, boot_val FROM pg_settings WHERE name = 'consent.purpose_scope';
-- no session switches it, not even a superuser's, and no role or database default
SET consent.purpose_scope = 'transaction';
ALTER ROLE ps_app SET consent.purpose_scope = 'transaction';
SHOW consent.purpose_scope;

--
-- session scope: a purpose lasts until the session changes it
--
SET ROLE ps_app;
SELECT id, email FROM ps_customers ORDER BY id;
SET consent.purpose = 'marketing';
SELECT id, email FROM ps_customers ORDER BY id;
BEGIN;
SET LOCAL consent.purpose = '';
SELECT id, email FROM ps_customers ORDER BY id;
COMMIT;
SHOW consent.purpose;
SELECT id, email FROM ps_customers ORDER BY id;
RESET ROLE;

-- A purpose from the server configuration becomes the session default
-- (RESET returns to it) under the session scope.  This session reads it at
-- its next statement after the reload.
RESET consent.purpose;
ALTER SYSTEM SET consent.purpose = 'marketing';
SELECT pg_reload_conf();
SELECT 1 AS slept FROM pg_sleep(0.2) \gset
SELECT current_setting('consent.purpose') <> 'marketing' AS waiting \gset
\if :waiting
SELECT 1 AS slept FROM pg_sleep(1) \gset
SELECT current_setting('consent.purpose') <> 'marketing' AS waiting \gset
\endif
\if :waiting
SELECT 1 AS slept FROM pg_sleep(10) \gset
\endif
SHOW consent.purpose;
SET consent.purpose = '';
RESET consent.purpose;
SHOW consent.purpose;
-- a session-level purpose the session sets itself, left set
SET ROLE ps_app;
SET consent.purpose = 'marketing';
RESET ROLE;

--
-- The scope changes to 'transaction' while a transaction block is open: the
-- purpose the session set in an earlier transaction no longer applies from
-- the block's next statement (the statements that wait for the reload).
--
ALTER SYSTEM SET consent.purpose_scope = 'transaction';
BEGIN;
SELECT pg_reload_conf();
SELECT 1 AS slept FROM pg_sleep(0.2) \gset
SELECT current_setting('consent.purpose_scope') <> 'transaction' AS waiting \gset
\if :waiting
SELECT 1 AS slept FROM pg_sleep(1) \gset
SELECT current_setting('consent.purpose_scope') <> 'transaction' AS waiting \gset
\endif
\if :waiting
SELECT 1 AS slept FROM pg_sleep(10) \gset
\endif
SHOW consent.purpose_scope;
SHOW consent.purpose;
SET LOCAL ROLE ps_app;
SELECT id, email FROM ps_customers ORDER BY id;
ROLLBACK;
-- ROLLBACK restored what the block began with (the earlier session's
-- 'marketing'); a procedure's ROLLBACK restores it again after its CALL
-- cleared it.  Until a statement clears it, such a value decides nothing:
-- PL/pgSQL's simple expressions run no statement.
CALL ps_after_rollback();
SHOW consent.purpose;

--
-- transaction scope
--
SET ROLE ps_app;
-- a session-level SET outside a transaction block fails, with a hint
SET consent.purpose = 'marketing';
SET SESSION consent.purpose = 'marketing';
SELECT ps_try($$SET consent.purpose = 'marketing'$$);
DO $$ BEGIN SET consent.purpose = 'marketing'; END $$;
SHOW consent.purpose;
SELECT id, email FROM ps_customers ORDER BY id;
-- clearing it is allowed: to '', TO DEFAULT, RESET
SET consent.purpose = '';
SET consent.purpose TO DEFAULT;
RESET consent.purpose;
-- SET LOCAL outside a block lasts for its own statement only (PostgreSQL warns)
SET LOCAL consent.purpose = 'marketing';
SHOW consent.purpose;

-- SET LOCAL in a transaction block: for that transaction
BEGIN;
SET LOCAL consent.purpose = 'marketing';
SELECT id, email FROM ps_customers ORDER BY id;
COMMIT;
SHOW consent.purpose;
SELECT id, email FROM ps_customers ORDER BY id;

-- a plain SET inside a transaction block: allowed, and ends with the block
BEGIN;
SET consent.purpose = 'marketing';
SELECT id, email FROM ps_customers ORDER BY id;
COMMIT;
SHOW consent.purpose;
SELECT id, email FROM ps_customers ORDER BY id;
-- ... also after a savepoint, and in a function's exception block
BEGIN;
SAVEPOINT s;
SET consent.purpose = 'marketing';
RELEASE s;
SELECT ps_try($$SET consent.purpose = 'marketing'$$);
SHOW consent.purpose;
COMMIT;
SHOW consent.purpose;
-- ... also when a SET LOCAL hid it at COMMIT
BEGIN;
SET consent.purpose = 'marketing';
SET LOCAL consent.purpose = '';
COMMIT;
SHOW consent.purpose;
SELECT id, email FROM ps_customers ORDER BY id;

-- set_config(..., false), the session form: for that transaction
BEGIN;
SELECT set_config('consent.purpose', 'marketing', false);
SELECT id, email FROM ps_customers ORDER BY id;
COMMIT;
SHOW consent.purpose;
SELECT set_config('consent.purpose', 'marketing', false);
SHOW consent.purpose;
SELECT id, email FROM ps_customers ORDER BY id;

-- a query string of several statements is one transaction
SET consent.purpose = 'marketing' \; SELECT id, email FROM ps_customers ORDER BY id;
SHOW consent.purpose;
SELECT id, email FROM ps_customers ORDER BY id;

-- ROLLBACK, savepoints
BEGIN;
SET LOCAL consent.purpose = 'marketing';
ROLLBACK;
SHOW consent.purpose;
BEGIN;
SET consent.purpose = 'marketing';
ROLLBACK;
SHOW consent.purpose;
BEGIN;
SET LOCAL consent.purpose = 'marketing';
SAVEPOINT s;
SET LOCAL consent.purpose = '';
ROLLBACK TO s;
SELECT id, email FROM ps_customers ORDER BY id;
COMMIT;
SHOW consent.purpose;

-- a function's SET clause: for the call
SELECT ps_marketing_email(3701), ps_marketing_email(3702);
SHOW consent.purpose;
SELECT id, email FROM ps_customers ORDER BY id;

-- the purpose is still checked when set
BEGIN;
SET LOCAL consent.purpose = 'personalize';
ROLLBACK;
RESET ROLE;

-- procedures that commit: every transaction starts without a purpose
CREATE PROCEDURE ps_commit() LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('consent.purpose', 'marketing', false);
    RAISE NOTICE 'before COMMIT: "%", granted %', current_setting('consent.purpose'),
        consent.granted(3701::bigint, 'user.contact.email');
    COMMIT;
    RAISE NOTICE 'after COMMIT: "%", granted %', current_setting('consent.purpose'),
        consent.granted(3701::bigint, 'user.contact.email');
    -- a value SET LOCAL hides at COMMIT does not come back either
    PERFORM set_config('consent.purpose', 'marketing', false);
    PERFORM set_config('consent.purpose', '', true);
    COMMIT;
    RAISE NOTICE 'after the second COMMIT: "%"', current_setting('consent.purpose');
END
$$;
CALL ps_commit();
SHOW consent.purpose;
-- a purpose a new transaction sets before its first statement (a simple
-- expression after COMMIT) is its own and stays
CREATE PROCEDURE ps_set_after_commit() LANGUAGE plpgsql AS $$
DECLARE v text; g boolean;
BEGIN
    COMMIT;
    v := set_config('consent.purpose', 'marketing', true);
    SELECT consent.granted(3701::bigint, 'user.contact.email') INTO g;
    RAISE NOTICE 'set after COMMIT: "%", granted %', current_setting('consent.purpose'), g;
END
$$;
CALL ps_set_after_commit();
SHOW consent.purpose;

--
-- defaults: under the transaction scope, a purpose from the server
-- configuration, a role or database setting or the startup packet never
-- applies, and RESET, SET ... TO DEFAULT and DISCARD ALL return to none
--
BEGIN;
RESET consent.purpose;
SHOW consent.purpose;
SET LOCAL consent.purpose TO DEFAULT;
SHOW consent.purpose;
COMMIT;
DISCARD ALL;
SHOW consent.purpose;
-- a new session
\c
SHOW consent.purpose;
BEGIN;
RESET consent.purpose;
SHOW consent.purpose;
COMMIT;
SELECT setting, reset_val FROM pg_settings WHERE name = 'consent.purpose';

--
-- back to the session scope
--
ALTER SYSTEM RESET consent.purpose;
ALTER SYSTEM RESET consent.purpose_scope;
SELECT pg_reload_conf();
SELECT 1 AS slept FROM pg_sleep(0.2) \gset
SELECT current_setting('consent.purpose_scope') <> 'session' AS waiting \gset
\if :waiting
SELECT 1 AS slept FROM pg_sleep(1) \gset
SELECT current_setting('consent.purpose_scope') <> 'session' AS waiting \gset
\endif
\if :waiting
SELECT 1 AS slept FROM pg_sleep(10) \gset
\endif
SHOW consent.purpose_scope;
SET ROLE ps_app;
SET consent.purpose = 'marketing';
SELECT id, email FROM ps_customers ORDER BY id;
SHOW consent.purpose;
RESET consent.purpose;
RESET ROLE;
-- a new session: no purpose from the configuration any more
\c
SHOW consent.purpose_scope;
SHOW consent.purpose;
-- the purpose is checked before the transaction's first query, and the
-- check (in a new session it reads the catalog) takes no transaction
-- snapshot: the isolation level can still be set after it
\c
BEGIN;
SET LOCAL consent.purpose = 'marketing';
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
SHOW transaction_isolation;
SHOW consent.purpose;
COMMIT;

DROP PROCEDURE ps_after_rollback(), ps_commit(), ps_set_after_commit();
DROP FUNCTION ps_marketing_email(bigint), ps_try(text);
DROP TABLE ps_customers;
SELECT consent.revoke_purpose('ps_app', 'marketing');
DROP ROLE ps_app;
