-- Cursors read in parts whose rows were computed ahead (a sort here): a
-- change of the session's purpose between two fetches fails the next fetch
-- with 55000 instead of returning rows decided under the old purpose; a
-- purpose change that can only mask more, and cursors that decided nothing
-- revealing, go on.  (Other sessions' withdrawals: the isolation spec
-- consent_cursor_ahead.)
CREATE TABLE cu_customers (id bigint, email consent.email);
SELECT consent.protect('cu_customers', 'id');
INSERT INTO cu_customers SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 30) g;
ANALYZE cu_customers;
SELECT count(*) FILTER (WHERE consent.grant(id, 'user.contact.email', 'personalize') > 0) AS granted
FROM cu_customers WHERE id % 2 = 0;
CREATE ROLE cu_app;
GRANT SELECT ON cu_customers TO cu_app;
SELECT consent.allow_purpose('cu_app', 'personalize'), consent.allow_purpose('cu_app', 'analytics');
SET ROLE cu_app;

-- the SQLSTATE of a refused FETCH, and nothing was returned
CREATE FUNCTION pg_temp.fetch_state(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    EXECUTE q INTO r;
    RETURN 'returned ' || r.id || ' ' || r.email;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

BEGIN;
SET LOCAL consent.purpose = 'personalize';
DECLARE c CURSOR FOR SELECT id, email FROM cu_customers ORDER BY id DESC;
FETCH 2 FROM c;
SET LOCAL consent.purpose = '';
SELECT pg_temp.fetch_state('FETCH 1 FROM c');
ROLLBACK;

-- the same with another allowed purpose
BEGIN;
SET LOCAL consent.purpose = 'personalize';
DECLARE c CURSOR FOR SELECT id, email FROM cu_customers ORDER BY id DESC;
FETCH 1 FROM c;
SET LOCAL consent.purpose = 'analytics';
SELECT pg_temp.fetch_state('FETCH 1 FROM c');
ROLLBACK;

-- no purpose at first: every row it computed was masked, so it goes on
-- (masking more or less later would only over-mask)
BEGIN;
DECLARE c CURSOR FOR SELECT id, email FROM cu_customers ORDER BY id DESC;
FETCH 1 FROM c;
SET LOCAL consent.purpose = 'personalize';
FETCH 1 FROM c;
ROLLBACK;

-- a cursor that streams (no sort) decides at each fetch
BEGIN;
SET LOCAL consent.purpose = 'personalize';
DECLARE c CURSOR FOR SELECT id, email FROM cu_customers WHERE id IN (2, 4);
FETCH 1 FROM c;
SET LOCAL consent.purpose = '';
FETCH 1 FROM c;
ROLLBACK;

-- a PL/pgSQL loop reads its query in batches: changing the purpose inside
-- the loop stops it at the next batch
CREATE FUNCTION pg_temp.loop_until_refused() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n int := 0;
BEGIN
    FOR r IN SELECT id, email FROM cu_customers ORDER BY id LOOP
        n := n + 1;
        IF n = 1 THEN
            PERFORM set_config('consent.purpose', '', true);
        END IF;
    END LOOP;
    RETURN 'read all ' || n;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' after ' || n || ' rows';
END $$;
BEGIN;
SET LOCAL consent.purpose = 'personalize';
SELECT pg_temp.loop_until_refused();
ROLLBACK;

-- DDL of other tables between two fetches changes no decision: it goes on
BEGIN;
SET LOCAL consent.purpose = 'personalize';
DECLARE c CURSOR FOR SELECT id, email FROM cu_customers ORDER BY id DESC;
FETCH 1 FROM c;
CREATE TEMP TABLE cu_other (a int);
FETCH 1 FROM c;
ROLLBACK;

RESET ROLE;
-- a bypass role saw everything: a purpose change does not matter, losing
-- the bypass does
BEGIN;
DECLARE c CURSOR FOR SELECT id, email FROM cu_customers ORDER BY id DESC;
FETCH 1 FROM c;
SET LOCAL consent.purpose = 'analytics';
FETCH 1 FROM c;
SET LOCAL ROLE cu_app;
SELECT pg_temp.fetch_state('FETCH 1 FROM c');
ROLLBACK;
SELECT consent.revoke_purpose('cu_app', 'personalize'), consent.revoke_purpose('cu_app', 'analytics');
DROP FUNCTION pg_temp.fetch_state(text), pg_temp.loop_until_refused();
DROP OWNED BY cu_app;
DROP ROLE cu_app;
DELETE FROM consent.protected_tables WHERE relation = 'cu_customers'::regclass;
DROP TABLE cu_customers;
