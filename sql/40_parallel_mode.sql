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
CREATE FUNCTION pm_has_gather(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF line ~ 'Gather' THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
SELECT pm_has_gather('SELECT id, email, (SELECT count(*) FROM pm_big) AS big FROM pm_customers ORDER BY id') AS parallel;
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
CREATE FUNCTION pm_workers_launched(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
        IF line ~ 'Workers Launched: [1-9]' THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
SELECT pm_workers_launched($$SELECT count(*) FROM pm_subjects
                             WHERE consent.granted(id, 'user.contact.email', 'personalize')$$) AS workers_launched;
SELECT count(*) AS granted, sum(id) AS id_sum FROM pm_subjects
WHERE consent.granted(id, 'user.contact.email', 'personalize');
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS granted, sum(id) AS id_sum FROM pm_subjects
WHERE consent.granted(id, 'user.contact.email', 'personalize');
SET max_parallel_workers_per_gather = 2;
DROP TABLE pm_subjects;
DROP FUNCTION pm_workers_launched(text);
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET consent.purpose;
DROP TABLE pm_customers, pm_big;
DROP FUNCTION pm_has_gather(text);
DROP OWNED BY pm_app;
DROP ROLE pm_app;
