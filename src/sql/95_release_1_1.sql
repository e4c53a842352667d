-- pg_consent 1.1 (the upgrade script src/versions/pg_consent--1.0--1.1.sql
-- holds the same statements).

-- This backend's consent cache: subjects held and bytes used (bounded by
-- consent.cache_size).
CREATE FUNCTION consent.cache_stats(OUT subjects bigint, OUT bytes bigint)
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'consent_cache_stats';
