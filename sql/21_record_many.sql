-- consent.record_many (src/sql/98_release_1_4.sql): every row of a table or
-- view recorded as a grant or withdrawal, with the validation, evidence
-- columns and SQLSTATEs of consent.grant and consent.withdraw; the first bad
-- row fails the whole statement, named in the detail, and nothing is
-- written.  Subjects 2100001-2100999, 'rm-*' and the uuid ...6bb9bd002100
-- are this file's own.
\set SHOW_CONTEXT never
-- The whole file is one transaction, rolled back at the end: the ledger is
-- append-only, and later files count the subjects in the consent cache.
-- ON_ERROR_ROLLBACK lets it go on after the expected errors.
\set ON_ERROR_ROLLBACK on
BEGIN;
CREATE TEMP TABLE rm_start AS SELECT clock_timestamp() AS at, (SELECT coalesce(max(id), 0) FROM consent.ledger) AS last_id;
-- the events of this file's subjects, in ledger order, ids counted from the start
CREATE VIEW rm_ledger AS
    SELECT l.id - s.last_id AS n, l.subject, l.category::text, l.purpose::text, l.action, l.valid_until IS NOT NULL AS expires,
           l.recorded_by, l.source, l.evidence
      FROM consent.ledger l, rm_start s
     WHERE l.id > s.last_id AND (l.subject LIKE '21_____' OR l.subject LIKE 'rm-%' OR l.subject LIKE '%-6bb9bd002100');
-- pairs whose subject_state is not the latest event (and latest withdrawal)
-- of the ledger; no row = consistent
CREATE VIEW rm_inconsistent AS
    WITH latest AS (
        SELECT DISTINCT ON (subject, category, purpose) subject, category, purpose, id, action, valid_until, recorded_at
          FROM consent.ledger WHERE action <> 'erase' ORDER BY subject, category, purpose, recorded_at DESC, id DESC),
    latest_withdrawal AS (
        SELECT DISTINCT ON (subject, category, purpose) subject, category, purpose, id, recorded_at
          FROM consent.ledger WHERE action = 'withdraw' ORDER BY subject, category, purpose, recorded_at DESC, id DESC)
    SELECT subject, category, purpose, l.action AS ledger_latest, s.action AS subject_state
      FROM latest l
      FULL JOIN consent.subject_state s USING (subject, category, purpose)
      LEFT JOIN latest_withdrawal w USING (subject, category, purpose)
     WHERE (s.event_id IS DISTINCT FROM l.id OR s.action IS DISTINCT FROM l.action
            OR s.valid_until IS DISTINCT FROM l.valid_until OR s.recorded_at IS DISTINCT FROM l.recorded_at
            OR s.withdrawn_id IS DISTINCT FROM w.id OR s.withdrawn_at IS DISTINCT FROM w.recorded_at)
       AND (subject LIKE '21_____' OR subject LIKE 'rm-%' OR subject LIKE '%-6bb9bd002100');

-- 1. bigint subjects, with valid_until, source and evidence: four events,
-- one of them a withdrawal followed by a new grant of the same pair
CREATE TABLE rm_events (subject bigint, category text, purpose text, action text, valid_until timestamptz,
                        source text, evidence jsonb, note text);
INSERT INTO rm_events VALUES
    (2100001, 'user.contact.email', 'marketing', 'grant', NULL, 'cmp export', '{"receipt": "r-1"}', 'x'),
    (2100002, 'user.name', 'personalize', 'grant', now() + interval '1 year', 'cmp export', NULL, 'y'),
    (2100001, 'user.contact.email', 'marketing', 'withdraw', NULL, 'cmp export', '{"receipt": "r-2"}', NULL),
    (2100001, 'user.contact.email', 'marketing', 'grant', NULL, NULL, NULL, NULL);
SELECT consent.record_many('rm_events');
-- in row order, ids increasing; recorded_by is the acting role, as grant records it
SELECT n, subject, category, purpose, action, expires, recorded_by = current_user AS by_me, source, evidence
  FROM rm_ledger ORDER BY n;
-- one event time for the batch, taken during the call
SELECT count(DISTINCT l.recorded_at) AS times, min(l.recorded_at) >= (SELECT at FROM rm_start) AS during_the_call
  FROM consent.ledger l JOIN rm_ledger r ON l.id - (SELECT last_id FROM rm_start) = r.n;
-- the derived state: the latest event of each pair, and its latest withdrawal
SELECT s.subject, s.category, s.purpose, s.action, s.event_id - r.last_id AS event, s.withdrawn_id - r.last_id AS withdrawal,
       s.withdrawn_at = s.recorded_at AS withdrawn_in_the_batch, s.valid_until IS NOT NULL AS expires
  FROM consent.subject_state s, rm_start r WHERE s.subject IN ('2100001', '2100002') ORDER BY 1, 2, 3;
SELECT consent.granted(2100001, 'user.contact.email', 'marketing') AS regranted,
       consent.granted(2100002, 'user.name', 'personalize') AS granted,
       consent.granted(2100002, 'user.name', 'personalize', at => now() + interval '2 years') AS after_expiry;
SELECT * FROM rm_inconsistent;

-- 2. uuid subjects: stored in canonical lowercase form, as grant stores
-- them; text subjects as they are; the optional columns may be missing
CREATE TABLE rm_uuids (purpose text, subject uuid, action text, category text);
INSERT INTO rm_uuids VALUES ('analytics', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD002100', 'grant', 'user.name');
SELECT consent.record_many('rm_uuids');
SELECT consent.grant('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD002100'::uuid, 'user.contact', 'analytics') > 0 AS granted;
SELECT subject, category, purpose, action, source, evidence FROM rm_ledger WHERE subject LIKE '%002100' ORDER BY n;
SELECT consent.granted('a0eebc99-9c0b-4ef8-bb6d-6bb9bd002100'::uuid, 'user.name', 'analytics') AS uuid_granted;
CREATE TABLE rm_texts (subject text, category varchar, purpose text, action char(8));
INSERT INTO rm_texts VALUES ('rm-alice', 'user.contact.email', 'personalize', 'grant'),
                            ('rm-Bob ', 'user.contact.email', 'personalize', 'grant');
SELECT consent.record_many('rm_texts');
SELECT '"' || subject || '"' AS subject, category, purpose, action FROM rm_ledger WHERE subject LIKE 'rm-%' ORDER BY n;
SELECT consent.granted('rm-alice'::text, 'user.contact.email', 'personalize') AS text_granted;

-- 3. A view as input (integer subjects, in decimal; a consent.key column;
-- the rows numbered in the view's order), and an empty one
CREATE TABLE rm_customers (id bigint PRIMARY KEY, email consent.email, opted_in boolean);
INSERT INTO rm_customers SELECT 2100100 + g, 'c' || g || '@example.com', g % 2 = 0 FROM generate_series(1, 6) g;
CREATE VIEW rm_opt_ins AS
    SELECT id::integer AS subject, 'user.contact.email'::consent.key AS category, 'marketing' AS purpose,
           'grant' AS action, 'newsletter form' AS source, jsonb_build_object('customer', id) AS evidence
      FROM rm_customers WHERE opted_in ORDER BY id DESC;
SELECT consent.record_many('rm_opt_ins');
SELECT subject, category, action, source, evidence FROM rm_ledger WHERE subject LIKE '21001__' ORDER BY n;
CREATE VIEW rm_nothing AS SELECT * FROM rm_opt_ins WHERE false;
SELECT consent.record_many('rm_nothing');

-- 4. A second batch that withdraws: decisions, and masking in this session
-- from its next statement
CREATE ROLE rm_reader;
SELECT consent.allow_purpose('rm_reader', 'marketing');
SELECT consent.protect('rm_customers', 'id');
GRANT SELECT ON rm_customers TO rm_reader;
SET ROLE rm_reader;
SET consent.purpose = 'marketing';
SELECT id, email FROM rm_customers ORDER BY id;
RESET ROLE;
CREATE TABLE rm_withdrawals AS
    SELECT id AS subject, 'user.contact' AS category, 'marketing' AS purpose, 'withdraw' AS action,
           'unsubscribe link' AS source
      FROM rm_customers WHERE id IN (2100102, 2100106);
SELECT consent.record_many('rm_withdrawals');
SET ROLE rm_reader;
SELECT id, email FROM rm_customers ORDER BY id;
RESET ROLE;
RESET consent.purpose;
SELECT subject, category, action, source FROM rm_ledger WHERE action = 'withdraw' AND subject LIKE '21001__' ORDER BY n;
SELECT * FROM rm_inconsistent;

-- 5. Bad input: the error of grant or withdraw, the first bad row named in
-- the detail (full messages once), and nothing written
CREATE TEMP TABLE rm_before AS
    SELECT (SELECT count(*) FROM consent.ledger) AS ledger, (SELECT max(id) FROM consent.ledger) AS last_id,
           (SELECT md5(string_agg(s::text, ',' ORDER BY subject, category, purpose)) FROM consent.subject_state s) AS state;
CREATE VIEW rm_unchanged AS
    SELECT (SELECT count(*) FROM consent.ledger) = ledger AND (SELECT max(id) FROM consent.ledger) = last_id AS ledger_unchanged,
           (SELECT md5(string_agg(s::text, ',' ORDER BY subject, category, purpose)) FROM consent.subject_state s) = state
               AS state_unchanged
      FROM rm_before;
CREATE TABLE rm_bad (LIKE rm_events);
ALTER TABLE rm_bad DROP COLUMN note;
ALTER TABLE rm_bad ALTER COLUMN subject TYPE text;
-- 998 good rows, then bad rows at 999 and 1001: row 999 is named
INSERT INTO rm_bad SELECT 2100200 + g, 'user.name', 'analytics', 'grant' FROM generate_series(1, 998) g;
INSERT INTO rm_bad VALUES ('2100999', 'user.bogus', 'marketing', 'grant'), ('2100999', 'user.name', 'analytics', 'grant'),
                          (NULL, 'user.name', 'analytics', 'grant');
SELECT consent.record_many('rm_bad');
SELECT * FROM rm_unchanged;
\set VERBOSITY sqlstate
-- one bad row at a time, at row 2 after a good row
CREATE FUNCTION rm_try(subject text, category text, purpose text, action text, valid_until timestamptz DEFAULT NULL)
    RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE rm_bad;
    INSERT INTO rm_bad (subject, category, purpose, action) VALUES ('2100998', 'user.name', 'analytics', 'grant');
    INSERT INTO rm_bad (subject, category, purpose, action, valid_until) VALUES (subject, category, purpose, action, valid_until);
    RETURN consent.record_many('rm_bad');
END
$$;
SELECT rm_try(NULL, 'user.name', 'analytics', 'grant');                       -- subject null
SELECT rm_try('', 'user.name', 'analytics', 'grant');                         -- subject empty
SELECT rm_try('erased:abc', 'user.name', 'analytics', 'grant');               -- reserved subject
SELECT rm_try('2100997', NULL, 'analytics', 'grant');                         -- category null
SELECT rm_try('2100997', 'User.Name', 'analytics', 'grant');                  -- malformed category key
SELECT rm_try('2100997', 'user.name', NULL, 'grant');                         -- purpose null
SELECT rm_try('2100997', 'user.name', 'analytics.', 'grant');                 -- malformed purpose key
SELECT rm_try('2100997', 'user.nope', 'analytics', 'grant');                  -- unknown category
SELECT rm_try('2100997', 'user.name', 'nope', 'grant');                       -- unknown purpose
SELECT rm_try('2100997', 'user.name', 'analytics', NULL);                     -- action null
SELECT rm_try('2100997', 'user.name', 'analytics', 'revoke');                 -- unknown action
SELECT rm_try('2100997', 'user.name', 'analytics', 'withdraw', now() + interval '1 day'); -- valid_until on a withdrawal
SELECT rm_try('2100997', 'user.name', 'analytics', 'grant', now() - interval '1 second'); -- valid_until in the past
SELECT rm_try('2100997', 'user.name', 'analytics', 'grant', now());                      -- valid_until = now
\set VERBOSITY default
SELECT rm_try('2100997', 'user.name', 'analytics', 'grant', '2020-01-01 00:00+00');
SELECT rm_try('erased:abc', 'user.name', 'analytics', 'grant');
\set VERBOSITY sqlstate
-- grant itself gives the same SQLSTATEs
SELECT consent.grant(''::text, 'user.name', 'analytics');
SELECT consent.grant('2100997'::text, 'User.Name', 'analytics');
SELECT consent.grant('2100997'::text, 'user.name', 'analytics', now() - interval '1 second');
-- the relation: NULL, missing or mistyped columns, not a table
SELECT consent.record_many(NULL);
CREATE TABLE rm_no_action (subject bigint, category text, purpose text);
SELECT consent.record_many('rm_no_action');
CREATE TABLE rm_int_category (subject bigint, category int, purpose text, action text);
SELECT consent.record_many('rm_int_category');
CREATE TABLE rm_numeric_subject (subject numeric, category text, purpose text, action text);
SELECT consent.record_many('rm_numeric_subject');
CREATE TABLE rm_text_until (subject bigint, category text, purpose text, action text, valid_until text);
SELECT consent.record_many('rm_text_until');
CREATE TABLE rm_json_evidence (subject bigint, category text, purpose text, action text, evidence json);
SELECT consent.record_many('rm_json_evidence');
CREATE SEQUENCE rm_seq;
SELECT consent.record_many('rm_seq');
\set VERBOSITY default
SELECT consent.record_many('rm_no_action');
SELECT consent.record_many('rm_json_evidence');
-- nothing of it was written
SELECT * FROM rm_unchanged;
-- an error after the derived state was written (a trigger of ours on the
-- ledger refuses the events): the state is rolled back with the ledger
CREATE FUNCTION rm_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refused by rm_refuse' USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER rm_refuse BEFORE INSERT ON consent.ledger FOR EACH ROW WHEN (NEW.source = 'rm-refuse')
    EXECUTE FUNCTION rm_refuse();
ALTER TABLE consent.ledger ENABLE ALWAYS TRIGGER rm_refuse;
UPDATE rm_withdrawals SET source = 'rm-refuse', action = 'grant';
SELECT consent.record_many('rm_withdrawals');
DROP TRIGGER rm_refuse ON consent.ledger;
DROP FUNCTION rm_refuse();
SELECT ledger_unchanged, state_unchanged FROM rm_unchanged;
SELECT count(*) AS events_written FROM consent.ledger WHERE id > (SELECT last_id FROM rm_before);

-- 6. Many events per pair, in no particular order: every pair's state is
-- its latest event and latest withdrawal; then a pair whose state is newer
-- than the batch's start (as when a concurrent writer commits meanwhile) is
-- written with a time taken after the locks
CREATE TABLE rm_many AS
    SELECT (2100300 + g % 37)::text AS subject,
           (ARRAY['user.contact.email', 'user.name', 'user.contact'])[1 + g % 3] AS category,
           (ARRAY['marketing', 'analytics'])[1 + (g / 7) % 2] AS purpose,
           CASE WHEN g % 23 = 0 THEN 'withdraw' ELSE 'grant' END AS action
      FROM generate_series(1, 2000) g;
SELECT consent.record_many('rm_many');
SELECT count(*) AS pairs, count(*) FILTER (WHERE withdrawn_id IS NOT NULL) AS with_withdrawal
  FROM consent.subject_state WHERE subject LIKE '21003__';
SELECT * FROM rm_inconsistent;
UPDATE consent.subject_state SET recorded_at = now() + interval '1 hour'
 WHERE subject = '2100301' AND category = 'user.name' AND purpose = 'marketing';
SELECT consent.record_many('rm_many');
SELECT count(DISTINCT l.recorded_at) AS times, bool_and(s.recorded_at = l.recorded_at) AS state_at_event_time
  FROM consent.subject_state s JOIN consent.ledger l ON l.id = s.event_id WHERE s.subject LIKE '21003__';
SELECT * FROM rm_inconsistent;

-- 7. Privileges: not executable by PUBLIC; consent.allow_recording() grants
-- it; the relation is read with the caller's privileges (table, column and
-- row security)
CREATE ROLE rm_nobody;
CREATE ROLE rm_recorder;
SELECT has_function_privilege('rm_nobody', 'consent.record_many(regclass)', 'EXECUTE') AS nobody_may,
       has_function_privilege('rm_recorder', 'consent.record_many(regclass)', 'EXECUTE') AS recorder_may_before;
SELECT consent.allow_recording('rm_recorder');
SELECT p.oid::regprocedure AS granted_to_recorders FROM pg_proc p
 WHERE p.pronamespace = 'consent'::regnamespace AND has_function_privilege('rm_recorder', p.oid, 'EXECUTE')
   AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY 1::text COLLATE "C";
CREATE TABLE rm_import (subject bigint, category text, purpose text, action text, evidence jsonb);
INSERT INTO rm_import VALUES (2100401, 'user.name', 'analytics', 'grant', '{"row": 1}'),
                             (2100402, 'user.name', 'analytics', 'grant', '{"row": 2}'),
                             (2100403, 'user.name', 'analytics', 'grant', '{"row": 3}');
GRANT SELECT ON rm_import TO rm_nobody, rm_recorder;
SET ROLE rm_nobody;
SELECT consent.record_many('rm_import');
RESET ROLE;
SET ROLE rm_recorder;
SELECT consent.record_many('rm_import');
RESET ROLE;
SELECT subject, recorded_by, evidence FROM rm_ledger WHERE subject LIKE '21004__' ORDER BY n;
-- a table the recorder may not read, or not all of whose columns it may read
CREATE TABLE rm_secret (subject bigint, category text, purpose text, action text);
INSERT INTO rm_secret VALUES (2100404, 'user.name', 'analytics', 'grant');
CREATE TABLE rm_partly (subject bigint, category text, purpose text, action text, evidence jsonb);
INSERT INTO rm_partly VALUES (2100405, 'user.name', 'analytics', 'grant', '{"secret": true}');
GRANT SELECT (subject, category, purpose, action) ON rm_partly TO rm_recorder;
SET ROLE rm_recorder;
SELECT consent.record_many('rm_secret');
SELECT consent.record_many('rm_partly');
RESET ROLE;
-- row security: the recorder records the rows it sees
CREATE TABLE rm_by_region (subject bigint, category text, purpose text, action text, region text);
INSERT INTO rm_by_region VALUES (2100406, 'user.name', 'analytics', 'grant', 'eu'),
                                (2100407, 'user.name', 'analytics', 'grant', 'us');
ALTER TABLE rm_by_region ENABLE ROW LEVEL SECURITY;
CREATE POLICY rm_eu ON rm_by_region FOR SELECT TO rm_recorder USING (region = 'eu');
GRANT SELECT ON rm_by_region TO rm_recorder;
SET ROLE rm_recorder;
SELECT consent.record_many('rm_by_region');
RESET ROLE;
SELECT subject FROM rm_ledger WHERE subject IN ('2100404', '2100405', '2100406', '2100407') ORDER BY n;

-- nothing of this file stays
ROLLBACK;
SELECT count(*) AS events_left FROM consent.ledger WHERE subject LIKE '21_____' OR subject LIKE 'rm-%';
SELECT count(*) AS roles_left FROM pg_roles WHERE rolname LIKE 'rm\_%';
