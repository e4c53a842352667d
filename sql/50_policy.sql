-- Row-level policy functions: any_granted, require_consent.
CREATE TABLE pl_customers (id bigint PRIMARY KEY, email consent.email, segment int);
SELECT consent.protect('pl_customers', 'id');
INSERT INTO pl_customers SELECT g, 'c' || g || '@example.com', g % 10 FROM generate_series(601, 606) g;
-- 601: marketing (all), 602: marketing.communications.email only, 603: personalize only,
-- 604: marketing withdrawn, 605: marketing grant expiring in an hour, 606: nothing
-- (subjects are global: these numbers are not used by other tests)
SELECT consent.grant(601, 'user', 'marketing') > 0,
       consent.grant(602, 'user.contact.email', 'marketing.communications.email') > 0,
       consent.grant(603, 'user.contact.email', 'personalize') > 0,
       consent.grant(604, 'user.contact.email', 'marketing') > 0,
       consent.withdraw(604, 'user', 'marketing') > 0,
       consent.grant(605, 'user.name', 'marketing', valid_until => now() + interval '1 hour') > 0;

-- any_granted
SELECT id, consent.any_granted(id, 'marketing') AS marketing,
       consent.any_granted(id, 'marketing.communications.email') AS email_campaigns,
       consent.any_granted(id, 'personalize') AS personalize
FROM pl_customers ORDER BY id;
SELECT consent.any_granted('603'::text, 'personalize') AS text_subject, consent.any_granted(NULL::bigint, 'marketing') AS null_subject;
SELECT try($$SELECT consent.any_granted(601, 'nothing')$$);
SET consent.purpose = 'marketing';
SELECT consent.any_granted(601) AS current_purpose;
RESET consent.purpose;
SELECT consent.any_granted(601) AS no_purpose;
-- usable in a hand-written policy: a grant on marketing covers its children
SELECT count(*) FILTER (WHERE consent.any_granted(id, 'marketing.advertising')) AS advertising FROM pl_customers;

-- require_consent
SELECT consent.require_consent('pl_customers', 'marketing');
SELECT consent.require_consent('pl_customers', 'marketing');  -- twice is harmless
SELECT polname, polpermissive, polcmd FROM pg_policy WHERE polrelid = 'pl_customers'::regclass ORDER BY polname;
CREATE ROLE pl_app;
GRANT SELECT ON pl_customers TO pl_app;
SELECT consent.allow_purpose('pl_app', 'marketing'), consent.allow_purpose('pl_app', 'personalize');
SET ROLE pl_app;
-- no purpose: every row, every tagged cell masked
SELECT id, email FROM pl_customers ORDER BY id;
SET consent.purpose = 'marketing';
SELECT id, email FROM pl_customers ORDER BY id;
-- a child purpose: rows of subjects who granted something covering it
SET consent.purpose = 'marketing.communications.email';
SELECT id, email FROM pl_customers ORDER BY id;
SET consent.purpose = 'marketing.advertising';
SELECT id, email FROM pl_customers ORDER BY id;
-- the policy in parallel workers (PARALLEL SAFE): the rows of the serial plan
SET consent.purpose = 'marketing';
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT id, email FROM pl_customers;
SELECT string_agg(id || ':' || email, ', ' ORDER BY id) AS parallel_rows FROM pl_customers;
SET max_parallel_workers_per_gather = 0;
SELECT string_agg(id || ':' || email, ', ' ORDER BY id) AS serial_rows FROM pl_customers;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
-- other purposes are unaffected
SET consent.purpose = 'personalize';
SELECT id, email FROM pl_customers ORDER BY id;
-- expiry: as of two hours from now, subject 605's grant has lapsed (auditors only)
RESET ROLE;
SET consent.purpose = 'marketing';
GRANT consent_auditor TO pl_app;
SET ROLE pl_app;
SET consent.as_of = '2999-01-01';
SELECT id FROM pl_customers ORDER BY id;
RESET consent.as_of;
-- withdrawal takes effect at the next statement
RESET ROLE;
SELECT consent.withdraw(601, 'user', 'marketing') > 0;
SET ROLE pl_app;
SELECT id FROM pl_customers ORDER BY id;
-- user predicates still use indexes
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM pl_customers WHERE id = 605;
RESET enable_seqscan;
SELECT id FROM pl_customers WHERE id = 605;
RESET consent.purpose;
RESET ROLE;
REVOKE consent_auditor FROM pl_app;

-- bad input
SELECT try($$SELECT consent.require_consent('pl_customers', 'nothing')$$);
SELECT try($$SELECT consent.require_consent(NULL, 'marketing')$$);
CREATE TABLE pl_plain (id bigint);
SELECT try($$SELECT consent.require_consent('pl_plain', 'marketing')$$);
CREATE TEMP TABLE pl_temp (id bigint);
SELECT try($$SELECT consent.require_consent('pl_temp', 'marketing')$$);
CREATE VIEW pl_view AS SELECT * FROM pl_customers;
SELECT try($$SELECT consent.require_consent('pl_view', 'marketing')$$);
SET ROLE pl_app;
SELECT try($$SELECT consent.require_consent('pl_customers', 'personalize')$$);
RESET ROLE;
REVOKE ALL ON pl_customers FROM pl_app;
DROP ROLE pl_app;
