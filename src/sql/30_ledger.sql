-- pg_consent install script, part 30: the consent ledger.

-- Blocks UPDATE, DELETE and TRUNCATE of the ledger (append-only) except
-- inside the erasure routine.
CREATE FUNCTION consent._ledger_append_only() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'consent_ledger_append_only';
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON consent.ledger
    FOR EACH ROW EXECUTE FUNCTION consent._ledger_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON consent.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION consent._ledger_append_only();

-- Registers a subject whose consent changed in this transaction: its cached
-- decisions are dropped here at once and in every backend at commit.
CREATE FUNCTION consent._subject_changed(subject text) RETURNS void
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'consent_subject_changed';
REVOKE ALL ON FUNCTION consent._subject_changed(text) FROM PUBLIC;

-- Every change of the derived state (by the ledger functions, the erasure
-- routine or logical replication's apply worker) drops the subject from the
-- consent caches: here at once, in other backends at commit.
CREATE FUNCTION consent._subject_state_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'consent_subject_state_changed';
CREATE TRIGGER subject_state_changed AFTER INSERT OR UPDATE OR DELETE ON consent.subject_state
    FOR EACH ROW EXECUTE FUNCTION consent._subject_state_changed();
CREATE TRIGGER subject_state_truncated AFTER TRUNCATE ON consent.subject_state
    FOR EACH STATEMENT EXECUTE FUNCTION consent._subject_state_changed();
ALTER TABLE consent.subject_state ENABLE ALWAYS TRIGGER subject_state_changed;
ALTER TABLE consent.subject_state ENABLE ALWAYS TRIGGER subject_state_truncated;

-- Appends one event; every ledger-writing function goes through here.
CREATE FUNCTION consent._record(subject text, category text, purpose text, action text,
                                valid_until timestamptz, source text, evidence jsonb)
    RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    event_id bigint;
    at timestamptz := clock_timestamp();
BEGIN
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = '22004';
    END IF;
    IF subject = '' THEN
        RAISE EXCEPTION 'subject must not be empty' USING ERRCODE = '22023';
    END IF;
    IF starts_with(subject, 'erased:') THEN
        RAISE EXCEPTION 'subject "%" is reserved for erased subjects', subject USING ERRCODE = '22023',
            DETAIL = 'consent.erase_subject() names erased subjects erased:<pseudonym>.';
    END IF;
    PERFORM consent._check_key('category', category);
    PERFORM consent._check_key('purpose', purpose);
    IF NOT EXISTS (SELECT FROM consent.categories c WHERE c.key = _record.category) THEN
        RAISE EXCEPTION 'unknown category "%"', category USING ERRCODE = '22023',
            HINT = 'See consent.categories for the defined categories.';
    END IF;
    IF NOT EXISTS (SELECT FROM consent.purposes p WHERE p.key = _record.purpose) THEN
        RAISE EXCEPTION 'unknown purpose "%"', purpose USING ERRCODE = '22023',
            HINT = 'See consent.purposes for the defined purposes.';
    END IF;
    -- One writer per (subject, category, purpose) at a time, by a row lock on
    -- its derived state (a placeholder row, never committed as such, when the
    -- pair is new): the event time is taken after the lock, so the ledger
    -- order (recorded_at, id) of a pair follows commit order and the derived
    -- state always holds its latest event.  Row locks, unlike advisory locks,
    -- do not fill the lock table when a transaction records many events.
    INSERT INTO consent.subject_state (subject, category, purpose, event_id, action, recorded_at)
        VALUES (subject, category, purpose, 0, 'none', '-infinity')
        ON CONFLICT ON CONSTRAINT subject_state_pkey DO NOTHING;
    PERFORM FROM consent.subject_state s
        WHERE s.subject = subject AND s.category = category AND s.purpose = purpose FOR UPDATE;
    at := clock_timestamp();
    IF valid_until IS NOT NULL AND valid_until <= at THEN
        RAISE EXCEPTION 'valid_until must be in the future' USING ERRCODE = '22023',
            DETAIL = format('valid_until is %s.', valid_until);
    END IF;
    INSERT INTO consent.ledger (subject, category, purpose, action, valid_until, recorded_at, recorded_by,
                                source, evidence)
        VALUES (subject, category, purpose, action, valid_until, at, consent._acting_role(), source, evidence)
        RETURNING id INTO event_id;
    UPDATE consent.subject_state s
        SET event_id = event_id, action = action, valid_until = valid_until, recorded_at = at,
            withdrawn_at = CASE WHEN action = 'withdraw' THEN at ELSE s.withdrawn_at END,
            withdrawn_id = CASE WHEN action = 'withdraw' THEN event_id ELSE s.withdrawn_id END
        WHERE s.subject = subject AND s.category = category AND s.purpose = purpose;
    RETURN event_id;
END
$$;
REVOKE ALL ON FUNCTION consent._record(text, text, text, text, timestamptz, text, jsonb) FROM PUBLIC;

-- Records a grant of consent; returns the event id.
CREATE FUNCTION consent.grant(subject text, category text, purpose text, valid_until timestamptz DEFAULT NULL,
                              source text DEFAULT NULL, evidence jsonb DEFAULT NULL)
    RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$ SELECT consent._record(subject, category, purpose, 'grant', valid_until, source, evidence) $$;
CREATE FUNCTION consent.grant(subject bigint, category text, purpose text, valid_until timestamptz DEFAULT NULL,
                              source text DEFAULT NULL, evidence jsonb DEFAULT NULL)
    RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$ SELECT consent._record(subject::text, category, purpose, 'grant', valid_until, source, evidence) $$;
CREATE FUNCTION consent.grant(subject uuid, category text, purpose text, valid_until timestamptz DEFAULT NULL,
                              source text DEFAULT NULL, evidence jsonb DEFAULT NULL)
    RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$ SELECT consent._record(subject::text, category, purpose, 'grant', valid_until, source, evidence) $$;

-- Withdraws consent (masks from now on); returns the event id.  A
-- withdrawal with nothing to withdraw is still recorded, with a notice.
CREATE FUNCTION consent.withdraw(subject text, category text, purpose text)
    RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    IF EXISTS (SELECT FROM consent.categories c WHERE c.key = category)
       AND EXISTS (SELECT FROM consent.purposes p WHERE p.key = purpose) AND subject <> '' AND NOT EXISTS (
        SELECT FROM consent.subject_state s
        WHERE s.subject = withdraw.subject AND s.action = 'grant'
          AND (s.category = withdraw.category OR starts_with(s.category, withdraw.category || '.')
               OR starts_with(withdraw.category, s.category || '.'))
          AND (s.purpose = withdraw.purpose OR starts_with(s.purpose, withdraw.purpose || '.')
               OR starts_with(withdraw.purpose, s.purpose || '.'))) THEN
        RAISE NOTICE 'subject % holds no grant for category "%" and purpose "%"', subject, category, purpose
            USING DETAIL = 'The withdrawal is recorded anyway, as evidence of the refusal.';
    END IF;
    RETURN consent._record(subject, category, purpose, 'withdraw', NULL, NULL, NULL);
END
$$;
CREATE FUNCTION consent.withdraw(subject bigint, category text, purpose text)
    RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$ SELECT consent.withdraw(subject::text, category, purpose) $$;
CREATE FUNCTION consent.withdraw(subject uuid, category text, purpose text)
    RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$ SELECT consent.withdraw(subject::text, category, purpose) $$;

-- Every event about one subject, oldest first (auditors and superusers).
CREATE FUNCTION consent.history(subject text) RETURNS SETOF consent.ledger
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    IF NOT pg_has_role(consent._acting_role(), 'consent_auditor', 'USAGE')
       AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = consent._acting_role()) THEN
        RAISE EXCEPTION 'permission denied to read the consent history' USING ERRCODE = '42501',
            HINT = 'Grant the role consent_auditor.';
    END IF;
    IF subject IS NULL THEN
        RAISE EXCEPTION 'subject must not be null' USING ERRCODE = '22004';
    END IF;
    RETURN QUERY SELECT * FROM consent.ledger l WHERE l.subject = history.subject ORDER BY l.recorded_at, l.id;
END
$$;
CREATE FUNCTION consent.history(subject bigint) RETURNS SETOF consent.ledger
    LANGUAGE sql STABLE AS $$ SELECT * FROM consent.history(subject::text) $$;
CREATE FUNCTION consent.history(subject uuid) RETURNS SETOF consent.ledger
    LANGUAGE sql STABLE AS $$ SELECT * FROM consent.history(subject::text) $$;

-- Whether the subject holds an active grant covering (category, purpose);
-- NULL purpose = the current purpose, at = evaluate at that time.
CREATE FUNCTION consent.granted(subject text, category text, purpose text DEFAULT NULL, at timestamptz DEFAULT NULL)
    RETURNS boolean LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_granted';
CREATE FUNCTION consent.granted(subject bigint, category text, purpose text DEFAULT NULL, at timestamptz DEFAULT NULL)
    RETURNS boolean LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_granted';
CREATE FUNCTION consent.granted(subject uuid, category text, purpose text DEFAULT NULL, at timestamptz DEFAULT NULL)
    RETURNS boolean LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_granted';

-- Lets a role record consent (grant and withdraw).
CREATE FUNCTION consent.allow_recording(role regrole) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    f regprocedure;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22004';
    END IF;
    FOR f IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = 'consent'::regnamespace
                                          AND p.proname IN ('grant', 'withdraw') LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f, role);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION consent.allow_recording(regrole) FROM PUBLIC;

REVOKE ALL ON FUNCTION consent.grant(text, text, text, timestamptz, text, jsonb),
                       consent.grant(bigint, text, text, timestamptz, text, jsonb),
                       consent.grant(uuid, text, text, timestamptz, text, jsonb),
                       consent.withdraw(text, text, text), consent.withdraw(bigint, text, text),
                       consent.withdraw(uuid, text, text) FROM PUBLIC;
