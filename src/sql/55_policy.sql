-- pg_consent install script, part 55: row-level policy functions.

CREATE FUNCTION consent.any_granted(subject text, purpose text DEFAULT NULL) RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_any_granted';
CREATE FUNCTION consent.any_granted(subject bigint, purpose text DEFAULT NULL) RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_any_granted';
CREATE FUNCTION consent.any_granted(subject uuid, purpose text DEFAULT NULL) RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_any_granted';

-- The policy installed by require_consent (see src/purpose.cpp for why it is
-- LEAKPROOF).  Parallel safe from 1.4 (98_release_1_4.sql): parallel workers
-- decide in their leader's context.
CREATE FUNCTION consent._require_check(subject anyelement, required_purpose text) RETURNS boolean
    LANGUAGE c STABLE LEAKPROOF PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'consent_require_check';

-- Rows of subjects who granted nothing for the purpose acted under are
-- invisible to sessions under that purpose (or a child of it).
CREATE FUNCTION consent.require_consent(relation regclass, purpose text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    subject name;
    kind "char";
    policy name;
BEGIN
    IF relation IS NULL OR purpose IS NULL THEN
        RAISE EXCEPTION 'relation and purpose must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = relation;
    IF kind = 'f' THEN
        RAISE EXCEPTION 'cannot require consent on foreign table "%"', relation USING ERRCODE = '42809',
            DETAIL = 'Row-level security does not apply to foreign tables.';
    END IF;
    IF (SELECT c.relpersistence FROM pg_class c WHERE c.oid = relation) = 't' THEN
        RAISE EXCEPTION 'cannot require consent on temporary table "%"', relation USING ERRCODE = '42809';
    END IF;
    IF NOT EXISTS (SELECT FROM consent.purposes p WHERE p.key = purpose) THEN
        RAISE EXCEPTION 'unknown purpose "%"', purpose USING ERRCODE = '22023';
    END IF;
    SELECT t.subject_column INTO subject FROM consent.protected_tables t WHERE t.relation = relation;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation "%" is not protected', relation USING ERRCODE = '55000',
            HINT = 'Declare its subject column first with consent.protect().';
    END IF;
    -- one policy per purpose: its key in the name, or its hash when too long
    policy := 'consent_require ' || purpose;
    IF octet_length(policy) > 63 THEN
        policy := 'consent_require ' || md5(purpose);
    END IF;
    IF EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = relation AND p.polname = policy) THEN
        RETURN;
    END IF;
    -- protect() enabled row-level security (with a permissive policy when it
    -- had to enable it), so a restrictive policy narrows without locking out.
    EXECUTE format('CREATE POLICY %I ON %s AS RESTRICTIVE FOR SELECT USING (consent._require_check(%I, %L))',
                   policy, relation, subject, purpose);
END
$$;
REVOKE ALL ON FUNCTION consent.require_consent(regclass, text) FROM PUBLIC;
