-- pg_consent demo, part 1 (run by test/harness/demo.sh as the superuser):
-- a shop with 2,000 customers whose personal data sits in consent-tagged
-- columns, an application role, and the consent each customer gave.
--
-- Re-runnable: it drops and recreates what it made (demo.sh runs it in a
-- fresh throwaway cluster anyway).  Everything is deterministic: values and
-- consent are derived from md5 hashes of the customer id, so every run
-- prints the same.
\set ON_ERROR_STOP 1
\set QUIET on
SET client_min_messages = warning;
SET TimeZone = 'Europe/Berlin';
SET DateStyle = 'ISO, YMD';
\pset footer off

\echo 'pg_consent demo: a shop with 2,000 customers, the consent they gave, and what'
\echo 'one query returns under each purpose.  Everything below is server output.'
\echo

CREATE EXTENSION IF NOT EXISTS pg_consent;

-- A deterministic pseudo-random number >= 0 for a key.
CREATE FUNCTION pg_temp.h(key text) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS $$ SELECT ('x' || substr(md5(key), 1, 12))::bit(48)::bigint $$;

-- The ASCII mailbox form of a name: 'Jürgen' -> 'juergen', 'Ødegård' -> 'odegard'.
CREATE FUNCTION pg_temp.mailbox(name text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(
             translate(replace(replace(replace(replace(lower(name), 'ä', 'ae'), 'ö', 'oe'), 'ü', 'ue'), 'ß', 'ss'),
                       'àáâãåçèéêëìíîïñòóôõøùúûýÿłşıšćčžğ',
                       'aaaaaceeeeiiiinooooouuuyylsiscczg'),
             '[^a-z0-9]', '', 'g')
$$;

DROP SCHEMA IF EXISTS shop CASCADE;
DROP SCHEMA IF EXISTS demo CASCADE;
CREATE SCHEMA shop;
CREATE SCHEMA demo;  -- helpers of this demo, not part of the shop

-- The shop's customers.  Each personal attribute has the consent-tagged
-- type of its data category; id and customer_since are ordinary columns.
CREATE TABLE shop.customers (
    id             bigint PRIMARY KEY,
    name           consent.name NOT NULL,            -- user.name
    email          consent.email NOT NULL,           -- user.contact.email
    birthdate      consent.birthdate NOT NULL,       -- user.demographic.date_of_birth
    address        consent.address NOT NULL,         -- user.contact.address
    fingerprint    consent.fingerprint NOT NULL,     -- user.biometric.fingerprint (special)
    dna            consent.dna NOT NULL,             -- user.health_and_medical.genetic (special)
    search_history consent.search_history NOT NULL,  -- user.behavior.search_history
    customer_since date NOT NULL
);

-- 2,000 customers.  Customers 1-5 get the first names of the lists, the
-- others a hash-chosen combination.  Nobody is born on 1 January, so that
-- the counts below can tell a real birth date from a masked one (the year
-- mask shows 1 January of the birth year).
WITH firsts(a) AS (SELECT ARRAY['Jürgen', 'Zoë', 'Ayşe', 'Łukasz', 'Søren', 'Amélie', 'Björn', 'Chloé', 'José',
                                'Anna', 'Maximilian', 'Sophie', 'Jonas', 'Emma', 'Lukas', 'Mia', 'Felix', 'Hannah',
                                'Paul', 'Leonie', 'Noah', 'Marie', 'Elias', 'Lea', 'Ben', 'Clara', 'Finn', 'Greta',
                                'Mehmet', 'Olga', 'Dmitri', 'Ana', 'Kenji', 'Priya', 'Nikolaos', 'Siobhán', 'Renée',
                                'Matthias', 'Fatma', 'Karin']),
     lasts(a) AS (SELECT ARRAY['Müller', 'Ødegård', 'Yılmaz', 'Wójcik', 'Schröder', 'Lefèvre', 'Weiß', 'Schmidt',
                               'Schneider', 'Fischer', 'Weber', 'Meyer', 'Wagner', 'Becker', 'Schulz', 'Hoffmann',
                               'Koch', 'Richter', 'Klein', 'Wolf', 'Neumann', 'Schwarz', 'Zimmermann', 'Braun',
                               'Krüger', 'Hartmann', 'Lange', 'Werner', 'Krause', 'Köhler', 'Kowalski', 'Rossi',
                               'Papadopoulos', 'Novák', 'Dubois', 'Jansen', 'García Márquez', 'Tanaka', 'Andersson',
                               'Nguyen', 'Özdemir']),
     domains(a) AS (SELECT ARRAY['web.de', 'gmx.de', 'gmail.com', 't-online.de', 'posteo.de', 'outlook.com',
                                 'mailbox.org', 'icloud.com', 'gmx.at', 'bluewin.ch', 'yahoo.fr', 'proton.me']),
     streets(a) AS (SELECT ARRAY['Hauptstraße', 'Bahnhofstraße', 'Schillerstraße', 'Goethestraße', 'Lindenallee',
                                 'Gartenweg', 'Am Mühlbach', 'Kirchplatz', 'Rosenstraße', 'Friedrichstraße',
                                 'Schloßallee', 'Karl-Liebknecht-Straße', 'Bergstraße', 'Ringstraße', 'Waldweg',
                                 'Weinbergstraße']),
     cities(a) AS (SELECT ARRAY['10115 Berlin', '80331 München', '50667 Köln', '20095 Hamburg',
                                '60311 Frankfurt am Main', '70173 Stuttgart', '04109 Leipzig', '01067 Dresden',
                                '90403 Nürnberg', '28195 Bremen', '40213 Düsseldorf', '30159 Hannover', '1010 Wien',
                                '8001 Zürich', '24103 Kiel', '79098 Freiburg im Breisgau']),
     searches(a) AS (SELECT ARRAY['wanderschuhe damen', 'flug berlin lissabon', 'rezept käsespätzle',
                                  'e-bike test', 'kita anmeldung', 'zahnarzt notdienst', 'steuererklärung frist',
                                  'hotel ostsee', 'ferienwohnung allgäu', 'laptop rucksack', 'gebrauchtwagen golf',
                                  'yoga für anfänger', 'kinderwagen gebraucht', 'vegane rezepte',
                                  'champions league ergebnisse', 'bluthochdruck symptome']),
     people AS (
        SELECT id,
               f.a[CASE WHEN id <= 5 THEN id ELSE 1 + pg_temp.h('first:' || id) % cardinality(f.a) END] AS first,
               l.a[CASE WHEN id <= 5 THEN id ELSE 1 + pg_temp.h('last:' || id) % cardinality(l.a) END] AS last,
               make_date(1941 + (pg_temp.h('born:' || id) % 62)::int, 1, 1)
                   + (1 + pg_temp.h('day:' || id) % 364)::int AS born,
               pg_temp.h('misc:' || id) AS r,
               pg_temp.h('search:' || id) AS rq
        FROM generate_series(1, 2000) AS id, firsts f, lasts l)
INSERT INTO shop.customers
SELECT p.id,
       p.first || ' ' || p.last,
       CASE p.r % 4
           WHEN 0 THEN pg_temp.mailbox(p.first) || '.' || pg_temp.mailbox(p.last)
           WHEN 1 THEN pg_temp.mailbox(p.first) || pg_temp.mailbox(p.last) || to_char(p.born, 'YY')
           WHEN 2 THEN left(pg_temp.mailbox(p.first), 1) || '.' || pg_temp.mailbox(p.last)
           ELSE pg_temp.mailbox(p.first) || '_' || (p.r % 1000)::text
       END || '@' || d.a[1 + (p.r / 4) % cardinality(d.a)],
       p.born,
       s.a[1 + (p.r / 64) % cardinality(s.a)] || ' ' || (1 + (p.r / 1024) % 120)::text || ', '
           || c.a[1 + (p.r / 200000) % cardinality(c.a)],
       decode(substr(md5('fingerprint:' || p.id), 1, 12), 'hex'),
       decode(substr(md5('dna:' || p.id), 1, 12), 'hex'),
       q.a[1 + p.rq % 16] || CASE WHEN p.rq % 3 = 0 THEN '' ELSE ' | ' || q.a[1 + (p.rq % 16 + 1 + (p.rq / 16) % 15) % 16] END,
       date '2015-01-01' + (pg_temp.h('since:' || p.id) % 1800)::int
FROM people p, domains d, streets s, cities c, searches q
ORDER BY p.id;

-- Whose data each row holds: masking is decided per customer.  This also
-- installs the fail-closed row policy (a backend without the library
-- cannot read the table).
SELECT consent.protect('shop.customers', 'id') \g /dev/null

-- The shop's application: reads customers, acts under two purposes.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_app') THEN
        CREATE ROLE shop_app LOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA shop, demo TO shop_app;
GRANT SELECT ON shop.customers TO shop_app;
GRANT UPDATE (name) ON shop.customers TO shop_app;
SELECT consent.allow_purpose('shop_app', 'personalize'), consent.allow_purpose('shop_app', 'marketing') \g /dev/null

-- Consent.  Purpose personalize: the shares of the 2019 survey (Pegasystems,
-- 2,000+ adults in Germany, /work/shared/seed/customer-data-survey-2019.de.txt):
-- who would share an attribute for more personalized service.  Each
-- attribute is drawn independently: customers are ranked by a hash of
-- (attribute, id) and the first share * 2,000 of them grant it, so the
-- shares are exact and the same on every run.
--
-- Purpose marketing: half of those rates, granted by the first half of the
-- same ranking (so everyone who agreed to marketing also agreed to
-- personalization).  The survey has no figure for marketing; it reports that
-- customers share data in exchange for better service and doubt the benefit
-- even then.  Marketing gives them nothing in return, so we assume that
-- fewer, half as many, agree, and that they are among those who agreed to
-- personalization.
CREATE TABLE demo.survey (
    position int PRIMARY KEY,
    column_name name NOT NULL,
    category text NOT NULL,
    survey_percent numeric NOT NULL,      -- share for personalize (2019 survey)
    marketing_percent numeric NOT NULL    -- our assumption: half of it
);
INSERT INTO demo.survey VALUES
    (1, 'email', 'user.contact.email', 57, 28.5),
    (2, 'name', 'user.name', 41, 20.5),
    (3, 'birthdate', 'user.demographic.date_of_birth', 36, 18),
    (4, 'address', 'user.contact.address', 35, 17.5),
    (5, 'fingerprint', 'user.biometric.fingerprint', 4, 2),
    (6, 'dna', 'user.health_and_medical.genetic', 2, 1),
    (7, 'search_history', 'user.behavior.search_history', 3, 1.5);
GRANT SELECT ON demo.survey TO shop_app;

WITH ranked AS (
    SELECT c.id, s.category, s.survey_percent, s.marketing_percent,
           row_number() OVER (PARTITION BY s.category ORDER BY md5(s.category || ':' || c.id)) AS rank
    FROM shop.customers c, demo.survey s),
events AS (
    SELECT consent.grant(r.id, r.category, p.purpose, source => 'shop sign-up form',
                         evidence => jsonb_build_object('form', 'signup-2019', 'checkbox', r.category || '/' || p.purpose))
    FROM ranked r,
         LATERAL (VALUES ('personalize', r.survey_percent), ('marketing', r.marketing_percent)) AS p(purpose, percent)
    WHERE r.rank <= round(p.percent * 2000 / 100)
    ORDER BY r.id, r.category, p.purpose)
SELECT count(*) AS "consent.grant() calls" FROM events;

\echo
\echo 'Customers whose consent covers each category, by purpose (consent.granted()):'
SELECT s.category,
       count(*) FILTER (WHERE consent.granted(c.id, s.category, 'personalize')) AS personalize,
       count(*) FILTER (WHERE consent.granted(c.id, s.category, 'marketing')) AS marketing
FROM demo.survey s, shop.customers c
GROUP BY s.position, s.category
ORDER BY s.position;

-- Counts, per tagged column, the cells the session sees unmasked.  A cell
-- counts as revealed when it is not what its column's mask produces:
--   email    not of the form x***@domain       (mask email)
--   name     not initials such as 'J. M.'      (mask initials)
--   birthdate not 1 January                    (mask year; nobody is born then)
--   address  not '[redacted]'                  (mask redact)
--   the others not NULL                        (mask null; no value is NULL)
-- A view: the acting role's masking applies inside it, whoever owns it.
CREATE VIEW demo.revealed_cells AS
SELECT count(*) AS customers,
       count(*) FILTER (WHERE position('***@' IN email) = 0) AS email,
       count(*) FILTER (WHERE name !~ '^\S\.( \S\.)*$') AS name,
       count(*) FILTER (WHERE to_char(birthdate, 'MM-DD') <> '01-01') AS birthdate,
       count(*) FILTER (WHERE address <> '[redacted]') AS address,
       count(fingerprint) AS fingerprint,
       count(dna) AS dna,
       count(search_history) AS search_history
FROM shop.customers;
GRANT SELECT ON demo.revealed_cells TO shop_app;
