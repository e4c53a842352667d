-- Privilege escalation: an ordinary role (no superuser, no BYPASSRLS) tries
-- every function and catalog table of pg_consent, the settings, the mask
-- wrappers, and search_path and operator tricks.  Every attempt must fail or
-- reveal nothing.  The role acts through SET ROLE here; what needs a fresh
-- login (role defaults, connection options, pg_dump) is in
-- test/t/011_privileges.pl and test/t/010_dump_restore.pl.
-- Subjects 8101 and 8102 are this file's own.

CREATE ROLE pv_app;       -- an application role, allowed 'personalize'
CREATE ROLE pv_recorder;  -- may record consent (consent.allow_recording)
CREATE SCHEMA pv_shop;
CREATE TABLE pv_shop.customers (id bigint PRIMARY KEY, email consent.email, name consent.name,
                                phone consent.phone, note text);
INSERT INTO pv_shop.customers VALUES
    (8101, 'alice.pv@example.com', 'Alice Archer', '+49 30 1234501', 'n1'),
    (8102, 'bob.pv@example.org', 'Bob Baker', '+49 30 1234502', 'n2');
SELECT consent.protect('pv_shop.customers', 'id');
SELECT consent.set_mask('pv_shop.customers', 'phone', 'hash');
-- a table with tagged columns that is not protected, and a protected
-- partitioned table with a partition
CREATE TABLE pv_shop.unprotected (id bigint, email consent.email);
INSERT INTO pv_shop.unprotected SELECT g, 'carol' || g % 3 || '.pv@example.net' FROM generate_series(1, 300) g;
CREATE TABLE pv_shop.parted (id bigint, email consent.email) PARTITION BY RANGE (id);
CREATE TABLE pv_shop.parted_1 PARTITION OF pv_shop.parted FOR VALUES FROM (0) TO (100000);
INSERT INTO pv_shop.parted SELECT g, 'dave' || g % 3 || '.pv@example.net' FROM generate_series(1, 300) g;
SELECT consent.protect('pv_shop.parted', 'id');
-- a protected table pv_app may not read at all
CREATE TABLE pv_shop.secret (id bigint, email consent.email);
SELECT consent.protect('pv_shop.secret', 'id');
ANALYZE pv_shop.customers, pv_shop.unprotected, pv_shop.parted;
GRANT USAGE ON SCHEMA pv_shop TO pv_app, pv_recorder;
GRANT SELECT ON pv_shop.customers, pv_shop.unprotected, pv_shop.parted, pv_shop.parted_1 TO pv_app;
SELECT consent.allow_purpose('pv_app', 'personalize');
SELECT consent.allow_recording('pv_recorder');
SELECT consent.grant(8101, 'user.contact.email', 'personalize') > 0 AS granted,
       consent.grant(8102, 'user.contact.email', 'marketing') > 0 AS granted;
-- the key of the hash mask, set in this session: pv_app must never learn it
SET consent.pseudonym_key = 'pv-secret-key';
-- an attempt that fails says 'SQLSTATE: message'; pv_probe() tells whether
-- a query returned a secret (error or another value: 'safe')
CREATE FUNCTION pv_probe(sql text, secret text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    EXECUTE sql INTO r;
    RETURN CASE WHEN r = secret THEN 'REVEALED' ELSE 'safe' END;
EXCEPTION WHEN OTHERS THEN
    RETURN 'safe';
END
$$;
-- a call of a function of ours with NULL for every argument, as SQL text
-- (subqueries: the planner would fold a STRICT call with NULL constants to
-- NULL without ever checking the EXECUTE privilege)
CREATE FUNCTION pv_call(f regprocedure) RETURNS text LANGUAGE sql AS $$
    SELECT CASE p.prokind WHEN 'p' THEN 'CALL ' ELSE 'SELECT ' END
           || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '('
           || coalesce((SELECT string_agg('(SELECT NULL::' || CASE WHEN t::regtype IN ('"any"', 'anyelement')
                                                                  THEN 'text' ELSE format_type(t, NULL) END || ')',
                                          ', ' ORDER BY i)
                        FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i)), '') || ')'
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = f
$$;
-- what pv_app may see: the e-mail of 8101 (consented), nothing else
SET ROLE pv_app;
SET consent.purpose = 'personalize';
SELECT id, email, name, phone FROM pv_shop.customers ORDER BY id;
RESET ROLE;
CREATE TABLE pv_written AS
    SELECT (SELECT count(*) FROM consent.ledger) AS ledger, (SELECT count(*) FROM consent.subject_state) AS state,
           (SELECT count(*) FROM consent.categories) AS categories, (SELECT count(*) FROM consent.purposes) AS purposes,
           (SELECT count(*) FROM consent.purpose_roles) AS purpose_roles,
           (SELECT count(*) FROM consent.protected_tables) AS protected,
           (SELECT count(*) FROM consent.column_masks) AS masks;

-- 1. Functions.  The ones every role may execute: a review gate, a new
-- function executable by PUBLIC has to be added here on purpose.
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p WHERE p.pronamespace = 'consent'::regnamespace
   AND has_function_privilege('pv_app', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text COLLATE "C";
-- every other function refuses pv_app (42501), whatever the arguments
SET ROLE pv_app;
SELECT count(*) > 20 AS tried, count(*) FILTER (WHERE outcome NOT LIKE '42501:%') AS not_refused
  FROM (SELECT try(pv_call(p.oid)) AS outcome FROM pg_proc p
         WHERE p.pronamespace = 'consent'::regnamespace
           AND NOT has_function_privilege('pv_app', p.oid, 'EXECUTE')) s;
SELECT p.oid::regprocedure AS not_refused, try(pv_call(p.oid)) AS outcome FROM pg_proc p
 WHERE p.pronamespace = 'consent'::regnamespace AND NOT has_function_privilege('pv_app', p.oid, 'EXECUTE')
   AND try(pv_call(p.oid)) NOT LIKE '42501:%';
-- the recording functions in particular
SELECT try($$SELECT consent.grant(8102, 'user', 'personalize')$$);
SELECT try($$SELECT consent.withdraw(8101, 'user', 'personalize')$$);
SELECT try($$SELECT consent._record('8102', 'user', 'personalize', 'grant', NULL, NULL, NULL)$$);
SELECT try($$SELECT consent.allow_purpose('pv_app', 'marketing')$$);
SELECT try($$SELECT consent.allow_recording('pv_app')$$);
SELECT try($$SELECT consent.mask_value('+49 30 1234502'::text, 'hash')$$);
SELECT try($$SELECT consent.erase_subject(8102)$$);
RESET ROLE;

-- 2. Catalog tables, views and the ledger sequence: what pv_app holds...
SELECT c.relname, c.relkind,
       has_table_privilege('pv_app', c.oid, 'SELECT') AS sel, has_table_privilege('pv_app', c.oid, 'INSERT') AS ins,
       has_table_privilege('pv_app', c.oid, 'UPDATE') AS upd, has_table_privilege('pv_app', c.oid, 'DELETE') AS del,
       has_table_privilege('pv_app', c.oid, 'TRUNCATE') AS trunc,
       has_table_privilege('pv_app', c.oid, 'REFERENCES') AS refs, has_table_privilege('pv_app', c.oid, 'TRIGGER') AS trig
  FROM pg_class c WHERE c.relnamespace = 'consent'::regnamespace AND c.relkind IN ('r', 'v', 'S')
 ORDER BY c.relname COLLATE "C";
-- ...and what each attempt gives (ok, or the SQLSTATE)
SET ROLE pv_app;
SELECT c.relname,
       left(try(format('SELECT * FROM consent.%I LIMIT 1', c.relname)), 5) AS "select",
       left(try(format('INSERT INTO consent.%I DEFAULT VALUES', c.relname)), 5) AS "insert",
       left(try(format('UPDATE consent.%I SET %I = %I', c.relname, a.attname, a.attname)), 5) AS "update",
       left(try(format('DELETE FROM consent.%I', c.relname)), 5) AS "delete",
       left(try(format('TRUNCATE consent.%I', c.relname)), 5) AS "truncate",
       left(try(format('SELECT FROM consent.%I FOR KEY SHARE', c.relname)), 5) AS "for key share",
       left(try(format('LOCK consent.%I IN EXCLUSIVE MODE', c.relname)), 5) AS "lock"
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1
 WHERE c.relnamespace = 'consent'::regnamespace AND c.relkind = 'r'
 ORDER BY c.relname COLLATE "C";
SELECT try($$SELECT nextval('consent.ledger_id_seq')$$);
SELECT try($$SELECT setval('consent.ledger_id_seq', 1)$$);
SELECT try($$SELECT last_value FROM consent.ledger_id_seq$$);
-- no DDL on our objects, no new objects in our schema
SELECT try($$CREATE TABLE consent.pv_x (a int)$$);
SELECT try($$CREATE FUNCTION consent.pv_f() RETURNS int LANGUAGE sql AS 'SELECT 1'$$);
SELECT try($$CREATE VIEW consent.pv_v AS SELECT 1$$);
SELECT try($$ALTER TABLE consent.ledger DISABLE TRIGGER ALL$$);
SELECT try($$ALTER TABLE consent.categories DROP CONSTRAINT categories_check$$);
SELECT try($$CREATE TRIGGER pv_t BEFORE INSERT ON consent.categories FOR EACH ROW EXECUTE FUNCTION consent._catalog_changed()$$);
SELECT try($$CREATE POLICY pv_p ON consent.categories USING (false)$$);
SELECT try($$DROP TABLE consent.ledger$$);
SELECT try($$ALTER FUNCTION consent.granted(text, text, text, timestamptz) SECURITY DEFINER$$);
SELECT try($$ALTER FUNCTION consent._mask(anyelement, "any", oid, int2) OWNER TO pv_app$$);
SELECT try($$COMMENT ON TABLE consent.ledger IS 'mine'$$);
SELECT try($$GRANT SELECT ON consent.ledger TO pv_app$$);
SELECT has_table_privilege('pv_app', 'consent.ledger', 'SELECT') AS may_read_ledger;
-- no way into the auditor role (SET ROLE is tried by a real login in
-- test/t/011_privileges.pl: here the session user is a superuser)
SELECT try($$GRANT consent_auditor TO pv_app$$);
SELECT try($$ALTER ROLE pv_app BYPASSRLS$$);
SELECT pg_has_role('pv_app', 'consent_auditor', 'MEMBER') AS auditor;

-- 3. The ledger through functions: history and reports are for auditors,
-- time travel too; consent.granted() answers for the present only.
SELECT try($$SELECT count(*) FROM consent.history(8101)$$);
SELECT try($$SELECT count(*) FROM consent.history('8101')$$);
SELECT try($$SELECT count(*) FROM consent.history('00000000-0000-0000-0000-000000008101'::uuid)$$);
SELECT try($$SELECT consent.subject_report(8101)$$);
SELECT try($$SELECT consent.granted(8101, 'user.contact.email', 'personalize', at => now())$$);
SELECT try($$SELECT consent.granted(8101, 'user.contact.email', at => now() - interval '1 day')$$);
SELECT consent.granted(8101, 'user.contact.email') AS granted_now;

-- 4. Settings.  The pseudonym key: not readable, not settable...
SELECT try($$SHOW consent.pseudonym_key$$);
SELECT try($$SELECT current_setting('consent.pseudonym_key')$$);
SELECT try($$SELECT current_setting('consent.pseudonym_key', true)$$);
SELECT count(*) AS in_pg_settings FROM pg_settings WHERE name = 'consent.pseudonym_key';
SELECT count(*) AS in_show_all FROM pg_show_all_settings() WHERE name = 'consent.pseudonym_key';
SELECT try($$SELECT count(*) FROM pg_file_settings$$);
SELECT try($$SELECT pg_read_file('postgresql.auto.conf')$$);
SELECT try($$SET consent.pseudonym_key = 'mine'$$);
SELECT try($$SET LOCAL consent.pseudonym_key = 'mine'$$);
SELECT try($$SELECT set_config('consent.pseudonym_key', 'mine', false)$$);
SELECT try($$RESET consent.pseudonym_key$$);
SELECT try($$ALTER ROLE pv_app SET consent.pseudonym_key = 'mine'$$);
SELECT try($$SET consent.cache_size = 1$$);
SELECT try($$ALTER ROLE pv_app SET consent.cache_size = 1$$);
RESET ROLE;
-- ...and the hash mask still uses the superuser's key
SELECT phone AS pseudonym_as_superuser_computes_it FROM (SELECT consent.mask_value('+49 30 1234502'::text, 'hash') AS phone) s;
SET ROLE pv_app;
SELECT phone AS pseudonym_pv_app_sees FROM pv_shop.customers WHERE id = 8102;
RESET ROLE;
-- a key stored with ALTER ROLE/DATABASE ... SET or a function's SET clause
-- would sit in catalogs every role can read (pg_db_role_setting,
-- pg_proc.proconfig): it must not get there
SELECT try($$ALTER ROLE pv_recorder SET consent.pseudonym_key = 'pv-role-key'$$) IS NOT NULL AS tried;
SELECT try(format('ALTER DATABASE %I SET consent.pseudonym_key = %L', current_database(), 'pv-db-key')) IS NOT NULL AS tried;
SELECT try($$CREATE FUNCTION pv_shop.keyed() RETURNS int LANGUAGE sql SET consent.pseudonym_key = 'pv-func-key' AS 'SELECT 1'$$)
       IS NOT NULL AS tried;
SET ROLE pv_app;
SELECT count(*) AS key_in_role_settings FROM pg_db_role_setting
 WHERE array_to_string(setconfig, ' ') ~ 'pv-(role|db)-key';
SELECT count(*) AS key_in_function_settings FROM pg_proc WHERE array_to_string(proconfig, ' ') ~ 'pv-func-key';
RESET ROLE;
ALTER ROLE pv_recorder RESET ALL;
SELECT try(format('ALTER DATABASE %I RESET consent.pseudonym_key', current_database())) IS NOT NULL AS reset;
DROP FUNCTION IF EXISTS pv_shop.keyed();
-- consent.purpose: only purposes the role was allowed (or their children)
SET ROLE pv_app;
SELECT try($$SET consent.purpose = 'marketing'$$);
SELECT try($$SET consent.purpose = 'no_such_purpose'$$);
SELECT try($$SET consent.purpose = 'Personalize'$$);
SELECT try($$SET consent.purpose = 'personalize; RESET ROLE'$$);
SELECT try($$SET LOCAL consent.purpose = 'marketing'$$);
SELECT try($$SELECT set_config('consent.purpose', 'marketing', false)$$);
SELECT try($$SELECT set_config('consent.purpose', 'marketing', true)$$);
SHOW consent.purpose;
-- a function of its own with SET consent.purpose: refused
SELECT try($$CREATE FUNCTION pg_temp.pv_marketing_emails() RETURNS SETOF text LANGUAGE sql
    SET consent.purpose = 'marketing' AS 'SELECT email::text FROM pv_shop.customers ORDER BY id'$$);
SELECT pv_probe($$SELECT string_agg(e, ',') FROM pg_temp.pv_marketing_emails() e$$,
                'a***@example.com,bob.pv@example.org') AS marketing_emails;
-- consent.as_of: auditors only, however it is set
SELECT try($$SET consent.as_of = '2000-01-01 00:00+00'$$);
SELECT try($$SELECT set_config('consent.as_of', '2000-01-01 00:00+00', false)$$);
SELECT try($$CREATE FUNCTION pg_temp.pv_past() RETURNS SETOF text LANGUAGE sql
    SET consent.as_of = '2000-01-01 00:00+00' AS 'SELECT email::text FROM pv_shop.customers ORDER BY id'$$);
SHOW consent.as_of;
RESET ROLE;
-- a purpose set before SET ROLE counts as no purpose for a role that may
-- not use it (8102 consented to marketing: still masked for pv_app)
SET consent.purpose = 'marketing';
SET ROLE pv_app;
SELECT id, email FROM pv_shop.customers ORDER BY id;
RESET ROLE;
SET consent.purpose = 'personalize';

-- 5. The mask wrappers called directly, to get a raw value back
SET ROLE pv_app;
-- the column reference inside is masked first: nothing to unwrap
SELECT id, consent._mask(email, id, 'pv_shop.customers'::regclass, 2::int2) FROM pv_shop.customers ORDER BY id;
SELECT id, consent._mask(email, 8101::bigint, 'pv_shop.customers'::regclass, 2::int2) AS as_8101
  FROM pv_shop.customers ORDER BY id;
SELECT id, consent._mask(email, NULL::bigint, 0::oid, 0::int2) AS no_rule FROM pv_shop.customers ORDER BY id;
SELECT try($$SELECT consent._mask_strict(email, id, 'pv_shop.customers'::regclass, 2::int2) FROM pv_shop.customers WHERE id = 8102$$);
-- (values of another type than the column's: test/t/011_privileges.pl)
-- the hash mask of a column through _mask: a pseudonym oracle for guesses
-- (the reason consent.mask_value is not granted to PUBLIC)
SELECT pv_probe($$SELECT consent._mask('+49 30 1234502'::text, NULL::bigint, 'pv_shop.customers'::regclass, 4::int2)$$,
                (SELECT phone::text FROM pv_shop.customers WHERE id = 8102)) AS hash_oracle;
-- called directly, the wrappers must not count as disclosures: consent.audit
-- and consent.disclosures are the DPO's record of what was shown, here of
-- a table pv_app cannot even read
SELECT try($$SELECT count(consent._mask('x@example.com'::text, 8101::bigint, 'pv_shop.secret'::regclass, 2::int2))
             FROM generate_series(1, 100)$$) IS NOT NULL AS tried;
RESET ROLE;
SELECT count(*) AS forged_disclosures FROM consent.disclosures WHERE relation = 'pv_shop.secret';

-- 6. Statistics: pg_stats shows the most common values and histograms of
-- every column the role may read, except for tables under row-level
-- security, which partitions and unprotected tables are not.  No raw value
-- of a tagged column may be there, for pv_app nor for anyone (the
-- statistics of tagged columns are not collected), while the untagged
-- columns keep theirs.
SELECT count(*) FILTER (WHERE most_common_vals::text ~ '\.pv@' OR histogram_bounds::text ~ '\.pv@')
       AS raw_values_in_pg_stats, count(*) FILTER (WHERE attname = 'id') > 0 AS untagged_columns_have_statistics
  FROM pg_stats WHERE schemaname = 'pv_shop';
SET ROLE pv_app;
SELECT count(*) FILTER (WHERE most_common_vals::text ~ '\.pv@' OR histogram_bounds::text ~ '\.pv@')
       AS raw_values_in_pg_stats
  FROM pg_stats WHERE schemaname = 'pv_shop';
RESET ROLE;

-- 7. search_path and operator tricks.  pv_app owns a schema with functions
-- and operators named like the ones our code uses; each logs who ran it and
-- with what, then does the real work.  Nothing of it may run with another
-- role's privileges, and what it sees of a protected table is masked.
CREATE SCHEMA pv_evil AUTHORIZATION pv_app;
GRANT USAGE ON SCHEMA pv_evil TO PUBLIC;
SET ROLE pv_app;
CREATE TABLE pv_evil.calls (fn text, as_user name, args text);
GRANT SELECT, INSERT ON pv_evil.calls TO PUBLIC;
CREATE FUNCTION pv_evil.spy(fn text, args text) RETURNS void LANGUAGE sql SET search_path = pg_catalog
    AS $$ INSERT INTO pv_evil.calls VALUES (fn, current_user, args) $$;
CREATE FUNCTION pv_evil.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('=', concat_ws(' = ', a, b)); RETURN texteq(a, b); END $$;
CREATE FUNCTION pv_evil.textne(a text, b text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('<>', concat_ws(' <> ', a, b)); RETURN textne(a, b); END $$;
CREATE FUNCTION pv_evil.textlike(a text, b text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('~~', concat_ws(' ~~ ', a, b)); RETURN textlike(a, b); END $$;
CREATE FUNCTION pv_evil.regexeq(a text, b text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('~', concat_ws(' ~ ', a, b)); RETURN textregexeq(a, b); END $$;
CREATE FUNCTION pv_evil.regexne(a text, b text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('!~', concat_ws(' !~ ', a, b)); RETURN textregexne(a, b); END $$;
CREATE FUNCTION pv_evil.nameeq(a name, b name) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('=name', concat_ws(' = ', a, b)); RETURN nameeq(a, b); END $$;
CREATE FUNCTION pv_evil.int4eq(a int, b int) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('=int', concat_ws(' = ', a, b)); RETURN int4eq(a, b); END $$;
CREATE FUNCTION pv_evil.textcat(a text, b text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('||', concat_ws(' || ', a, b)); RETURN textcat(a, b); END $$;
CREATE OPERATOR pv_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = pv_evil.texteq);
CREATE OPERATOR pv_evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = pv_evil.textne);
CREATE OPERATOR pv_evil.~~ (LEFTARG = text, RIGHTARG = text, FUNCTION = pv_evil.textlike);
CREATE OPERATOR pv_evil.~ (LEFTARG = text, RIGHTARG = text, FUNCTION = pv_evil.regexeq);
CREATE OPERATOR pv_evil.!~ (LEFTARG = text, RIGHTARG = text, FUNCTION = pv_evil.regexne);
CREATE OPERATOR pv_evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = pv_evil.nameeq);
CREATE OPERATOR pv_evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = pv_evil.int4eq);
CREATE OPERATOR pv_evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = pv_evil.textcat);
-- functions named like the ones our SQL calls, and like ours
CREATE FUNCTION pv_evil.current_setting(a text, b boolean) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('current_setting', a); RETURN current_setting(a, b); END $$;
CREATE FUNCTION pv_evil.regexp_replace(a text, b text, c text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('regexp_replace', a); RETURN regexp_replace(a, b, c); END $$;
CREATE FUNCTION pv_evil.pg_advisory_xact_lock(a bigint) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('pg_advisory_xact_lock', a::text); END $$;
CREATE FUNCTION pv_evil.hashtextextended(a text, b bigint) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('hashtextextended', a); RETURN hashtextextended(a, b); END $$;
CREATE FUNCTION pv_evil.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('clock_timestamp', ''); RETURN '2000-01-01 00:00+00'; END $$;
CREATE FUNCTION pv_evil.pg_has_role(a name, b text, c text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('pg_has_role', a); RETURN true; END $$;
CREATE FUNCTION pv_evil.length(a text) RETURNS int LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('length', a); RETURN length(a); END $$;
CREATE FUNCTION pv_evil.library_active() RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$ BEGIN PERFORM pv_evil.spy('library_active', ''); RETURN true; END $$;
CREATE FUNCTION pv_evil._mask(v anyelement, s bigint, r oid, a int2) RETURNS anyelement LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$ BEGIN PERFORM pv_evil.spy('_mask', v::text); RETURN v; END $$;
SET search_path = pv_evil, consent, pg_catalog, public;
SET consent.purpose = 'personalize';
-- queries of its own: the operators run, as pv_app, and see masked values
SELECT id FROM pv_shop.customers WHERE email = 'nobody' OR name = 'nobody' OR email ~~ 'x%' OR email ~ 'y'
 ORDER BY id;
SELECT id, email, name FROM pv_shop.customers ORDER BY id;
-- our functions, called with that search_path
SELECT try($$SELECT consent.granted(8101, 'user.contact.email', 'personalize')$$);
SELECT try($$SELECT consent.granted('8101', 'user.contact.email')$$);
SELECT try($$SELECT consent.current_purpose()$$);
SELECT try($$SELECT consent._check_key('category', 'user.contact')$$);
SELECT try($$SELECT consent.check_mask('partial(1,1)', 'text')$$);
SELECT try($$SELECT consent.version()$$), try($$SELECT consent.library_active()$$);
SELECT try($$SELECT count(*) FROM consent.discover('pv_shop')$$);
SELECT try($$SELECT count(*) FROM consent.history(8101)$$);
SELECT try($$SET consent.purpose = 'marketing'$$);
COPY pv_shop.customers (id, email, name) TO STDOUT;
RESET ROLE;
-- the recorder, with the same search_path, records consent: the SECURITY
-- DEFINER functions must not run any of pv_app's objects
SET ROLE pv_recorder;
SET search_path = pv_evil, consent, pg_catalog, public;
SELECT consent.grant(8102, 'user.name', 'personalize', source => 'pv test') > 0 AS recorded;
SELECT consent.grant('8102', 'user.contact.phone_number', 'personalize') > 0 AS recorded;
SELECT consent.withdraw(8102, 'user.name', 'personalize') > 0 AS recorded;
SELECT consent.withdraw('8102', 'user.contact.phone_number', 'personalize') > 0 AS recorded;
SELECT try($$SELECT consent.grant(8102, 'user.name', 'marketing', valid_until => '2001-01-01 00:00+00')$$);
RESET ROLE;
RESET search_path;
-- the ledger holds the real clock time, not pv_evil.clock_timestamp()'s
SELECT count(*) AS recorded, bool_and(recorded_at > now() - interval '1 hour') AS real_times,
       bool_and(recorded_by = 'pv_recorder') AS recorded_by
  FROM consent.ledger WHERE subject = '8102' AND source IS DISTINCT FROM 'setup' AND category <> 'user.contact.email';
-- nothing of pv_evil ran as anyone but pv_app and pv_recorder, and the
-- operators never saw a raw value that pv_app could not see
SELECT count(*) > 0 AS spied_on_own_queries FROM pv_evil.calls WHERE as_user = 'pv_app' AND fn = '=';
SELECT fn, as_user FROM pv_evil.calls WHERE as_user NOT IN ('pv_app', 'pv_recorder') ORDER BY 1, 2;
SELECT fn, args FROM pv_evil.calls
 WHERE args ~ 'bob\.pv|Bob Baker|Alice Archer|1234502|1234501' ORDER BY 1, 2;

-- 8. What pv_app can do to the protected table it may only read: nothing
-- that changes how it is masked, and what it derives is masked
SET ROLE pv_app;
SELECT try($$ALTER TABLE pv_shop.customers DISABLE ROW LEVEL SECURITY$$);
SELECT try($$ALTER TABLE pv_shop.customers ALTER COLUMN email TYPE text$$);
SELECT try($$DROP POLICY consent_library_active ON pv_shop.customers$$);
SELECT try($$ALTER TABLE pv_shop.customers NO FORCE ROW LEVEL SECURITY$$);
SELECT try($$UPDATE pv_shop.customers SET note = email$$);
SET consent.purpose = 'personalize';
CREATE VIEW pv_evil.v AS SELECT id, email, name FROM pv_shop.customers;
CREATE FUNCTION pv_evil.all_customers() RETURNS SETOF pv_shop.customers LANGUAGE sql
    AS $$ SELECT * FROM pv_shop.customers $$;
CREATE FUNCTION pv_evil.emails_plpgsql() RETURNS SETOF text LANGUAGE plpgsql
    AS $$ BEGIN RETURN QUERY SELECT email::text FROM pv_shop.customers ORDER BY id; END $$;
CREATE TABLE pv_evil.copy AS SELECT * FROM pv_shop.customers;
SELECT id, email, name FROM pv_evil.v ORDER BY id;
SELECT id, email, name FROM pv_evil.all_customers() ORDER BY id;
SELECT pv_evil.emails_plpgsql();
SELECT id, email, name, phone FROM pv_evil.copy ORDER BY id;
RESET ROLE;
SET search_path = pv_evil, pg_catalog, public;
SET ROLE pv_app;
SELECT count(*) FILTER (WHERE args ~ 'bob\.pv|Bob Baker') AS raw_seen_by_operators FROM pv_evil.calls;
RESET ROLE;
RESET search_path;

-- 9. Nothing was written by pv_app, and what pv_recorder wrote is exactly
-- its four events (with their subject_state rows)
SELECT (SELECT count(*) FROM consent.ledger) - ledger AS ledger_rows,
       (SELECT count(*) FROM consent.subject_state) - state AS state_rows,
       (SELECT count(*) FROM consent.categories) - categories AS categories,
       (SELECT count(*) FROM consent.purposes) - purposes AS purposes,
       (SELECT count(*) FROM consent.purpose_roles) - purpose_roles AS purpose_roles,
       (SELECT count(*) FROM consent.protected_tables) - protected AS protected,
       (SELECT count(*) FROM consent.column_masks) - masks AS masks
  FROM pv_written;
SELECT count(*) AS recorded_by_pv_app FROM consent.ledger WHERE recorded_by = 'pv_app';

-- clean up: the roles' entries in the consent catalog go first
RESET consent.pseudonym_key;
RESET consent.purpose;
SELECT consent.revoke_purpose('pv_app', 'personalize');
DROP SCHEMA pv_evil CASCADE;
DROP SCHEMA pv_shop CASCADE;
DROP TABLE pv_written;
DROP FUNCTION pv_probe(text, text), pv_call(regprocedure);
DROP OWNED BY pv_app, pv_recorder;
DROP ROLE pv_app, pv_recorder;
