-- Load check, setup (run as superuser in a throwaway cluster by
-- test/bench/load_check.sh; psql variables: customers, password).
--
-- Customers whose tagged values can never look like their own masks, so a
-- reader can tell a revealed cell from a masked one by its value alone:
--   email      'c<id>.load@example.com'  mask 'c***@example.com' (contains ***)
--   name       'Vorname<id> Nachname<id>' mask 'V. N.' (initials end in '.')
--   birthdate  never on 1 January        mask 'YYYY-01-01'
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION pg_consent;

CREATE ROLE load_app LOGIN PASSWORD :'password';      -- the application: reads
CREATE ROLE load_recorder LOGIN PASSWORD :'password'; -- the consent service: grants and withdraws

CREATE TABLE customers (
    id        bigint PRIMARY KEY,
    email     consent.email NOT NULL,
    name      consent.name NOT NULL,
    birthdate consent.birthdate NOT NULL);
INSERT INTO customers
SELECT g, 'c' || g || '.load@example.com', 'Vorname' || g || ' Nachname' || g,
       make_date(1940 + g % 60, 2 + g % 11, 1 + g % 28)
FROM generate_series(1, :customers) g;
SELECT FROM consent.protect('customers', 'id');
GRANT SELECT ON customers TO load_app;
SELECT count(consent.allow_purpose('load_app', p)) FROM unnest(ARRAY['personalize', 'marketing', 'analytics']) p;
SELECT FROM consent.allow_recording('load_recorder');

-- What each read saw: one row per read statement, one flag per tagged cell
-- (true = revealed).  started = statement_timestamp() of the read,
-- finished = clock_timestamp() after its cells were decided.
CREATE TABLE load_reads (
    subject   bigint NOT NULL,
    purpose   text NOT NULL,
    started   timestamptz NOT NULL,
    finished  timestamptz NOT NULL,
    email     boolean NOT NULL,
    name      boolean NOT NULL,
    birthdate boolean NOT NULL);
GRANT INSERT ON load_reads TO load_app;

-- When the recorder had the commit of each change acknowledged: the change
-- was visible to every session from then on.
CREATE TABLE load_changes (event_id bigint PRIMARY KEY, acked_at timestamptz NOT NULL);
GRANT INSERT ON load_changes TO load_recorder;

-- One random change: grant (g = 1) or withdraw (g = 0) category number c for
-- purpose number p.  Categories include ancestors (user.contact, user) and
-- purposes a narrower one (marketing.communications.email, which must never
-- reveal anything to a reader acting under marketing).
CREATE FUNCTION load_change(subject bigint, c int, p int, g int) RETURNS bigint
    LANGUAGE sql SET client_min_messages = warning AS $$
    SELECT CASE WHEN g = 1 THEN consent.grant(subject, cat, pur) ELSE consent.withdraw(subject, cat, pur) END
    FROM (SELECT (ARRAY['user.contact.email', 'user.contact.email', 'user.name', 'user.name',
                        'user.demographic.date_of_birth', 'user.demographic.date_of_birth',
                        'user.contact', 'user'])[c] AS cat,
                 (ARRAY['personalize', 'marketing', 'analytics', 'marketing.communications.email'])[p] AS pur) k
$$;
GRANT EXECUTE ON FUNCTION load_change(bigint, int, int, int) TO load_recorder;

-- Random initial consent (seeded): per subject, purpose and tagged category
-- a grant with probability 0.4; then grants of user (0.05) and withdrawals
-- of user.contact (0.05).  Committed in batches (each event takes an
-- advisory lock until its transaction ends).
SELECT setseed(0.42);
DO $$
DECLARE
    n bigint := (SELECT count(*) FROM customers);
    s bigint;
    pur text;
    cat text;
BEGIN
    FOR s IN 1 .. n LOOP
        FOREACH pur IN ARRAY ARRAY['personalize', 'marketing', 'analytics'] LOOP
            FOREACH cat IN ARRAY ARRAY['user.contact.email', 'user.name', 'user.demographic.date_of_birth'] LOOP
                IF random() < 0.4 THEN
                    PERFORM consent.grant(s, cat, pur);
                END IF;
            END LOOP;
            IF random() < 0.05 THEN
                PERFORM consent.grant(s, 'user', pur);
            END IF;
            IF random() < 0.05 THEN
                PERFORM consent.withdraw(s, 'user.contact', pur);
            END IF;
        END LOOP;
        IF s % 50 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END
$$;

-- Every event up to here was committed before the load started.
CREATE TABLE load_meta AS
SELECT coalesce(max(id), 0) AS initial_last_event, count(*) AS initial_events, clock_timestamp() AS setup_done
FROM consent.ledger;
ANALYZE;
