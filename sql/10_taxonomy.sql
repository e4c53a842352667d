-- Taxonomy: shipped categories and tagged types, define_category, purposes.
SELECT key, parent, type, base_type, special, default_mask, dpv FROM consent.categories ORDER BY key;
SELECT key, parent, basis, necessary FROM consent.purposes ORDER BY key;

-- every tagged type is a domain over its base type
SELECT c.key, t.typtype, t.typbasetype::regtype
FROM consent.categories c JOIN pg_type t ON t.oid = c.type ORDER BY c.key;

-- tagged columns behave as their base types
CREATE TABLE tx_people (
    id bigint PRIMARY KEY,
    email consent.email UNIQUE,
    name consent.name NOT NULL CHECK (length(name) > 1),
    born consent.birthdate,
    ip consent.ip_address,
    purchases consent.purchase_history
);
\d tx_people
INSERT INTO tx_people VALUES (1, 'ada@example.com', 'Ada Lovelace', '1815-12-10', '192.0.2.7', '[{"sku": 1}]');
CREATE INDEX ON tx_people USING hash (email);
CREATE INDEX ON tx_people USING gin (purchases);
CREATE INDEX ON tx_people (lower(name));
SELECT try($$INSERT INTO tx_people VALUES (2, 'ada@example.com', 'Someone', NULL, NULL, NULL)$$);
SELECT try($$INSERT INTO tx_people VALUES (3, 'x@example.com', 'X', NULL, NULL, NULL)$$);
SELECT try($$INSERT INTO tx_people VALUES (4, 'y@example.com', 'Yo', 'not a date', NULL, NULL)$$);
-- operators and functions of the base type apply (superuser: not masked)
SELECT upper(email), name || '!', extract(year FROM born), ip << '192.0.2.0/24'::inet, purchases @> '[{"sku": 1}]'
FROM tx_people;
-- the column type is the tag
SELECT attname, atttypid::regtype FROM pg_attribute WHERE attrelid = 'tx_people'::regclass AND attnum > 0 ORDER BY attnum;

-- define_category
SELECT consent.define_category('user.contact.messenger', 'text', 'messenger', 'partial(1,1)', false, 'Messenger handle');
SELECT key, parent, type, base_type, special, default_mask, label, shipped FROM consent.categories
WHERE key = 'user.contact.messenger';
SELECT consent.define_category('user.biometric.face', 'bytea', 'myschema_face', 'null', true);
-- bad input: each with its SQLSTATE, nothing half-written
SELECT try($$SELECT consent.define_category('user.contact.messenger', 'text', 'messenger2')$$);
SELECT try($$SELECT consent.define_category('User.Bad', 'text', 'bad1')$$);
SELECT try($$SELECT consent.define_category('', 'text', 'bad2')$$);
SELECT try($$SELECT consent.define_category('user..x', 'text', 'bad3')$$);
SELECT try($$SELECT consent.define_category('user.x; DROP TABLE tx_people', 'text', 'bad4')$$);
SELECT try($$SELECT consent.define_category(NULL, 'text', 'bad5')$$);
SELECT try($$SELECT consent.define_category('nowhere.child', 'text', 'bad6')$$);
SELECT try($$SELECT consent.define_category('user.biometric.iris', 'bytea', 'iris', 'null', false)$$);
SELECT try($$SELECT consent.define_category('user.contact.fax', 'date', 'fax', 'email')$$);
SELECT try($$SELECT consent.define_category('user.contact.fax', 'text', 'fax', 'no_such_mask')$$);
SELECT try($$SELECT consent.define_category('user.contact.fax', 'consent.email', 'fax')$$);
SELECT try($$SELECT consent.define_category('user.contact.fax', 'text', 'email')$$);
SELECT try($$SELECT consent.define_category('user.contact.fax', 'text', 'Bad Name')$$);
SELECT try($$SELECT consent.define_category('user.contact.fax', 'text', NULL)$$);
SELECT count(*) AS half_written FROM consent.categories WHERE key LIKE 'user.contact.fax%' OR key LIKE 'user.x%';
SELECT count(*) AS stray_types FROM pg_type WHERE typname IN ('fax', 'bad1', 'bad6', 'iris');

-- purposes
SELECT consent.define_purpose('research', 'legitimate_interest', '{user.demographic}', 'Statistical research');
SELECT consent.define_purpose('research.survey');
SELECT key, parent, basis, necessary, label FROM consent.purposes WHERE key LIKE 'research%' ORDER BY key;
SELECT try($$SELECT consent.define_purpose('research')$$);
SELECT try($$SELECT consent.define_purpose('nowhere.child')$$);
SELECT try($$SELECT consent.define_purpose('x', 'because')$$);
SELECT try($$SELECT consent.define_purpose('x', 'consent', '{user.name}')$$);
SELECT try($$SELECT consent.define_purpose('x', 'contract', '{user.nothing}')$$);
SELECT try($$SELECT consent.define_purpose('X-1')$$);
SELECT try($$SELECT consent.define_purpose(NULL)$$);
SELECT count(*) AS half_written FROM consent.purposes WHERE key IN ('x', 'X-1');

-- roles and purposes
CREATE ROLE tx_app;
SELECT consent.allow_purpose('tx_app', 'marketing');
SELECT consent.allow_purpose('tx_app', 'marketing');
SELECT role, purpose FROM consent.purpose_roles WHERE role = 'tx_app'::regrole;
SELECT try($$SELECT consent.allow_purpose('tx_app', 'nope')$$);
SELECT try($$SELECT consent.allow_purpose('no_such_role', 'marketing')$$);
SELECT consent.current_purpose();
SET ROLE tx_app;
-- allowed for marketing and its children
SET consent.purpose = 'marketing.communications.email';
SELECT consent.current_purpose();
SELECT try($$SET consent.purpose = 'personalize'$$);
SELECT try($$SET consent.purpose = 'no.such.purpose'$$);
SELECT consent.current_purpose();
-- ordinary roles cannot change the catalog
SELECT try($$SELECT consent.allow_purpose('tx_app', 'personalize')$$);
SELECT try($$SELECT consent.define_category('user.y', 'text', 'y_type')$$);
SELECT try($$INSERT INTO consent.purpose_roles VALUES ('tx_app', 'personalize')$$);
SELECT try($$SELECT * FROM consent.ledger$$);
RESET consent.purpose;
RESET ROLE;
SELECT consent.revoke_purpose('tx_app', 'marketing');
SELECT consent.revoke_purpose('tx_app', 'marketing');
SELECT try($$SELECT consent.revoke_purpose('tx_app', 'nope')$$);
-- SET LOCAL scopes the purpose to one transaction (PgBouncer transaction pooling)
BEGIN;
SET LOCAL consent.purpose = 'personalize';
SELECT consent.current_purpose();
COMMIT;
SELECT consent.current_purpose();
DROP ROLE tx_app;
