-- pg_consent 1.2 (the upgrade script src/versions/pg_consent--1.1--1.2.sql
-- holds the same statements).

-- Recording consent in C (src/record.cpp): validation in memory and saved
-- plans for the ledger writes, instead of PL/pgSQL and SQL wrappers that
-- were planned again for every call.  Same arguments, results, errors and
-- privileges (EXECUTE, granted by consent.allow_recording); the writes run
-- as the bootstrap superuser with a fixed search_path, so the functions no
-- longer need SECURITY DEFINER.
CREATE OR REPLACE FUNCTION consent._record(subject text, category text, purpose text, action text,
                                           valid_until timestamptz, source text, evidence jsonb)
    RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'consent_record';
CREATE OR REPLACE FUNCTION consent.grant(subject text, category text, purpose text,
                                         valid_until timestamptz DEFAULT NULL, source text DEFAULT NULL,
                                         evidence jsonb DEFAULT NULL)
    RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'consent_grant';
CREATE OR REPLACE FUNCTION consent.grant(subject bigint, category text, purpose text,
                                         valid_until timestamptz DEFAULT NULL, source text DEFAULT NULL,
                                         evidence jsonb DEFAULT NULL)
    RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'consent_grant';
CREATE OR REPLACE FUNCTION consent.grant(subject uuid, category text, purpose text,
                                         valid_until timestamptz DEFAULT NULL, source text DEFAULT NULL,
                                         evidence jsonb DEFAULT NULL)
    RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'consent_grant';
CREATE OR REPLACE FUNCTION consent.withdraw(subject text, category text, purpose text)
    RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'consent_withdraw';
CREATE OR REPLACE FUNCTION consent.withdraw(subject bigint, category text, purpose text)
    RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'consent_withdraw';
CREATE OR REPLACE FUNCTION consent.withdraw(subject uuid, category text, purpose text)
    RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'consent_withdraw';

-- No longer called since 1.1 (the subject_state row trigger invalidates the
-- caches); its C symbol stays for the frozen scripts.
DROP FUNCTION consent._subject_changed(text);
