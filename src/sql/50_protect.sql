-- pg_consent install script, part 50: protected tables and column masks.

-- The masking functions the planner hook wraps tagged columns in.
CREATE FUNCTION consent._mask(value anyelement, subject "any", relid oid, attno int2) RETURNS anyelement
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'consent_mask';
CREATE FUNCTION consent._mask_strict(value anyelement, subject "any", relid oid, attno int2) RETURNS anyelement
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'consent_mask_strict';

-- Deletes and stops collecting planner statistics of tagged columns (pg_stats
-- would show their raw values).
CREATE FUNCTION consent._hide_statistics(relation regclass) RETURNS void
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'consent_hide_statistics';
REVOKE ALL ON FUNCTION consent._hide_statistics(regclass) FROM PUBLIC;

-- Whether a relation has a column of a tagged type or of a type built from
-- one (a domain over it, an array of it, a composite with such a field).
CREATE FUNCTION consent._has_tagged_column(relation regclass) RETURNS boolean
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'consent_has_tagged_column';

-- Fail closed: a backend without the library cannot read the relation (a
-- restrictive policy calling consent.library_active()).  Enables row-level
-- security with a permissive all-rows policy when it was off, so that
-- nothing else changes; returns whether it did.
CREATE FUNCTION consent._secure(relation regclass) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    rls boolean;
    enabled boolean := false;
BEGIN
    IF relation IS NULL THEN
        RAISE EXCEPTION 'relation must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT c.relrowsecurity INTO rls FROM pg_class c WHERE c.oid = relation;
    IF EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = relation AND p.polname = 'consent_library_active') THEN
        RETURN false;
    END IF;
    IF NOT rls THEN
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', relation);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', relation);
        EXECUTE format('CREATE POLICY consent_all_rows ON %s USING (true) WITH CHECK (true)', relation);
        enabled := true;
    END IF;
    EXECUTE format('CREATE POLICY consent_library_active ON %s AS RESTRICTIVE USING (consent.library_active())',
                   relation);
    RETURN enabled;
END
$$;
REVOKE ALL ON FUNCTION consent._secure(regclass) FROM PUBLIC;

-- Declares whose data each row of a table holds.
CREATE FUNCTION consent.protect(relation regclass, subject_column name) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    kind "char";
    persistence "char";
    subject_type regtype;
    enabled_by_us boolean := false;
BEGIN
    IF relation IS NULL OR subject_column IS NULL THEN
        RAISE EXCEPTION 'relation and subject_column must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT c.relkind, c.relpersistence INTO kind, persistence FROM pg_class c WHERE c.oid = relation;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', relation USING ERRCODE = '42809',
            DETAIL = 'Only ordinary and partitioned tables can be protected.';
    END IF;
    IF persistence = 't' THEN
        RAISE EXCEPTION 'cannot protect temporary table "%"', relation USING ERRCODE = '42809';
    END IF;
    SELECT a.atttypid::regtype INTO subject_type FROM pg_attribute a
        WHERE a.attrelid = relation AND a.attname = subject_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', subject_column, relation
            USING ERRCODE = '42703';
    END IF;
    IF (SELECT coalesce(nullif(t.typbasetype, 0), t.oid) FROM pg_type t WHERE t.oid = subject_type)
       NOT IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype, 'uuid'::regtype, 'text'::regtype,
               'character varying'::regtype) THEN
        RAISE EXCEPTION 'subject column "%" has type %, which cannot identify a subject', subject_column, subject_type
            USING ERRCODE = '42804', HINT = 'Use a bigint, integer, uuid or text column.';
    END IF;
    IF EXISTS (SELECT FROM consent.categories c WHERE c.type = subject_type) THEN
        RAISE EXCEPTION 'subject column "%" must not be consent-tagged', subject_column USING ERRCODE = '42804';
    END IF;
    IF NOT consent._has_tagged_column(relation) THEN
        RAISE NOTICE 'table "%" has no consent-tagged column yet', relation;
    END IF;

    -- Fail closed, also for partitions and inheritance children read directly.
    enabled_by_us := consent._secure(relation);
    PERFORM consent._secure(c.inhrelid) FROM (
        WITH RECURSIVE tree(rel) AS (
            SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = relation
            UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.rel)
        SELECT rel AS inhrelid FROM tree) c;

    PERFORM consent._hide_statistics(relation);
    INSERT INTO consent.protected_tables AS p (relation, subject_column, rls_enabled_by_us)
        VALUES (relation, subject_column, enabled_by_us)
        ON CONFLICT ON CONSTRAINT protected_tables_pkey DO UPDATE SET subject_column = excluded.subject_column;
END
$$;
REVOKE ALL ON FUNCTION consent.protect(regclass, name) FROM PUBLIC;

-- Sets the mask of one tagged column.
CREATE FUNCTION consent.set_mask(relation regclass, column_name name, mask text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    col_type regtype;
    base regtype;
BEGIN
    IF relation IS NULL OR column_name IS NULL OR mask IS NULL THEN
        RAISE EXCEPTION 'relation, column_name and mask must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT a.atttypid::regtype INTO col_type FROM pg_attribute a
        WHERE a.attrelid = relation AND a.attname = column_name AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', column_name, relation USING ERRCODE = '42703';
    END IF;
    SELECT c.base_type INTO base FROM consent.categories c WHERE c.type = col_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation "%" is not consent-tagged', column_name, relation
            USING ERRCODE = '42804', HINT = 'Declare the column with a consent-tagged type such as consent.email.';
    END IF;
    PERFORM consent.check_mask(mask, base);
    INSERT INTO consent.column_masks AS m (relation, column_name, mask) VALUES (relation, column_name, mask)
        ON CONFLICT ON CONSTRAINT column_masks_pkey DO UPDATE SET mask = excluded.mask;
END
$$;
REVOKE ALL ON FUNCTION consent.set_mask(regclass, name, text) FROM PUBLIC;

-- Dropped tables and columns leave the consent catalog (a reused OID must
-- not inherit another table's protection).
CREATE FUNCTION consent._on_sql_drop() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM consent.protected_tables p
        USING pg_event_trigger_dropped_objects() d
        WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND p.relation::oid = d.objid;
    DELETE FROM consent.column_masks m
        USING pg_event_trigger_dropped_objects() d
        WHERE d.classid = 'pg_class'::regclass AND m.relation::oid = d.objid
          AND (d.objsubid = 0 OR NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = m.relation
                                             AND a.attname = m.column_name AND NOT a.attisdropped));
END
$$;
CREATE EVENT TRIGGER consent_sql_drop ON sql_drop EXECUTE FUNCTION consent._on_sql_drop();
