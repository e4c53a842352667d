-- pg_consent install script, part 72: one data subject's data: the access
-- report (GDPR Art. 15) and erasure (Art. 17) (src/erase.cpp,
-- docs/audit-subjects.md).

-- Everything the protected tables hold about one subject (every tagged
-- value, raw, with the decision of each purpose) and its consent history.
-- Superusers and members of consent_auditor only: the values are read
-- without masking.  Dates are written in ISO form and bytea in hex,
-- whatever the session's settings.
CREATE FUNCTION consent.subject_report(subject text) RETURNS jsonb
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp SET datestyle = 'ISO, YMD' SET bytea_output = 'hex'
    AS 'MODULE_PATHNAME', 'consent_subject_report';
CREATE FUNCTION consent.subject_report(subject bigint) RETURNS jsonb
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp SET datestyle = 'ISO, YMD' SET bytea_output = 'hex'
    AS 'MODULE_PATHNAME', 'consent_subject_report';
CREATE FUNCTION consent.subject_report(subject uuid) RETURNS jsonb
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp SET datestyle = 'ISO, YMD' SET bytea_output = 'hex'
    AS 'MODULE_PATHNAME', 'consent_subject_report';
REVOKE ALL ON FUNCTION consent.subject_report(text), consent.subject_report(bigint), consent.subject_report(uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consent.subject_report(text), consent.subject_report(bigint),
                          consent.subject_report(uuid) TO consent_auditor;
COMMENT ON FUNCTION consent.subject_report(text) IS 'what the protected tables hold about one data subject, and its consent history (GDPR Art. 15)';

-- Nulls every tagged cell of the subject in all protected tables and
-- pseudonymizes its ledger events (keeping category, purpose, action and
-- times), then records an 'erase' event; one transaction.  Superuser only.
CREATE FUNCTION consent.erase_subject(subject text) RETURNS jsonb
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'consent_erase_subject';
CREATE FUNCTION consent.erase_subject(subject bigint) RETURNS jsonb
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'consent_erase_subject';
CREATE FUNCTION consent.erase_subject(subject uuid) RETURNS jsonb
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'consent_erase_subject';
REVOKE ALL ON FUNCTION consent.erase_subject(text), consent.erase_subject(bigint), consent.erase_subject(uuid)
    FROM PUBLIC;
COMMENT ON FUNCTION consent.erase_subject(text) IS 'nulls the subject''s tagged cells and pseudonymizes its ledger events (GDPR Art. 17)';
