-- Foundation: version, the C++ boundary, the preload, reserved GUC prefix.
-- (pg_regress created the extension with --load-extension=pg_consent.)

-- A test helper: runs SQL and reports SQLSTATE and message instead of failing.
CREATE FUNCTION public.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- Test helpers for plans: the lines of EXPLAIN q (q starts with EXPLAIN's
-- options, if any) with OIDs shown as '<oid>'::oid, and whether
-- a line of it matches pattern (analyzed: EXPLAIN ANALYZE, without timings).
CREATE FUNCTION public.explain_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || q LOOP
        RETURN NEXT regexp_replace(line, '''[0-9]+''::oid', '''<oid>''::oid', 'g');
    END LOOP;
END
$$;
CREATE FUNCTION public.explain_has(q text, pattern text, analyzed boolean DEFAULT false) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || CASE WHEN analyzed THEN '(ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) '
                                           ELSE '(COSTS OFF) ' END || q LOOP
        IF line ~ pattern THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;

SELECT consent.version() = extversion AS version_agrees FROM pg_extension WHERE extname = 'pg_consent';
SELECT consent.library_active();

-- C++ exceptions become SQL errors with a specific SQLSTATE, after unwinding.
SELECT try($$SELECT consent._throw_cpp('error')$$);
SELECT try($$SELECT consent._throw_cpp('bad_alloc')$$);
SELECT try($$SELECT consent._throw_cpp('runtime')$$);
SELECT try($$SELECT consent._throw_cpp('other')$$);
-- a PostgreSQL error raised under C++ frames travels back as the same error
SELECT try($$SELECT consent._throw_cpp('pg')$$);
SELECT consent._throw_cpp('none');
SELECT consent._throw_cpp('error');
-- the backend keeps working, also inside a transaction after a subtransaction
BEGIN;
SAVEPOINT s;
SELECT consent._throw_cpp('runtime');
ROLLBACK TO SAVEPOINT s;
SELECT 1 AS still_working;
COMMIT;

-- only superusers may call the test entry point
CREATE ROLE consent_t_plain;
SET ROLE consent_t_plain;
SELECT try($$SELECT consent._throw_cpp('none')$$);
RESET ROLE;
DROP ROLE consent_t_plain;

-- the consent.* prefix is reserved
SELECT try($$SET consent.no_such_setting = 1$$);
SHOW consent.purpose;
SHOW consent.cache_size;
-- the pseudonym key is superuser-only and not shown to others
CREATE ROLE consent_t_plain;
SET ROLE consent_t_plain;
SELECT try($$SHOW consent.pseudonym_key$$);
SELECT try($$SET consent.pseudonym_key = 'x'$$);
SELECT count(*) FROM pg_settings WHERE name = 'consent.pseudonym_key';
RESET ROLE;
DROP ROLE consent_t_plain;
