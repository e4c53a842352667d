-- pg_consent install script, part 70: discovering untagged personal data
-- (src/discover.cpp, docs/audit-subjects.md).

-- Samples the untagged columns of the schema's tables and suggests a data
-- category for those whose values or names look like personal data.  Reads
-- with the privileges of the caller (columns it may not read are reported as
-- 'no privilege', never sampled), so EXECUTE stays granted to PUBLIC.
-- VOLATILE: it reads table data through sampling.
CREATE FUNCTION consent.discover(schema name DEFAULT 'public', sample_rows int DEFAULT 1000)
    RETURNS TABLE (relation regclass, column_name name, suggested_category text, matches bigint, sampled bigint,
                   confidence real, reason text)
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'consent_discover';
COMMENT ON FUNCTION consent.discover(name, int) IS 'suggests data categories for untagged columns from their names and a sample of their values';
