-- pg_consent demo, part 2: one query, four sessions.  The application role
-- shop_app runs it with no purpose, under marketing and under personalize;
-- then the superuser (who bypasses masking, as for row-level security) runs
-- it.  Every table below is what the server returned.
\set ON_ERROR_STOP 1
\set QUIET on
SET TimeZone = 'Europe/Berlin';
SET DateStyle = 'ISO, YMD';
\pset footer off
\pset null '(null)'

-- The query every session runs, and the count of unmasked cells per column
-- (the view demo.revealed_cells, see 01_setup.sql).
\set first5 'SELECT id, name, email, birthdate, address, fingerprint, dna, search_history FROM shop.customers ORDER BY id LIMIT 5;'
\set revealed 'SELECT * FROM demo.revealed_cells;'

\echo
\echo '======================================================================'
\echo ' 1. shop_app, no purpose set: privacy by default, every tagged cell masked'
\echo '======================================================================'
SET ROLE shop_app;
RESET consent.purpose;
SELECT current_user AS acting_role, coalesce(consent.current_purpose(), '(none)') AS purpose;
\echo :first5
:first5
\echo 'Unmasked cells per column:'
:revealed
\gset none_

\echo
\echo '======================================================================'
\echo ' 2. shop_app under purpose marketing'
\echo '======================================================================'
SET consent.purpose = 'marketing';
SELECT current_user AS acting_role, consent.current_purpose() AS purpose;
\echo :first5
:first5
\echo 'Unmasked cells per column:'
:revealed
\gset mkt_

\echo
\echo '======================================================================'
\echo ' 3. shop_app under purpose personalize'
\echo '======================================================================'
SET consent.purpose = 'personalize';
SELECT current_user AS acting_role, consent.current_purpose() AS purpose;
\echo :first5
:first5
\echo 'Unmasked cells per column:'
:revealed
\gset per_
\echo 'Customers 1-5 show no biometric data: 4 % agreed to share a fingerprint, 2 % their DNA.'
\echo 'The first three whose fingerprint shop_app sees (WHERE sees the masked value, NULL otherwise):'
SELECT id, name, fingerprint, dna FROM shop.customers WHERE fingerprint IS NOT NULL ORDER BY id LIMIT 3;

\echo
\echo '======================================================================'
\echo ' 4. the superuser (bypasses masking like row-level security), no purpose'
\echo '======================================================================'
RESET ROLE;
RESET consent.purpose;
SELECT current_user AS acting_role, coalesce(consent.current_purpose(), '(none)') AS purpose,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser;
\echo :first5
:first5
\echo 'Unmasked cells per column:'
:revealed
\gset su_

\echo
\echo '======================================================================'
\echo ' Side by side: unmasked cells per column (share of all customers), next'
\echo ' to the 2019 survey (personalize) and our assumption for marketing'
\echo '======================================================================'
-- The counts are the ones the four sessions above returned (psql \gset).
SELECT s.column_name AS "column",
       s.survey_percent || ' %' AS "survey 2019",
       format('%s (%s %%)', v.none, round(100.0 * v.none / :none_customers, 1)) AS "no purpose",
       format('%s (%s %%)', v.mkt, round(100.0 * v.mkt / :mkt_customers, 1)) AS "marketing",
       s.marketing_percent || ' %' AS "assumed",
       format('%s (%s %%)', v.per, round(100.0 * v.per / :per_customers, 1)) AS "personalize",
       format('%s (%s %%)', v.su, round(100.0 * v.su / :su_customers, 1)) AS "superuser"
FROM demo.survey s
JOIN (VALUES ('email', :none_email, :mkt_email, :per_email, :su_email),
             ('name', :none_name, :mkt_name, :per_name, :su_name),
             ('birthdate', :none_birthdate, :mkt_birthdate, :per_birthdate, :su_birthdate),
             ('address', :none_address, :mkt_address, :per_address, :su_address),
             ('fingerprint', :none_fingerprint, :mkt_fingerprint, :per_fingerprint, :su_fingerprint),
             ('dna', :none_dna, :mkt_dna, :per_dna, :su_dna),
             ('search_history', :none_search_history, :mkt_search_history, :per_search_history,
              :su_search_history)) AS v(col, none, mkt, per, su)
  ON v.col = s.column_name
ORDER BY s.position;
