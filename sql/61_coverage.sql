-- DBA audits, part 2: consent.coverage (what is tagged, how it is masked, what
-- is wrong with its protection) and consent.processing_records (GDPR Art. 30).

-- a table without problems
CREATE TABLE cv_ok (id bigint PRIMARY KEY, email consent.email, name consent.name);
SELECT consent.protect('cv_ok', 'id');
SELECT consent.set_mask('cv_ok', 'name', 'redact');
-- not protected: its tagged cells are always masked
CREATE TABLE cv_unprotected (id int, phone consent.phone);
-- a special category with a revealing mask (and one with the default null mask)
CREATE TABLE cv_special (id bigint PRIMARY KEY, fp consent.fingerprint, dna consent.dna);
SELECT consent.protect('cv_special', 'id');
SELECT consent.set_mask('cv_special', 'fp', 'hash');
-- subject column nullable and not indexed
CREATE TABLE cv_loose (customer_id bigint, email consent.email);
SELECT consent.protect('cv_loose', 'customer_id');
-- subject column renamed after protect()
CREATE TABLE cv_renamed (id bigint PRIMARY KEY, email consent.email);
SELECT consent.protect('cv_renamed', 'id');
ALTER TABLE cv_renamed RENAME COLUMN id TO customer_id;
-- row-level security disabled after protect(): without the library, reading would reveal
CREATE TABLE cv_norls (id bigint PRIMARY KEY, email consent.email);
SELECT consent.protect('cv_norls', 'id');
ALTER TABLE cv_norls DISABLE ROW LEVEL SECURITY;
-- row-level security that was enabled before protect() is not forced: the owner bypasses it
CREATE TABLE cv_noforce (id bigint PRIMARY KEY, email consent.email);
ALTER TABLE cv_noforce ENABLE ROW LEVEL SECURITY;
CREATE POLICY cv_own_rows ON cv_noforce USING (true);
SELECT consent.protect('cv_noforce', 'id');
-- the fail-closed policy dropped
CREATE TABLE cv_nopolicy (id bigint PRIMARY KEY, email consent.email);
SELECT consent.protect('cv_nopolicy', 'id');
DROP POLICY consent_library_active ON cv_nopolicy;
-- a partitioned table: partitions inherit the subject column and the column
-- masks, but not the row-level security of their parent
CREATE TABLE cv_part (id bigint NOT NULL, email consent.email, PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE cv_part_1 PARTITION OF cv_part FOR VALUES FROM (0) TO (1000);
SELECT consent.protect('cv_part', 'id');
SELECT consent.set_mask('cv_part', 'email', 'partial(1,0)');
-- a materialized view keeps the tagged type: unprotected
CREATE MATERIALIZED VIEW cv_mv AS SELECT id, email FROM cv_ok;
-- columns of types built from a tagged type: a domain keeps its category's
-- mask, arrays and composites are NULL when masked
CREATE DOMAIN cv_email AS consent.email;
CREATE TYPE cv_contact AS (email consent.email, phone text);
CREATE TABLE cv_derived (id bigint PRIMARY KEY, e cv_email, es consent.email[], c cv_contact);
SELECT consent.protect('cv_derived', 'id');

SELECT schema_name, table_name, column_name, column_type, category, special, mask, subject_column,
       row_policies, problems
  FROM consent.coverage
 WHERE table_name LIKE 'cv\_%'
 ORDER BY table_name, attnum, category;

-- relation is a regclass for joins; every problem has a table
SELECT count(*) FILTER (WHERE relation = 'cv_ok'::regclass) AS cv_ok_rows,
       count(*) FILTER (WHERE cardinality(problems) = 0) AS without_problems
  FROM consent.coverage WHERE table_name LIKE 'cv\_%';

-- fixing a problem removes it
ALTER TABLE cv_norls ENABLE ROW LEVEL SECURITY;
ALTER TABLE cv_norls FORCE ROW LEVEL SECURITY;
CREATE INDEX ON cv_loose (customer_id);
ALTER TABLE cv_loose ALTER COLUMN customer_id SET NOT NULL;
SELECT consent.set_mask('cv_special', 'fp', 'null');
SELECT table_name, column_name, problems FROM consent.coverage
 WHERE table_name IN ('cv_norls', 'cv_loose', 'cv_special') ORDER BY 1, 2;
-- an index whose first column is not the subject column does not count
CREATE TABLE cv_multi (id bigint NOT NULL, k int, email consent.email);
CREATE INDEX ON cv_multi (k, id);
SELECT consent.protect('cv_multi', 'id');
SELECT problems FROM consent.coverage WHERE table_name = 'cv_multi';
CREATE INDEX ON cv_multi (id, k);
SELECT problems FROM consent.coverage WHERE table_name = 'cv_multi';

-- processing records: purposes, their basis, roles (also through an ancestor
-- purpose), what they reach without and with consent
SELECT consent.define_purpose('cv_billing', 'contract', '{user.contact}', 'Billing');
SELECT consent.define_purpose('cv_billing.reminders', 'contract', '{user.contact.email}');
SELECT consent.define_purpose('cv_survey', 'consent', '{}', 'Customer surveys');
CREATE ROLE cv_clerk;
CREATE ROLE cv_mailer;
SELECT consent.allow_purpose('cv_clerk', 'cv_billing'), consent.allow_purpose('cv_mailer', 'cv_billing.reminders'),
       consent.allow_purpose('cv_mailer', 'cv_survey');
SELECT purpose, label, basis, parent, roles, necessary_categories,
       ARRAY(SELECT c FROM unnest(columns_without_consent) c WHERE c LIKE 'public.cv\_%' ORDER BY c) AS without_consent,
       ARRAY(SELECT c FROM unnest(consent_columns) c WHERE c LIKE 'public.cv\_%' ORDER BY c) AS with_consent
  FROM consent.processing_records WHERE purpose LIKE 'cv\_%' ORDER BY purpose;
-- categories reached with consent include special ones (explicit consent only)
SELECT purpose, consent_categories @> '{user.biometric.fingerprint,user.health_and_medical.genetic}' AS special_with_consent,
       'user.contact.email' = ANY (consent_categories) AS email_needs_consent
  FROM consent.processing_records WHERE purpose LIKE 'cv\_%' ORDER BY purpose;
-- every purpose has a record
SELECT (SELECT count(*) FROM consent.processing_records) = (SELECT count(*) FROM consent.purposes) AS one_per_purpose;

-- who may read them: auditors, not PUBLIC
CREATE ROLE cv_plain;
CREATE ROLE cv_dpo IN ROLE consent_auditor;
SET ROLE cv_plain;
SELECT try($$SELECT count(*) FROM consent.coverage$$);
SELECT try($$SELECT count(*) FROM consent.processing_records$$);
SET ROLE cv_dpo;
SELECT count(*) > 0 AS dpo_reads_coverage FROM consent.coverage WHERE table_name LIKE 'cv\_%';
SELECT count(*) > 0 AS dpo_reads_records FROM consent.processing_records;
RESET ROLE;

DROP MATERIALIZED VIEW cv_mv;
DROP TABLE cv_ok, cv_unprotected, cv_special, cv_loose, cv_renamed, cv_norls, cv_noforce, cv_nopolicy, cv_part,
           cv_derived, cv_multi;
DROP TYPE cv_contact;
DROP DOMAIN cv_email;
SELECT consent.revoke_purpose('cv_clerk', 'cv_billing'), consent.revoke_purpose('cv_mailer', 'cv_billing.reminders'),
       consent.revoke_purpose('cv_mailer', 'cv_survey');
DROP ROLE cv_clerk, cv_mailer, cv_plain, cv_dpo;
