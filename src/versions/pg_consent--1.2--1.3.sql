-- pg_consent 1.2 -> 1.3

\echo Use "ALTER EXTENSION pg_consent UPDATE TO '1.3'" to load this file. \quit

-- The fail-closed policy's function is folded by the planner: IMMUTABLE
-- lets eval_const_expressions() call it once while planning, so a backend
-- with the library preloaded plans no per-row filter (the policy's qual
-- becomes true and disappears), and a backend without it fails with 55000
-- when it plans a query on a protected table instead of when it runs one.
-- Whether the library is preloaded cannot change during a backend's life,
-- and a plan runs only in the backend that made it and in that backend's
-- parallel workers, started by the same preloaded postmaster.
ALTER FUNCTION consent.library_active() IMMUTABLE;

-- Statistics beside a table's columns that read a tagged column (index
-- expressions, extended statistics objects) are no longer collected
-- (src/utility.cpp, hide_derived_statistics()); those that ANALYZE stored
-- under 1.2 are deleted here, for every table with a tagged column.
SELECT consent._hide_statistics(c.oid)
FROM pg_catalog.pg_class c
WHERE c.relkind IN ('r', 'p') AND consent._has_tagged_column(c.oid::regclass);
