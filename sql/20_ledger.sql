-- The consent ledger: grant, withdraw, history, granted, coverage rules.
-- subjects may be bigint, uuid or text
SELECT consent.grant(101, 'user.contact.email', 'marketing') > 0 AS granted_bigint;
SELECT consent.grant('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, 'user.name', 'personalize') > 0 AS granted_uuid;
SELECT consent.grant('cust-7'::text, 'user', 'analytics', source => 'web form', evidence => '{"ip": "198.51.100.1"}') > 0 AS granted_text;
SELECT subject, category, purpose, action, valid_until, recorded_by, source, evidence
FROM consent.ledger ORDER BY id;

-- coverage: an event covers descendant categories and purposes
SELECT consent.granted(101, 'user.contact.email', 'marketing') AS exact,
       consent.granted(101, 'user.contact.email', 'marketing.communications.email') AS child_purpose,
       consent.granted(101, 'user.contact', 'marketing') AS parent_category,
       consent.granted(101, 'user.contact.email', 'personalize') AS other_purpose,
       consent.granted(102, 'user.contact.email', 'marketing') AS other_subject;
SELECT consent.granted('cust-7'::text, 'user.contact.email', 'analytics') AS via_ancestor,
       consent.granted('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, 'user.name', 'personalize') AS uuid_subject;

-- most recent covering event wins: withdrawing marketing overrides a narrower grant
SELECT consent.grant(200, 'user.contact.email', 'marketing.communications.email') > 0;
SELECT consent.granted(200, 'user.contact.email', 'marketing.communications.email') AS before_withdrawal;
SELECT consent.withdraw(200, 'user', 'marketing') > 0;
SELECT consent.granted(200, 'user.contact.email', 'marketing.communications.email') AS after_broad_withdrawal;
-- a later, narrower grant counts again
SELECT consent.grant(200, 'user.contact.email', 'marketing.communications.email') > 0;
SELECT consent.granted(200, 'user.contact.email', 'marketing.communications.email') AS after_new_grant,
       consent.granted(200, 'user.name', 'marketing') AS other_category_still_withdrawn;

-- special categories: a grant on a general ancestor does not reveal them
SELECT consent.grant(300, 'user', 'personalize') > 0;
SELECT consent.granted(300, 'user.contact.email', 'personalize') AS general,
       consent.granted(300, 'user.biometric.fingerprint', 'personalize') AS special_via_user;
SELECT consent.grant(300, 'user.biometric', 'personalize') > 0;
SELECT consent.granted(300, 'user.biometric.fingerprint', 'personalize') AS special_named,
       consent.granted(300, 'user.health_and_medical.genetic', 'personalize') AS other_special;
-- a withdrawal on any ancestor still masks special categories, and a later
-- general grant does not bring them back
SELECT consent.withdraw(300, 'user', 'personalize') > 0;
SELECT consent.grant(300, 'user', 'personalize') > 0;
SELECT consent.granted(300, 'user.contact.email', 'personalize') AS general_again,
       consent.granted(300, 'user.biometric.fingerprint', 'personalize') AS special_stays_withdrawn;

-- expiry and time travel
SELECT consent.grant(400, 'user.name', 'analytics', valid_until => now() + interval '1 hour') > 0;
SELECT consent.granted(400, 'user.name', 'analytics') AS now_granted,
       consent.granted(400, 'user.name', 'analytics', at => now() + interval '2 hours') AS after_expiry,
       consent.granted(400, 'user.name', 'analytics', at => now() - interval '1 day') AS before_grant;

-- NULL purpose means the current purpose
SET consent.purpose = 'marketing';
SELECT consent.granted(101, 'user.contact.email') AS current_purpose;
RESET consent.purpose;
SELECT consent.granted(101, 'user.contact.email') AS no_purpose;

-- withdrawal with nothing to withdraw: recorded, with a notice
SELECT consent.withdraw(999, 'user.name', 'analytics') > 0 AS recorded;

-- bad input: clear errors, nothing half-written
SELECT count(*) AS events_before FROM consent.ledger \gset
SELECT try($$SELECT consent.grant(NULL::bigint, 'user.name', 'analytics')$$);
SELECT try($$SELECT consent.grant(''::text, 'user.name', 'analytics')$$);
SELECT try($$SELECT consent.grant(1, 'user.nothing', 'analytics')$$);
SELECT try($$SELECT consent.grant(1, 'user.name', 'nothing')$$);
SELECT try($$SELECT consent.grant(1, 'user.name', NULL)$$);
SELECT try($$SELECT consent.grant(1, '', 'analytics')$$);
SELECT try($$SELECT consent.grant(1, 'user.name''; DELETE FROM consent.ledger; --', 'analytics')$$);
SELECT try($$SELECT consent.grant(1, 'user.name', 'analytics', valid_until => now() - interval '1 second')$$);
SELECT try($$SELECT consent.withdraw(1, 'user.nothing', 'analytics')$$);
SELECT try($$SELECT consent.granted(1, 'user.nothing', 'analytics')$$);
SELECT try($$SELECT consent.granted(1, 'user.name', 'nothing')$$);
SELECT consent.granted(NULL::bigint, 'user.name', 'analytics') AS null_subject;
SELECT count(*) - :events_before AS half_written FROM consent.ledger;

-- the derived state agrees with the ledger
SELECT count(*) AS disagreements FROM (
    SELECT DISTINCT ON (subject, category, purpose) subject, category, purpose, id, action
    FROM consent.ledger ORDER BY subject, category, purpose, recorded_at DESC, id DESC) l
FULL JOIN consent.subject_state s USING (subject, category, purpose)
WHERE s.event_id IS DISTINCT FROM l.id OR s.action IS DISTINCT FROM l.action;

-- the ledger is append-only, for everyone
SELECT try($$UPDATE consent.ledger SET action = 'grant'$$);
SELECT try($$DELETE FROM consent.ledger$$);
SELECT try($$TRUNCATE consent.ledger$$);

-- history: auditors and superusers only
SELECT subject, category, purpose, action FROM consent.history(200);
CREATE ROLE lg_app;
CREATE ROLE lg_auditor IN ROLE consent_auditor;
SELECT consent.allow_recording('lg_app');
SET ROLE lg_app;
SELECT try($$SELECT * FROM consent.history(200)$$);
SELECT try($$SELECT * FROM consent.ledger$$);
SELECT try($$SELECT * FROM consent.subject_state$$);
-- recorded_by is the acting role and cannot be forged
SELECT consent.grant(500, 'user.name', 'analytics') > 0;
SELECT try($$INSERT INTO consent.ledger (subject, category, purpose, action, recorded_by) VALUES ('1', 'user', 'analytics', 'grant', 'postgres')$$);
SELECT try($$SELECT consent._record('1', 'user', 'analytics', 'grant', NULL, NULL, NULL)$$);
RESET ROLE;
SELECT recorded_by FROM consent.ledger WHERE subject = '500';
SET ROLE lg_auditor;
SELECT count(*) > 0 AS auditor_reads FROM consent.history(500);
SELECT try($$SELECT consent.grant(501, 'user.name', 'analytics')$$);
RESET ROLE;
DROP ROLE lg_auditor;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA consent FROM lg_app;
DROP ROLE lg_app;

-- recording writes ledger and derived state together or not at all
BEGIN READ ONLY;
SELECT try($$SELECT consent.grant(20901, 'user.name', 'analytics')$$);
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT consent.grant(20902, 'user.name', 'analytics') > 0 AS granted;
ROLLBACK TO s;
SELECT consent.grant(20903, 'user.name', 'analytics') > 0 AS granted;
COMMIT;
SELECT subject, (SELECT count(*) FROM consent.ledger l WHERE l.subject = s.subject) AS events,
       (SELECT count(*) FROM consent.subject_state d WHERE d.subject = s.subject) AS states
  FROM (VALUES ('20901'), ('20902'), ('20903')) AS s(subject) ORDER BY subject;
SELECT consent.granted(20902, 'user.name', 'analytics') AS rolled_back, consent.granted(20903, 'user.name', 'analytics') AS kept;
-- functions of the caller's schemas named like those recording uses do not run
CREATE ROLE lg_shadow;
CREATE SCHEMA lg_shadow AUTHORIZATION lg_shadow;
SELECT consent.allow_recording('lg_shadow');
SET ROLE lg_shadow;
CREATE FUNCTION lg_shadow.starts_with(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION lg_shadow.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS $$ SELECT timestamptz '2000-01-01' $$;
CREATE FUNCTION lg_shadow.texteq(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
SET search_path = lg_shadow, pg_catalog;
SELECT consent.withdraw(20904, 'user.name', 'analytics') > 0 AS recorded;
SELECT consent.grant(20904, 'user.name', 'analytics') > 0 AS recorded;
RESET search_path;
RESET ROLE;
SELECT action, recorded_at > now() - interval '1 hour' AS recorded_now, recorded_by
  FROM consent.ledger WHERE subject = '20904' ORDER BY id;
SELECT consent.granted(20904, 'user.name', 'analytics') AS granted_after_withdraw;
DROP SCHEMA lg_shadow CASCADE;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA consent FROM lg_shadow;
DROP ROLE lg_shadow;
