-- consent.drop_category (src/sql/98_release_1_4.sql): removes a category
-- added with define_category, its tagged type and its catalog row, all or
-- nothing; refuses (2BP01) while anything depends on it.  Without it, the
-- domain of a custom category (in schema consent, not a member of the
-- extension) blocks DROP EXTENSION pg_consent.
\set SHOW_CONTEXT never
SELECT consent.define_category('user.dc', 'text', 'dc_account', 'redact', false, 'Accounts');
SELECT consent.define_category('user.dc.iban', 'text', 'dc_iban', 'partial(4,2)', false, 'IBAN');
SELECT consent.define_category('user.dc.club', 'text', 'public.dc_club', 'redact');
CREATE TABLE dc_accounts (id bigint, iban consent.dc_iban, old_ibans consent.dc_iban[], note text);

-- a column uses it: refused, with what depends on it (the full message once)
SELECT consent.drop_category('user.dc.iban');
\set VERBOSITY sqlstate
-- an array column alone is enough
ALTER TABLE dc_accounts DROP COLUMN iban;
SELECT consent.drop_category('user.dc.iban');
-- a domain, a composite type, a function
ALTER TABLE dc_accounts DROP COLUMN old_ibans;
CREATE DOMAIN dc_iban_de AS consent.dc_iban CHECK (VALUE LIKE 'DE%');
SELECT consent.drop_category('user.dc.iban');
DROP DOMAIN dc_iban_de;
CREATE TYPE dc_transfer AS (iban consent.dc_iban, amount numeric);
SELECT consent.drop_category('user.dc.iban');
DROP TYPE dc_transfer;
CREATE FUNCTION dc_country(consent.dc_iban) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT left($1, 2) $$;
SELECT consent.drop_category('user.dc.iban');
DROP FUNCTION dc_country(consent.dc_iban);
-- a child category
SELECT consent.drop_category('user.dc');
-- a purpose that lists it as necessary
SELECT consent.define_purpose('dc_fraud', 'legitimate_interest', '{user.dc.iban}');
SELECT consent.drop_category('user.dc.iban');
DELETE FROM consent.purposes WHERE key = 'dc_fraud';
-- unknown, malformed and NULL keys; shipped categories
SELECT consent.drop_category('user.dc.nothing');
SELECT consent.drop_category('User.DC');
SELECT consent.drop_category(NULL);
SELECT consent.drop_category('user.contact.email');
SELECT consent.drop_category('user');
-- not executable by PUBLIC, like define_category
CREATE ROLE dc_user;
SET ROLE dc_user;
SELECT consent.drop_category('user.dc.iban');
RESET ROLE;
DROP ROLE dc_user;
\set VERBOSITY default
-- nothing was dropped by the refused calls
SELECT key, type FROM consent.categories WHERE key LIKE 'user.dc%' ORDER BY key;

-- nothing depends on it any more: dropped, children first
SELECT consent.drop_category('user.dc.iban');
SELECT consent.drop_category('user.dc.club');
SELECT consent.drop_category('user.dc');
SELECT count(*) AS categories_left FROM consent.categories WHERE key LIKE 'user.dc%';
SELECT count(*) AS types_left FROM pg_type WHERE typname IN ('dc_account', 'dc_iban', 'dc_club', '_dc_iban');
DROP TABLE dc_accounts;

-- DROP EXTENSION, in a database of its own (the regression database is
-- shared by the files that run after this one)
SELECT current_database() AS dc_regress_db \gset
CREATE DATABASE regress_drop_category;
\c regress_drop_category
\set SHOW_CONTEXT never
CREATE EXTENSION pg_consent;
SELECT consent.define_category('user.club', 'text', 'club_card', 'redact');
CREATE TABLE members (id bigint, card consent.club_card);
DROP TABLE members;
-- no table uses the category, yet its domain blocks DROP EXTENSION
BEGIN;
DROP EXTENSION pg_consent;
ROLLBACK;
-- the ledger is append-only evidence: a category it names stays
BEGIN;
SELECT consent.grant(1, 'user.club', 'marketing') > 0 AS granted;
\set VERBOSITY sqlstate
SELECT consent.drop_category('user.club');
\set VERBOSITY default
ROLLBACK;
SELECT consent.drop_category('user.club');
DROP EXTENSION pg_consent;
SELECT count(*) AS types_left FROM pg_type WHERE typname = 'club_card';

-- CASCADE drops the domains of custom categories in schema consent and every
-- column declared with a tagged type (shipped or custom, arrays too), with
-- their data; domains in other schemas stay, as plain domains
CREATE EXTENSION pg_consent;
SELECT consent.define_category('user.club', 'text', 'club_card', 'redact');
SELECT consent.define_category('user.club.level', 'text', 'public.club_level', 'redact');
CREATE TABLE members (id bigint, card consent.club_card, cards consent.club_card[], email consent.email,
                      level club_level, note text);
INSERT INTO members VALUES (1, 'C-1', '{C-0}', 'ann@example.com', 'gold', 'n');
BEGIN;
DROP EXTENSION pg_consent CASCADE;
SELECT * FROM members;
SELECT to_regtype('club_level') AS level_type;
ROLLBACK;
DROP TABLE members;
SELECT consent.drop_category('user.club.level');
SELECT consent.drop_category('user.club');
DROP EXTENSION pg_consent;
\c :dc_regress_db
DROP DATABASE regress_drop_category;
