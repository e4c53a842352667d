-- consent.subject_report (GDPR Art. 15) and consent.erase_subject (Art. 17).

-- try() with the detail and hint of the error
CREATE FUNCTION sr_error(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            hnt = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg || E'\nDETAIL: ' || det || E'\nHINT: ' || hnt;
END
$$;

-- Per (subject, category, purpose) of this test's subjects and of erased
-- subjects: pairs whose subject_state disagrees with the latest ledger event
-- or the latest withdrawal (as the isolation and TAP tests check it).  No
-- row = consistent.
CREATE VIEW sr_state_vs_ledger AS
    WITH latest AS (
        SELECT DISTINCT ON (subject, category, purpose) subject, category, purpose, id, action, valid_until, recorded_at
        FROM consent.ledger WHERE action <> 'erase'
        ORDER BY subject, category, purpose, recorded_at DESC, id DESC),
    latest_withdrawal AS (
        SELECT DISTINCT ON (subject, category, purpose) subject, category, purpose, id, recorded_at
        FROM consent.ledger WHERE action = 'withdraw'
        ORDER BY subject, category, purpose, recorded_at DESC, id DESC)
    SELECT subject, category, purpose, l.action AS ledger_latest, s.action AS subject_state
    FROM latest l
    FULL JOIN consent.subject_state s USING (subject, category, purpose)
    LEFT JOIN latest_withdrawal w USING (subject, category, purpose)
    WHERE (s.event_id IS DISTINCT FROM l.id OR s.action IS DISTINCT FROM l.action
       OR s.valid_until IS DISTINCT FROM l.valid_until OR s.recorded_at IS DISTINCT FROM l.recorded_at
       OR s.withdrawn_id IS DISTINCT FROM w.id OR s.withdrawn_at IS DISTINCT FROM w.recorded_at)
      AND (subject IN ('7201', '7202', 'jane.d', '6f1c2b1e-0000-4000-8000-000000007201') OR subject LIKE 'erased:%');

-- Protected tables with bigint, text and uuid subjects, a partitioned table
-- and an inheritance child with a tagged column of its own.
CREATE TABLE sr_customers (id bigint PRIMARY KEY, email consent.email, name consent.name, born consent.birthdate,
                           ip consent.ip_address, fingerprint consent.fingerprint, note text);
SELECT consent.protect('sr_customers', 'id');
CREATE TABLE sr_orders (order_id int PRIMARY KEY, customer_id bigint, shipping consent.address,
                        history consent.purchase_history);
CREATE INDEX ON sr_orders (customer_id);
SELECT consent.protect('sr_orders', 'customer_id');
CREATE TABLE sr_accounts (login text, phone consent.phone);
SELECT consent.protect('sr_accounts', 'login');
CREATE TABLE sr_devices (owner_id uuid, ip consent.ip_address);
SELECT consent.protect('sr_devices', 'owner_id');
CREATE TABLE sr_events (customer_id int, at date, search consent.search_history) PARTITION BY RANGE (at);
CREATE TABLE sr_events_2025 PARTITION OF sr_events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
SELECT consent.protect('sr_events', 'customer_id');
CREATE TABLE sr_contacts (customer_id bigint, email consent.email);
CREATE TABLE sr_contacts_vip (phone consent.phone) INHERITS (sr_contacts);
SELECT consent.protect('sr_contacts', 'customer_id');

INSERT INTO sr_customers VALUES
    (7201, 'jane@example.com', 'Jane "JD" Doe', '1987-06-05', '192.0.2.17', '\x0102', 'likes tea'),
    (7202, 'max@example.de', 'Max Mustermann', '1990-01-02', NULL, NULL, 'n2');
INSERT INTO sr_orders VALUES (1, 7201, E'Hauptstr. 1\nBerlin', '[{"sku": "A1"}]'), (2, 7201, 'Ringweg 2', NULL),
                             (3, 7202, 'Fjordvei 3', NULL);
-- text subjects are compared as text: the login '7201' is subject 7201
INSERT INTO sr_accounts VALUES ('jane.d', '+49 30 1234567'), ('7201', '+49 30 7654321'), ('07201', '+49 30 1');
INSERT INTO sr_devices VALUES ('6f1c2b1e-0000-4000-8000-000000007201', '2001:db8::1');
INSERT INTO sr_events VALUES (7201, '2025-03-01', 'cheap flights'), (7202, '2025-03-02', 'tents');
INSERT INTO sr_contacts VALUES (7201, 'jane.work@example.com');
INSERT INTO sr_contacts_vip VALUES (7201, 'jane.vip@example.com', '+1-202-555-0143');

SELECT consent.grant(7201, 'user.contact', 'marketing', source => 'web form',
                     evidence => '{"form": "signup", "ip": "192.0.2.17"}') > 0 AS granted;
SELECT consent.grant(7201, 'user.name', 'personalize') > 0 AS granted;
SELECT consent.withdraw(7201, 'user.contact', 'marketing.communications.email') > 0 AS withdrawn;
SELECT consent.grant(7201, 'user.biometric.fingerprint', 'personalize') > 0 AS granted;
SELECT consent.grant(7202, 'user.contact.email', 'marketing') > 0 AS granted;
SELECT consent.grant('jane.d', 'user.contact.phone_number', 'analytics') > 0 AS granted;
SELECT consent.grant('6f1c2b1e-0000-4000-8000-000000007201'::uuid, 'user.device', 'analytics') > 0 AS granted;

-------------------------------------------------------------------------
-- subject_report
-------------------------------------------------------------------------

-- the top-level keys, in jsonb's deterministic order
SELECT jsonb_object_keys(consent.subject_report(7201));
-- every tagged value of subject 7201, raw, in table, row and column order;
-- NULL cells hold nothing and are left out; untagged columns are not shown
SELECT v->>'table' AS "table", v->>'column' AS "column", v->>'category' AS category, v->'row' AS row,
       v->>'value' AS value
FROM consent.subject_report(7201) r, jsonb_array_elements(r->'values') WITH ORDINALITY AS x(v, n) ORDER BY n;
-- values are JSON strings, escaped properly
SELECT v->>'value' = 'Jane "JD" Doe' AS quotes_kept FROM consent.subject_report(7201) r, jsonb_array_elements(r->'values') v
WHERE v->>'column' = 'name';
SELECT v->>'value' = E'Hauptstr. 1\nBerlin' AS newline_kept FROM consent.subject_report(7201) r,
       jsonb_array_elements(r->'values') v WHERE v->>'column' = 'shipping' AND v->>'row' = '1';
-- the decision of every purpose for one value (the shipped purposes shown
-- here): by the legal basis of the purpose, or by the subject's consent
SELECT d.key AS purpose, d.value->'revealed' AS revealed, d.value->>'by' AS by
FROM consent.subject_report(7201) r, jsonb_array_elements(r->'values') v, jsonb_each(v->'decisions') d
WHERE v->>'table' = 'public.sr_customers' AND v->>'column' = 'email'
  AND d.key IN (SELECT key FROM consent.purposes WHERE shipped) ORDER BY d.key;
-- every purpose has a decision for every value, and it agrees with
-- consent.granted for every consent-based one
SELECT bool_and((SELECT count(*) FROM jsonb_object_keys(v->'decisions')) = (SELECT count(*) FROM consent.purposes))
       AS every_purpose
FROM consent.subject_report(7201) r, jsonb_array_elements(r->'values') v;
SELECT count(*) > 100 AS decisions, count(*) FILTER (
           WHERE (d.value->>'revealed')::boolean IS DISTINCT FROM consent.granted(7201, v->>'category', d.key)) AS disagree
FROM consent.subject_report(7201) r, jsonb_array_elements(r->'values') v, jsonb_each(v->'decisions') d
WHERE d.value->>'by' = 'consent';
-- decisions follow consent.as_of: before any event only the legal bases reveal
SET consent.as_of = '2001-01-01 00:00+00';
SELECT d.key AS purpose, d.value->'revealed' AS revealed, d.value->>'by' AS by
FROM consent.subject_report(7201) r, jsonb_array_elements(r->'values') v, jsonb_each(v->'decisions') d
WHERE v->>'table' = 'public.sr_customers' AND v->>'column' = 'email' AND d.value->>'revealed' = 'true'
  AND d.key IN (SELECT key FROM consent.purposes WHERE shipped) ORDER BY d.key;
RESET consent.as_of;
-- special category: only the explicit grant counts
SELECT d.key AS purpose, d.value->'revealed' AS revealed
FROM consent.subject_report(7201) r, jsonb_array_elements(r->'values') v, jsonb_each(v->'decisions') d
WHERE v->>'column' = 'fingerprint' AND d.value->>'revealed' = 'true';
-- the ledger history, oldest first, the same events as consent.history
SELECT e->>'category' AS category, e->>'purpose' AS purpose, e->>'action' AS action, e->>'source' AS source,
       e->'evidence' AS evidence, e->>'recorded_by' = current_user AS recorded_by_me
FROM consent.subject_report(7201) r, jsonb_array_elements(r->'ledger') WITH ORDINALITY AS x(e, n) ORDER BY n;
SELECT array(SELECT (e->>'id')::bigint FROM consent.subject_report(7201) r, jsonb_array_elements(r->'ledger') e)
     = array(SELECT id FROM consent.history(7201)) AS same_as_history;
-- the bigint and text overloads give the same report
SELECT (consent.subject_report(7201) - 'generated_at') = (consent.subject_report('7201') - 'generated_at') AS same;
-- text and uuid subjects
SELECT r->'subject' AS subject, jsonb_path_query_array(r, '$.values[*].value') AS "values",
       jsonb_array_length(r->'ledger') AS events
FROM consent.subject_report('jane.d') r;
SELECT r->'subject' AS subject, jsonb_path_query_array(r, '$.values[*].value') AS "values",
       jsonb_array_length(r->'ledger') AS events
FROM consent.subject_report('6f1c2b1e-0000-4000-8000-000000007201'::uuid) r;
-- an unknown subject: an empty report, with a notice
SELECT consent.subject_report(999999) - 'generated_at' AS report;

-- who may read it: superusers and members of consent_auditor, who see the
-- stored values although they may not read the tables themselves
CREATE ROLE sr_clerk;
CREATE ROLE sr_dpo;
GRANT consent_auditor TO sr_dpo;
SET ROLE sr_dpo;
SELECT try($$SELECT * FROM sr_customers$$);
SELECT v->>'value' AS value FROM consent.subject_report(7201) r, jsonb_array_elements(r->'values') v
WHERE v->>'table' = 'public.sr_customers' AND v->>'column' IN ('email', 'born') ORDER BY 1;
RESET ROLE;
SET ROLE sr_clerk;
SELECT try($$SELECT consent.subject_report(7201)$$);
RESET ROLE;
-- EXECUTE alone is not enough
GRANT EXECUTE ON FUNCTION consent.subject_report(bigint) TO sr_clerk;
SET ROLE sr_clerk;
SELECT sr_error($$SELECT consent.subject_report(7201)$$);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION consent.subject_report(bigint) FROM sr_clerk;
-- nor a SECURITY DEFINER function of a superuser: the acting role must be an auditor
CREATE FUNCTION sr_report_for_anyone(bigint) RETURNS jsonb LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT consent.subject_report($1) $$;
GRANT EXECUTE ON FUNCTION sr_report_for_anyone(bigint) TO sr_clerk;
SET ROLE sr_clerk;
SELECT try($$SELECT sr_report_for_anyone(7201)$$);
RESET ROLE;

-- bad input
SELECT try($$SELECT consent.subject_report(NULL::bigint)$$);
SELECT try($$SELECT consent.subject_report(NULL::text)$$);
SELECT try($$SELECT consent.subject_report(NULL::uuid)$$);
SELECT try($$SELECT consent.subject_report('')$$);

-------------------------------------------------------------------------
-- erase_subject: refused, with nothing changed, when it could not be complete
-------------------------------------------------------------------------

SELECT count(*) AS events_of_7201 FROM consent.ledger WHERE subject = '7201';
CREATE TABLE sr_strict (customer_id bigint, email consent.email NOT NULL);
SELECT consent.protect('sr_strict', 'customer_id');
INSERT INTO sr_strict VALUES (7201, 'strict@example.com');
SELECT sr_error($$SELECT consent.erase_subject(7201)$$);
-- every problem is listed: a NOT NULL column, a column a foreign key
-- references, a subject column that was renamed away, a deferrable trigger
-- (it would run at commit as the erasing superuser), a generated column
CREATE TABLE sr_ref (customer_id bigint, email consent.email UNIQUE);
CREATE TABLE sr_ref_child (email consent.email REFERENCES sr_ref (email));
SELECT consent.protect('sr_ref', 'customer_id');
CREATE TABLE sr_renamed (cid bigint, name consent.name);
SELECT consent.protect('sr_renamed', 'cid');
ALTER TABLE sr_renamed RENAME COLUMN cid TO customer;
CREATE TABLE sr_deferred (customer_id bigint, email consent.email);
CREATE FUNCTION sr_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER sr_at_commit AFTER UPDATE ON sr_deferred DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION sr_noop();
SELECT consent.protect('sr_deferred', 'customer_id');
CREATE TABLE sr_generated (customer_id bigint, email text,
                           email_tag consent.email GENERATED ALWAYS AS (email::consent.email) STORED);
SELECT consent.protect('sr_generated', 'customer_id');
SELECT sr_error($$SELECT consent.erase_subject(7201)$$);
-- nothing changed
SELECT email, name FROM sr_customers WHERE id = 7201;
SELECT count(*) AS events_of_7201 FROM consent.ledger WHERE subject = '7201';
-- the report still works and says which table it could not read
SELECT r->'skipped' AS skipped FROM consent.subject_report(7201) r;
DELETE FROM consent.protected_tables
WHERE relation IN ('sr_strict'::regclass, 'sr_ref'::regclass, 'sr_renamed'::regclass, 'sr_deferred'::regclass,
                   'sr_generated'::regclass);
DROP TABLE sr_strict, sr_ref_child, sr_ref, sr_renamed, sr_deferred, sr_generated;
DROP FUNCTION sr_noop();

-- each table is updated as its owner: row-level security that hides some
-- of the subject's rows from the owner makes the erasure fail, not partial
CREATE ROLE sr_owner;
CREATE TABLE sr_hidden (customer_id bigint, email consent.email);
ALTER TABLE sr_hidden OWNER TO sr_owner;
ALTER TABLE sr_hidden ENABLE ROW LEVEL SECURITY;
ALTER TABLE sr_hidden FORCE ROW LEVEL SECURITY;
CREATE POLICY not_7201 ON sr_hidden USING (customer_id <> 7201);
SELECT consent.protect('sr_hidden', 'customer_id');
INSERT INTO sr_hidden VALUES (7201, 'hidden@example.com');
SELECT sr_error($$SELECT consent.erase_subject(7201)$$);
SELECT email, name FROM sr_customers WHERE id = 7201;
SELECT email FROM sr_hidden;
DELETE FROM consent.protected_tables WHERE relation = 'sr_hidden'::regclass;
DROP TABLE sr_hidden;

-- superuser only
SET ROLE sr_dpo;
SELECT try($$SELECT consent.erase_subject(7201)$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION consent.erase_subject(bigint) TO sr_dpo;
SET ROLE sr_dpo;
SELECT sr_error($$SELECT consent.erase_subject(7201)$$);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION consent.erase_subject(bigint) FROM sr_dpo;

-- bad input
SELECT try($$SELECT consent.erase_subject(NULL::bigint)$$);
SELECT try($$SELECT consent.erase_subject(NULL::text)$$);
SELECT try($$SELECT consent.erase_subject(NULL::uuid)$$);
SELECT try($$SELECT consent.erase_subject('')$$);
-- an unknown subject: nothing erased, no event appended, with a notice
CREATE TEMP TABLE sr_mark AS SELECT max(id) AS id FROM consent.ledger;
SELECT consent.erase_subject(999999);
SELECT count(*) AS new_events FROM consent.ledger WHERE id > (SELECT id FROM sr_mark);

-- a failure while the ledger is being pseudonymized rolls everything back
-- and leaves the ledger append-only
CREATE FUNCTION sr_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('sr.fail', true) = 'on' THEN
        RAISE EXCEPTION 'injected failure';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER zz_sr_fail BEFORE UPDATE ON consent.ledger FOR EACH ROW EXECUTE FUNCTION sr_fail();
SET sr.fail = 'on';
SELECT try($$SELECT consent.erase_subject(7201)$$);
RESET sr.fail;
SELECT email, name FROM sr_customers WHERE id = 7201;
SELECT count(*) AS events_of_7201 FROM consent.ledger WHERE subject = '7201';
SELECT try($$UPDATE consent.ledger SET source = source WHERE subject = '7201'$$);
DROP TRIGGER zz_sr_fail ON consent.ledger;

-------------------------------------------------------------------------
-- erase_subject: erasure
-------------------------------------------------------------------------

-- a table of another owner, whose trigger logs who runs it: the owner, not
-- the erasing superuser
CREATE TABLE sr_owned (customer_id bigint, email consent.email);
CREATE TABLE sr_trigger_log (who name, superuser boolean);
CREATE FUNCTION sr_log_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.sr_trigger_log SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
    RETURN NEW;
END
$$;
CREATE TRIGGER sr_log BEFORE UPDATE ON sr_owned FOR EACH ROW EXECUTE FUNCTION sr_log_user();
ALTER TABLE sr_owned OWNER TO sr_owner;
ALTER TABLE sr_trigger_log OWNER TO sr_owner;
ALTER FUNCTION sr_log_user() OWNER TO sr_owner;
SELECT consent.protect('sr_owned', 'customer_id');
INSERT INTO sr_owned VALUES (7201, 'owned@example.com'), (7202, 'other@example.com');

CREATE ROLE sr_app;
GRANT SELECT ON sr_customers TO sr_app;
SELECT consent.allow_purpose('sr_app', 'marketing');
SET ROLE sr_app;
SET consent.purpose = 'marketing';
SELECT id, email FROM sr_customers ORDER BY id;
RESET consent.purpose;
RESET ROLE;
SELECT consent.granted(7201, 'user.contact.email', 'marketing') AS granted_before;
CREATE TEMP TABLE sr_before AS
    SELECT id, category, purpose, action, valid_until, recorded_at, recorded_by FROM consent.ledger WHERE subject = '7201';

SET consent.pseudonym_key = 'sr-test-key';
CREATE TEMP TABLE sr_erased AS SELECT consent.erase_subject(7201) AS r;
SELECT jsonb_pretty(r - 'erase_event') AS report FROM sr_erased;
-- the pseudonym is the keyed hash (HMAC-SHA256 with consent.pseudonym_key)
-- of 'pg_consent erase:' || subject: the same key the hash mask uses
SELECT r->>'pseudonym' = 'erased:' || encode(consent.mask_value(convert_to('pg_consent erase:7201', 'UTF8'), 'hash'), 'hex')
       AS keyed_hash
FROM sr_erased;

-- every tagged cell of the subject is NULL; untagged data and other
-- subjects are untouched
SELECT * FROM sr_customers ORDER BY id;
SELECT * FROM sr_orders ORDER BY order_id;
SELECT * FROM sr_accounts ORDER BY login;
SELECT * FROM sr_events ORDER BY customer_id;
SELECT tableoid::regclass, * FROM sr_contacts ORDER BY 1;
SELECT * FROM sr_contacts_vip;
SELECT * FROM sr_owned ORDER BY customer_id;
SELECT * FROM sr_trigger_log;
SET ROLE sr_app;
SET consent.purpose = 'marketing';
SELECT id, email FROM sr_customers ORDER BY id;
RESET consent.purpose;
RESET ROLE;

-- the ledger no longer holds the raw subject anywhere, nor the derived state
SELECT count(*) AS raw_subject_in_ledger FROM consent.ledger
WHERE subject = '7201' OR source LIKE '%7201%' OR evidence::text LIKE '%7201%' OR evidence::text LIKE '%192.0.2.17%';
SELECT count(*) AS raw_subject_in_state FROM consent.subject_state WHERE subject = '7201';
-- its events are kept under the pseudonym: category, purpose, action, times
-- and who recorded them; source and evidence are cleared
SELECT count(*) AS events_before,
       count(l.id) FILTER (WHERE l.source IS NULL AND l.evidence IS NULL) AS kept_under_pseudonym
FROM sr_before b LEFT JOIN consent.ledger l
  ON l.id = b.id AND l.category = b.category AND l.purpose = b.purpose AND l.action = b.action
 AND l.valid_until IS NOT DISTINCT FROM b.valid_until AND l.recorded_at = b.recorded_at
 AND l.recorded_by = b.recorded_by AND l.subject = (SELECT r->>'pseudonym' FROM sr_erased);
-- and one erase event records the erasure, without the subject
SELECT l.subject = e.r->>'pseudonym' AS pseudonym, l.category, l.purpose, l.action, l.source, l.evidence,
       l.recorded_by = current_user AS recorded_by_me
FROM consent.ledger l, sr_erased e WHERE l.id = (e.r->>'erase_event')::bigint;
-- subject_state still agrees with the ledger
SELECT * FROM sr_state_vs_ledger;
-- the cached consent of the subject is gone
SELECT consent.granted(7201, 'user.contact.email', 'marketing') AS granted_after;
SELECT count(*) AS history FROM consent.history(7201);
SELECT (consent.subject_report(7201) - 'generated_at') AS report;

-- the ledger is still append-only
SELECT try($$UPDATE consent.ledger SET source = 'x' WHERE id = (SELECT (r->>'erase_event')::bigint FROM sr_erased)$$);
SELECT try($$DELETE FROM consent.ledger WHERE id = (SELECT (r->>'erase_event')::bigint FROM sr_erased)$$);

-- erasing again finds nothing
SELECT consent.erase_subject(7201);

-- the same subject erased again later, with the same key, gets the same
-- pseudonym: the derived state keeps the latest event of each pair
SELECT consent.erase_subject(7202) ? 'pseudonym' AS erased;
SELECT consent.grant(7202, 'user.contact.email', 'marketing') > 0 AS granted_again;
SELECT consent.withdraw(7202, 'user.contact.email', 'marketing') > 0 AS withdrawn;
SELECT r->'tables' AS tables, r->'ledger_events' AS events, r->'subject_state' AS state FROM consent.erase_subject(7202) r;
SELECT count(*) AS raw_subject_left FROM consent.ledger WHERE subject = '7202';
SELECT * FROM sr_state_vs_ledger;
SELECT s.action, s.withdrawn_at IS NOT NULL AS withdrawn
FROM consent.subject_state s
WHERE s.subject = 'erased:' || encode(consent.mask_value(convert_to('pg_consent erase:7202', 'UTF8'), 'hash'), 'hex');

-- without consent.pseudonym_key, a random salt: the pseudonym cannot be
-- recomputed, not even for the same subject
RESET consent.pseudonym_key;
SELECT r->'pseudonym_key' AS key, r->'tables' AS tables, r->'ledger_events' AS events,
       r->>'pseudonym' <> 'erased:' || encode(consent.mask_value(convert_to('pg_consent erase:jane.d', 'UTF8'), 'hash'), 'hex') AS unlinkable
FROM consent.erase_subject('jane.d') r;
SELECT count(*) AS raw_subject_left FROM consent.ledger WHERE subject = 'jane.d';
SELECT * FROM sr_accounts ORDER BY login;
-- uuid subjects
SELECT r->'tables' AS tables, r->'ledger_events' AS events
FROM consent.erase_subject('6f1c2b1e-0000-4000-8000-000000007201'::uuid) r;
SELECT * FROM sr_devices;
SELECT * FROM sr_state_vs_ledger;

DELETE FROM consent.protected_tables
WHERE relation IN ('sr_customers'::regclass, 'sr_orders'::regclass, 'sr_accounts'::regclass, 'sr_devices'::regclass,
                   'sr_events'::regclass, 'sr_contacts'::regclass, 'sr_owned'::regclass);
DROP TABLE sr_customers, sr_orders, sr_accounts, sr_devices, sr_events, sr_contacts_vip, sr_contacts, sr_owned,
           sr_trigger_log;
DROP FUNCTION sr_report_for_anyone(bigint), sr_fail(), sr_error(text), sr_log_user();
DROP VIEW sr_state_vs_ledger;
DROP ROLE sr_clerk, sr_dpo, sr_owner;
SELECT consent.revoke_purpose('sr_app', 'marketing');
DROP ROLE sr_app;
