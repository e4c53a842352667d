-- pg_consent install script, part 60: DBA audits (src/audit.cpp,
-- docs/audit-guide.md): disclosure counters, coverage of tagged columns,
-- records of processing activities (GDPR Art. 30).

-- ---------------------------------------------------------------------------
-- Disclosure counters: shared memory, cluster-wide, never a table (they are
-- counted on hot standbys and in read-only transactions too).

CREATE FUNCTION consent._disclosures(
        OUT dbid oid, OUT roleid oid, OUT relid oid, OUT attnum int2,
        OUT schema_name text, OUT table_name text, OUT column_name text,
        OUT purpose text, OUT category text,
        OUT revealed bigint, OUT masked bigint, OUT last_time timestamptz)
    RETURNS SETOF record LANGUAGE c STRICT VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'consent_disclosures';
REVOKE ALL ON FUNCTION consent._disclosures() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consent._disclosures() TO consent_auditor;

CREATE FUNCTION consent._disclosures_info(
        OUT entries bigint, OUT max_entries int, OUT evictions bigint, OUT stats_reset timestamptz)
    RETURNS record LANGUAGE c STRICT VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'consent_disclosures_info';
REVOKE ALL ON FUNCTION consent._disclosures_info() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consent._disclosures_info() TO consent_auditor;

-- Forgets every counter, in every database.  Superusers only unless granted.
CREATE FUNCTION consent.disclosures_reset() RETURNS void
    LANGUAGE c STRICT VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'consent_disclosures_reset';
REVOKE ALL ON FUNCTION consent.disclosures_reset() FROM PUBLIC;
COMMENT ON FUNCTION consent.disclosures_reset() IS 'resets consent.disclosures (all databases)';

-- Cumulative revealed and masked cells per database, acting role, purpose,
-- relation and column (purpose NULL: none set, or not allowed to the role).
CREATE VIEW consent.disclosures AS
    SELECT d.datname AS database,
           r.rolname AS role,
           s.purpose,
           format('%I.%I', s.schema_name, s.table_name) AS relation,
           s.column_name,
           s.category,
           s.revealed,
           s.masked,
           s.last_time,
           s.dbid,
           s.roleid,
           s.relid,
           s.attnum
    FROM consent._disclosures() s
    LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
    LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.roleid;
COMMENT ON VIEW consent.disclosures IS 'cumulative revealed and masked tagged cells per database, role, purpose, relation and column';

-- Size and history of the counters: entries, capacity (consent.disclosures_max),
-- entries evicted because the table was full, and the last reset.
CREATE VIEW consent.disclosures_info AS
    SELECT * FROM consent._disclosures_info();
COMMENT ON VIEW consent.disclosures_info IS 'entries, capacity, evictions and last reset of consent.disclosures';

REVOKE ALL ON consent.disclosures, consent.disclosures_info FROM PUBLIC;
GRANT SELECT ON consent.disclosures, consent.disclosures_info TO consent_auditor;

-- ---------------------------------------------------------------------------
-- Coverage: every tagged column of every table, materialized view and foreign
-- table, with how it is masked and what is wrong with its protection.

-- (A function with jit off behind the view: the recursive catalog queries have
-- row estimates high enough to trigger JIT compilation, which costs more than
-- the query.)
CREATE FUNCTION consent._coverage()
    RETURNS TABLE (schema_name name, table_name name, column_name name, column_type regtype, category text,
                   special boolean, mask text, subject_column name, row_policies name[], problems text[],
                   relation regclass, attnum int2)
    LANGUAGE sql STABLE PARALLEL SAFE ROWS 100 SET jit = off SET search_path = pg_catalog, pg_temp AS $$
WITH RECURSIVE type_edges (child, parent, kind) AS (
    -- types built from another type: domains over it, arrays of it, composite
    -- types with a field of it
    SELECT t.oid, t.typbasetype, 'domain' FROM pg_catalog.pg_type t WHERE t.typtype = 'd'
    UNION ALL
    SELECT t.oid, t.typelem, 'array' FROM pg_catalog.pg_type t
    WHERE t.typelem <> 0 AND t.typsubscript = 'pg_catalog.array_subscript_handler'::regproc
    UNION ALL
    SELECT t.oid, fa.atttypid, 'composite' FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_attribute fa ON fa.attrelid = t.typrelid AND fa.attnum > 0 AND NOT fa.attisdropped
    WHERE t.typtype = 'c'
),
-- the tagged types, and every type built from one, with how (as the masking
-- resolves them: a domain keeps its category's mask, an array is NULL when
-- masked, a composite is shown to bypass roles only)
tagged_types (type, category, how) AS (
    SELECT cat.type::oid, cat.key::text, 'direct' FROM consent.categories cat WHERE cat.type IS NOT NULL
    UNION
    SELECT e.child, tt.category,
           CASE WHEN tt.how = 'composite' OR e.kind = 'composite' THEN 'composite'
                WHEN tt.how = 'array' OR e.kind = 'array' THEN 'array'
                ELSE 'domain' END
    FROM tagged_types tt JOIN type_edges e ON e.parent = tt.type
),
tagged AS (
    SELECT c.oid AS relid, n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
           a.attnum, a.attname, a.atttypid, tt.how, cat.key AS category, cat.special, cat.default_mask
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN tagged_types tt ON tt.type = a.atttypid
    JOIN consent.categories cat ON cat.key = tt.category
    WHERE c.relkind IN ('r', 'p', 'm', 'f')
),
-- each relation with its inheritance/partition ancestors, nearest first
ancestry (relid, ancestor, depth) AS (
    SELECT DISTINCT relid, relid, 0 FROM tagged
    UNION ALL
    SELECT an.relid, i.inhparent, an.depth + 1
    FROM ancestry an JOIN pg_catalog.pg_inherits i ON i.inhrelid = an.ancestor
    WHERE an.depth < 100
),
-- the nearest protected ancestor (or the relation itself), as the masking does
owner AS (
    SELECT DISTINCT ON (an.relid) an.relid, an.ancestor AS owner, p.subject_column
    FROM ancestry an JOIN consent.protected_tables p ON p.relation = an.ancestor
    ORDER BY an.relid, an.depth
),
checked AS (
    SELECT t.*, o.owner, o.subject_column,
           CASE WHEN t.how IN ('direct', 'domain') THEN coalesce(own_mask.mask, owner_mask.mask, t.default_mask)
                ELSE 'null' END AS mask,
           sa.attnum AS subject_attnum, sa.attnotnull AS subject_not_null,
           EXISTS (SELECT FROM pg_catalog.pg_index i
                   WHERE i.indrelid = t.relid AND i.indnatts > 0 AND i.indkey[0] = sa.attnum) AS subject_indexed,
           EXISTS (SELECT FROM pg_catalog.pg_policy pol
                   WHERE pol.polrelid = t.relid AND pol.polname = 'consent_library_active'
                     AND NOT pol.polpermissive) AS fail_closed,
           coalesce((SELECT array_agg(pol.polname ORDER BY pol.polname)
                     FROM pg_catalog.pg_policy pol WHERE pol.polrelid = t.relid), '{}') AS row_policies
    FROM tagged t
    LEFT JOIN owner o ON o.relid = t.relid
    LEFT JOIN consent.column_masks own_mask ON own_mask.relation = t.relid AND own_mask.column_name = t.attname
    LEFT JOIN consent.column_masks owner_mask
           ON o.owner <> t.relid AND owner_mask.relation = o.owner AND owner_mask.column_name = t.attname
    LEFT JOIN pg_catalog.pg_attribute sa
           ON sa.attrelid = t.relid AND sa.attname = o.subject_column AND sa.attnum > 0 AND NOT sa.attisdropped
)
SELECT nspname AS schema_name,
       relname AS table_name,
       attname AS column_name,
       atttypid::regtype AS column_type,
       category::text,
       special,
       mask::text,
       subject_column,
       row_policies,
       array_remove(ARRAY[
           CASE WHEN owner IS NULL THEN 'table not protected' END,
           CASE WHEN special AND mask <> 'null' THEN 'special category with a revealing mask' END,
           CASE WHEN owner IS NOT NULL AND subject_attnum IS NULL THEN 'subject column missing' END,
           CASE WHEN subject_attnum IS NOT NULL AND NOT subject_not_null THEN 'subject column nullable' END,
           CASE WHEN subject_attnum IS NOT NULL AND NOT subject_indexed THEN 'subject column not indexed' END,
           CASE WHEN owner IS NOT NULL AND NOT relrowsecurity THEN 'row-level security disabled' END,
           CASE WHEN owner IS NOT NULL AND relrowsecurity AND NOT relforcerowsecurity
                THEN 'row-level security not forced' END,
           CASE WHEN owner IS NOT NULL AND NOT fail_closed THEN 'fail-closed policy missing' END
       ]::text[], NULL) AS problems,
       relid::regclass AS relation,
       attnum
FROM checked
$$;
REVOKE ALL ON FUNCTION consent._coverage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consent._coverage() TO consent_auditor;

CREATE VIEW consent.coverage AS SELECT * FROM consent._coverage();
COMMENT ON VIEW consent.coverage IS 'every consent-tagged column, its mask and subject column, and the problems of its protection';

-- ---------------------------------------------------------------------------
-- Records of processing activities (GDPR Art. 30), from the catalog: per
-- purpose, its legal basis, the roles allowed it, and what it reaches.

CREATE FUNCTION consent._processing_records()
    RETURNS TABLE (purpose text, label text, basis text, parent text, roles name[], necessary_categories text[],
                   columns_without_consent text[], consent_categories text[], consent_columns text[])
    LANGUAGE sql STABLE PARALLEL SAFE ROWS 20 SET jit = off SET search_path = pg_catalog, pg_temp AS $$
WITH RECURSIVE purpose_ancestry (purpose, ancestor) AS (
    SELECT key, key FROM consent.purposes
    UNION ALL
    SELECT pa.purpose, p.parent FROM purpose_ancestry pa JOIN consent.purposes p ON p.key = pa.ancestor
    WHERE p.parent IS NOT NULL
),
category_ancestry (category, ancestor) AS (
    SELECT key, key FROM consent.categories
    UNION ALL
    SELECT ca.category, c.parent FROM category_ancestry ca JOIN consent.categories c ON c.key = ca.ancestor
    WHERE c.parent IS NOT NULL
),
-- tagged columns whose cells can be revealed: protected tables (and their
-- inheritance children, but not partitions: they are read through the parent)
reachable AS (
    SELECT format('%I.%I.%I', cv.schema_name, cv.table_name, cv.column_name) AS col, cv.category
    FROM consent._coverage() cv
    JOIN pg_catalog.pg_class c ON c.oid = cv.relation
    WHERE cv.subject_column IS NOT NULL AND NOT c.relispartition
      AND NOT ('subject column missing' = ANY (cv.problems))
      AND cv.mask IS NOT NULL
      -- composites (and arrays of them) are shown to bypass roles only
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
                      WHERE t.oid = cv.column_type AND (t.typtype = 'c' OR e.typtype = 'c'))
),
-- (purpose, column) pairs the purpose sees without consent
necessary_reach AS (
    SELECT DISTINCT p.key AS purpose, r.col, r.category
    FROM consent.purposes p
    CROSS JOIN LATERAL unnest(p.necessary) AS n(category)
    JOIN category_ancestry ca ON ca.ancestor = n.category
    JOIN reachable r ON r.category = ca.category
)
SELECT p.key::text AS purpose,
       p.label,
       p.basis,
       p.parent::text,
       coalesce((SELECT array_agg(DISTINCT ro.rolname ORDER BY ro.rolname)
                 FROM purpose_ancestry pa
                 JOIN consent.purpose_roles pr ON pr.purpose = pa.ancestor
                 JOIN pg_catalog.pg_roles ro ON ro.oid = pr.role
                 WHERE pa.purpose = p.key), '{}') AS roles,
       coalesce((SELECT array_agg(n ORDER BY n) FROM unnest(p.necessary) n), '{}') AS necessary_categories,
       coalesce((SELECT array_agg(nr.col ORDER BY nr.col) FROM necessary_reach nr WHERE nr.purpose = p.key),
                '{}') AS columns_without_consent,
       coalesce((SELECT array_agg(DISTINCT r.category ORDER BY r.category) FROM reachable r
                 WHERE NOT EXISTS (SELECT FROM necessary_reach nr WHERE nr.purpose = p.key AND nr.col = r.col)),
                '{}') AS consent_categories,
       coalesce((SELECT array_agg(r.col ORDER BY r.col) FROM reachable r
                 WHERE NOT EXISTS (SELECT FROM necessary_reach nr WHERE nr.purpose = p.key AND nr.col = r.col)),
                '{}') AS consent_columns
FROM consent.purposes p
$$;
REVOKE ALL ON FUNCTION consent._processing_records() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consent._processing_records() TO consent_auditor;

CREATE VIEW consent.processing_records AS SELECT * FROM consent._processing_records();
COMMENT ON VIEW consent.processing_records IS 'GDPR Art. 30 records: per purpose, legal basis, allowed roles, and the tagged columns it reaches with and without consent';

REVOKE ALL ON consent.coverage, consent.processing_records FROM PUBLIC;
GRANT SELECT ON consent.coverage, consent.processing_records TO consent_auditor;
