-- Masked reads in statements whose plan runs in parallel mode, and
-- consent.granted() in parallel workers.  Such a plan
-- enters parallel mode in ExecutorStart, and in parallel mode no new
-- snapshot can be taken: every consent look-up of the statement (a subject
-- this transaction changed, a subject another transaction changed since
-- the shared state last loaded it, consent.granted(..., at)) reads with the
-- statement's snapshot, taken before the plan enters that mode, through
-- the index on the subject (no SQL).
SET client_min_messages = warning;
CREATE TABLE pm_big AS SELECT g AS id FROM generate_series(1, 50000) g;
ANALYZE pm_big;
CREATE TABLE pm_customers (id bigint PRIMARY KEY, email consent.email);
-- subjects no other test of the suite uses
INSERT INTO pm_customers SELECT g, 'p' || g || '@example.com' FROM generate_series(4001, 4006) g;
SELECT consent.protect('pm_customers', 'id') IS NOT NULL AS protected;
CREATE ROLE pm_app;
GRANT SELECT ON pm_customers, pm_big TO pm_app;
SELECT consent.allow_purpose('pm_app', 'personalize') IS NOT NULL AS allowed;
SELECT count(consent.grant(id, 'user.contact.email', 'personalize')) FROM pm_customers WHERE id % 2 = 0;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
-- the plans below have a Gather (in an init plan, at least), so their
-- statements run in parallel mode
SELECT explain_has('SELECT id, email, (SELECT count(*) FROM pm_big) AS big FROM pm_customers ORDER BY id', 'Gather') AS parallel;
-- this transaction's own changes (loaded with the statement's snapshot)
BEGIN;
SELECT consent.withdraw(4002, 'user.contact.email', 'personalize') > 0 AS withdrawn;
SELECT consent.grant(4003, 'user.contact.email', 'personalize') > 0 AS granted;
SET LOCAL ROLE pm_app;
SET LOCAL consent.purpose = 'personalize';
SELECT id, email, (SELECT count(*) FROM pm_big) AS big FROM pm_customers ORDER BY id;
SELECT id, consent.granted(id, 'user.contact.email', 'personalize'), (SELECT count(*) FROM pm_big) AS big
FROM pm_customers ORDER BY id;
COMMIT;
-- the subjects the committed transaction marked, reloaded in parallel mode
SET ROLE pm_app;
SET consent.purpose = 'personalize';
SELECT id, email, (SELECT count(*) FROM pm_big) AS big FROM pm_customers ORDER BY id;
RESET ROLE;
-- as of a past time (ledger read through its subject index), in parallel mode
SELECT id, consent.granted(id, 'user.contact.email', 'personalize', now()) AS now,
       consent.granted(id, 'user.contact.email', 'personalize', '2000-01-01') AS in_2000,
       (SELECT count(*) FROM pm_big) AS big
FROM pm_customers ORDER BY id;
-- consent.granted() is PARALLEL SAFE: in parallel workers it decides from
-- the shared state as the leader does (mixed consent over 3,000 subjects,
-- one third granted, some withdrawn again, one granted with an expiry)
CREATE TABLE pm_subjects AS SELECT g AS id FROM generate_series(5001, 8000) g;
ANALYZE pm_subjects;
SELECT count(consent.grant(id, 'user.contact.email', 'personalize')) FROM pm_subjects WHERE id % 3 = 0;
SELECT count(consent.withdraw(id, 'user.contact', 'personalize')) FROM pm_subjects WHERE id % 9 = 0;
SELECT consent.grant(5002, 'user.contact.email', 'personalize', valid_until => now() + interval '1 day') > 0;
SELECT explain_has($$SELECT count(*) FROM pm_subjects
                             WHERE consent.granted(id, 'user.contact.email', 'personalize')$$, 'Workers Launched: [1-9]', true) AS workers_launched;
SELECT count(*) AS granted, sum(id) AS id_sum FROM pm_subjects
WHERE consent.granted(id, 'user.contact.email', 'personalize');
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS granted, sum(id) AS id_sum FROM pm_subjects
WHERE consent.granted(id, 'user.contact.email', 'personalize');
SET max_parallel_workers_per_gather = 2;
DROP TABLE pm_subjects;
-- Masking in parallel workers: consent._mask and the ConsentMask node are
-- parallel safe, and every Gather of a plan that decides consent has a
-- ConsentContext node under it that hands the workers the leader's
-- decision snapshot, its transaction's own consent changes and a way back
-- for their audit counts.  Seven tagged columns, mixed consent.
-- The leader does not scan itself: every row is read by a worker.
SET parallel_leader_participation = off;
CREATE TABLE pw_customers (id bigint PRIMARY KEY, email consent.email, name consent.name,
                           born consent.birthdate, address consent.address, phone consent.phone,
                           ip consent.ip_address, searches consent.search_history);
INSERT INTO pw_customers
SELECT g, 'w' || g || '@example.com', 'Wanda Nr' || g, date '1950-01-01' + g % 20000, g || ' Main Street',
       '+49 30 ' || g, ('10.1.' || g % 250 || '.' || g % 200)::inet, 'query ' || g
FROM generate_series(10001, 40000) g;
ANALYZE pw_customers;
SELECT consent.protect('pw_customers', 'id') IS NOT NULL AS protected;
GRANT SELECT ON pw_customers TO pm_app;
SELECT count(consent.grant(id, 'user.contact', 'personalize')) FROM pw_customers WHERE id % 2 = 0;
SELECT clock_timestamp() AS pw_contact_only \gset
SELECT count(consent.grant(id, 'user.name', 'personalize')) FROM pw_customers WHERE id % 3 = 0;
SELECT count(consent.grant(id, 'user.demographic.date_of_birth', 'personalize')) FROM pw_customers WHERE id % 5 = 0;
SELECT count(consent.grant(id, 'user', 'personalize')) FROM pw_customers WHERE id % 7 = 0;
SELECT count(consent.withdraw(id, 'user.contact.email', 'personalize')) FROM pw_customers WHERE id % 11 = 0;
CREATE VIEW pw_summary AS
SELECT count(*) AS n_rows,
       sum(hashtext(concat_ws('|', email, name, born, address, phone, ip, searches))::bigint) AS digest,
       count(*) FILTER (WHERE email NOT LIKE '%*%') AS emails_shown,
       count(name) FILTER (WHERE name NOT LIKE '%.%') AS names_shown
FROM pw_customers;
GRANT SELECT ON pw_summary TO pm_app;
SET ROLE pm_app;
SET consent.purpose = 'personalize';
EXPLAIN (COSTS OFF) SELECT count(email), max(name), max(born), max(address), max(phone), max(ip), max(searches)
FROM pw_customers;
SELECT explain_lines('(VERBOSE, COSTS OFF) SELECT count(email) FROM pw_customers');
-- the summary below is computed in the workers (Partial Aggregate)
EXPLAIN (COSTS OFF) SELECT * FROM pw_summary;
SELECT explain_has($$SELECT * FROM pw_summary$$, 'Workers Launched: [1-9]', true) AS workers_launched;
CREATE TEMP TABLE pw_parallel AS SELECT * FROM pw_summary;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE pw_serial AS SELECT * FROM pw_summary;
SET max_parallel_workers_per_gather = 2;
SELECT p.n_rows, p.emails_shown, p.names_shown, p.digest = s.digest AS same_cells,
       (p.emails_shown, p.names_shown) = (s.emails_shown, s.names_shown) AS same_counts
FROM pw_parallel p, pw_serial s;
-- this transaction's own changes: the workers decide those subjects from
-- the table (they see the leader's uncommitted rows), the others from the
-- shared state
RESET ROLE;
BEGIN;
SELECT count(consent.withdraw(id, 'user.contact', 'personalize')) FROM pw_customers WHERE id BETWEEN 10001 AND 10200;
SELECT count(consent.grant(id, 'user.contact.email', 'personalize')) FROM pw_customers WHERE id BETWEEN 39801 AND 40000;
SET LOCAL ROLE pm_app;
SET LOCAL consent.purpose = 'personalize';
SELECT explain_has($$SELECT * FROM pw_summary$$, 'Workers Launched: [1-9]', true) AS workers_launched;
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT digest AS serial_digest FROM pw_summary \gset
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT p.emails_shown, p.emails_shown - o.emails_shown AS change, p.digest = :serial_digest AS same_cells
FROM pw_summary p, pw_parallel o;
ROLLBACK;
-- the rolled back changes never applied
SET ROLE pm_app;
SELECT emails_shown, digest = (SELECT digest FROM pw_serial) AS same_cells FROM pw_summary;
RESET ROLE;
-- the cells the workers read are counted in consent.disclosures, with the
-- leader's statement, exactly as a serial plan counts them
SELECT consent.disclosures_reset();
SET ROLE pm_app;
SELECT count(email), count(name), count(born), count(address), count(phone), count(ip), count(searches)
FROM pw_customers;
RESET ROLE;
CREATE TEMP TABLE pw_counted_parallel AS
SELECT column_name, revealed, masked FROM consent.disclosures WHERE relation = 'public.pw_customers';
SELECT consent.disclosures_reset();
SET max_parallel_workers_per_gather = 0;
SET ROLE pm_app;
SELECT count(email), count(name), count(born), count(address), count(phone), count(ip), count(searches)
FROM pw_customers;
RESET ROLE;
SET max_parallel_workers_per_gather = 2;
SELECT p.column_name, p.revealed, p.masked, (p.revealed, p.masked) = (s.revealed, s.masked) AS same_as_serial
FROM pw_counted_parallel p FULL JOIN consent.disclosures s
  ON s.column_name = p.column_name AND s.relation = 'public.pw_customers'
ORDER BY 1;
-- consent.audit: one line per column for the whole statement, the workers'
-- cells included (the same figures as above)
SET consent.audit = 'all';
SET consent.audit_log_level = warning;
SET ROLE pm_app;
SELECT count(email), count(name) FROM pw_customers;
RESET ROLE;
RESET consent.audit;
RESET consent.audit_log_level;
-- a parallel plan stopped early counts at least every cell it returned
SELECT consent.disclosures_reset();
SET ROLE pm_app;
SELECT count(email) FROM (SELECT email FROM pw_customers WHERE searches IS NOT NULL LIMIT 50) l;
RESET ROLE;
SELECT revealed + masked >= 50 AS counted FROM consent.disclosures WHERE column_name = 'email';
-- consent.as_of in the workers: the leader's setting, decided from the
-- ledger as the leader would (only the contact grants existed then)
GRANT consent_auditor TO pm_app;
SET ROLE pm_app;
SET consent.as_of = :'pw_contact_only';
SET max_parallel_workers_per_gather = 0;
SELECT digest AS past_serial_digest, emails_shown AS past_emails, names_shown AS past_names FROM pw_summary \gset
SET max_parallel_workers_per_gather = 2;
SELECT explain_has($$SELECT * FROM pw_summary$$, 'Workers Launched: [1-9]', true) AS workers_launched;
SELECT emails_shown = :past_emails AS same_emails, names_shown AS names_shown_then,
       digest = :past_serial_digest AS same_cells FROM pw_summary;
RESET consent.as_of;
RESET ROLE;
REVOKE consent_auditor FROM pm_app;
-- a mask function of the user's that is not PARALLEL SAFE keeps the
-- statement serial; a PARALLEL SAFE one runs in the workers
CREATE FUNCTION pw_mask_name(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT left($1, 1) || '~' $$;
SELECT consent.set_mask('pw_customers', 'name', 'public.pw_mask_name');
SET ROLE pm_app;
SELECT explain_has($$SELECT count(name) FROM pw_customers$$, 'Workers Launched: [1-9]', true) AS name_workers,
       explain_has($$SELECT count(email) FROM pw_customers$$, 'Workers Launched: [1-9]', true) AS email_workers;
RESET ROLE;
ALTER FUNCTION pw_mask_name(text) PARALLEL SAFE;
SET ROLE pm_app;
SELECT explain_has($$SELECT count(name) FROM pw_customers$$, 'Workers Launched: [1-9]', true) AS name_workers;
SELECT count(*) FILTER (WHERE name LIKE '_~') AS masked_by_function, count(*) FILTER (WHERE name LIKE 'Wanda%') AS shown
FROM pw_customers;
RESET ROLE;
DROP VIEW pw_summary;
DROP TABLE pw_customers;
DROP FUNCTION pw_mask_name(text);
RESET parallel_leader_participation;
RESET consent.purpose;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET consent.purpose;
DROP TABLE pm_customers, pm_big;
DROP OWNED BY pm_app;
DROP ROLE pm_app;
