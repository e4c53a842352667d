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
