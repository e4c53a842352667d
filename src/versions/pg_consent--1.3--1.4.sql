-- pg_consent 1.3 -> 1.4

\echo Use "ALTER EXTENSION pg_consent UPDATE TO '1.4'" to load this file. \quit

-- Removes a category added with consent.define_category(): its tagged type
-- (the domain) and its row in consent.categories, all or nothing.  Refuses
-- (2BP01) while anything depends on it: child categories, purposes that
-- list it as necessary, consent events (the ledger is append-only
-- evidence), and columns, domains, composite types or functions that use
-- its type; it never drops them.  Shipped categories stay (0A000).
CREATE FUNCTION consent.drop_category(key text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    cat consent.categories;
    dependent text;
    type_name text;
    users text;
BEGIN
    PERFORM consent._check_key('category', key);
    SELECT * INTO cat FROM consent.categories c WHERE c.key = drop_category.key FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown category "%"', key USING ERRCODE = '22023';
    END IF;
    IF cat.shipped THEN
        RAISE EXCEPTION 'category "%" is shipped with pg_consent and cannot be dropped', key USING ERRCODE = '0A000',
            DETAIL = 'Only categories added with consent.define_category() can be dropped.';
    END IF;
    SELECT c.key INTO dependent FROM consent.categories c WHERE c.parent = cat.key ORDER BY c.key LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot drop category "%" because other objects depend on it', key USING ERRCODE = '2BP01',
            DETAIL = format('Category "%s" is a child of it.', dependent),
            HINT = 'Drop its child categories first.';
    END IF;
    SELECT p.key INTO dependent FROM consent.purposes p WHERE cat.key = ANY (p.necessary) ORDER BY p.key LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot drop category "%" because other objects depend on it', key USING ERRCODE = '2BP01',
            DETAIL = format('Purpose "%s" lists it among its necessary categories.', dependent);
    END IF;
    IF EXISTS (SELECT FROM consent.ledger l WHERE l.category = cat.key)
       OR EXISTS (SELECT FROM consent.subject_state s WHERE s.category = cat.key) THEN
        RAISE EXCEPTION 'cannot drop category "%" because other objects depend on it', key USING ERRCODE = '2BP01',
            DETAIL = 'The consent ledger holds consent events for it.',
            HINT = 'The ledger is append-only evidence and is never rewritten, so a category it names stays. '
                   'DROP EXTENSION pg_consent CASCADE drops it together with the whole ledger.';
    END IF;
    SELECT format('%I.%I', n.nspname, t.typname) INTO type_name
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = cat.type;
    IF type_name IS NOT NULL THEN
        BEGIN
            EXECUTE format('DROP DOMAIN %s RESTRICT', type_name);
        EXCEPTION WHEN dependent_objects_still_exist THEN
            GET STACKED DIAGNOSTICS users = PG_EXCEPTION_DETAIL;
            RAISE EXCEPTION 'cannot drop category "%" because other objects depend on it', key
                USING ERRCODE = '2BP01', DETAIL = users,
                      HINT = format('Drop those objects or change them to another type than %s first; '
                                    'consent.drop_category() never drops data.', type_name);
        END;
    END IF;
    DELETE FROM consent.categories c WHERE c.key = cat.key;
END
$$;
REVOKE ALL ON FUNCTION consent.drop_category(text) FROM PUBLIC;

-- Bulk consent: consent.record_many(events regclass) records every row of a
-- table or view as a grant or withdrawal (migrations from a consent-management
-- platform), with the validation, evidence columns and errors of
-- consent.grant and consent.withdraw.  record_many is not SECURITY DEFINER:
-- it reads the relation with the caller's privileges, copying it in one
-- scan into a batch table that consent._record_many_batch() creates for it;
-- consent._record_many() then checks and records the batch.  The batch
-- table is a temporary table owned by the extension's owner, into which the
-- caller may only insert: the SECURITY DEFINER functions never read a
-- relation of the caller's.  A batch is held in that table, not in memory.

-- Creates this session's (empty) batch table, pg_temp.consent_record_many,
-- dropped at commit and by consent._record_many(), and lets writer insert
-- into it.  Callable by the roles given consent.allow_recording().
CREATE FUNCTION consent._record_many_batch(writer regrole) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    batch regclass := to_regclass('pg_temp.consent_record_many');
BEGIN
    IF writer IS NULL THEN
        RAISE EXCEPTION 'writer must not be null' USING ERRCODE = '22004';
    END IF;
    IF batch IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = batch AND pg_get_userbyid(c.relowner) = current_user) THEN
            RAISE EXCEPTION 'the temporary table consent_record_many is reserved for consent.record_many()'
                USING ERRCODE = '42P07';
        END IF;
        DROP TABLE pg_temp.consent_record_many;
    END IF;
    CREATE TEMP TABLE consent_record_many (n bigint, subject text, category text, purpose text, action text,
                                           valid_until timestamptz, source text, evidence jsonb) ON COMMIT DROP;
    EXECUTE format('GRANT INSERT ON pg_temp.consent_record_many TO %s', writer);
END
$$;
REVOKE ALL ON FUNCTION consent._record_many_batch(regrole) FROM PUBLIC;

-- Records the batch, pg_temp.consent_record_many: event n of its rows
-- numbered 1 to N (relation only names their source in error details), and
-- drops it; returns the number of events (0 when there is no batch).
-- Every event is checked before anything is written: the first bad one
-- fails the call with the error grant or withdraw would raise, its number in
-- the detail.  Then one statement sets the derived state of every (subject,
-- category, purpose) pair of the batch to its latest event, locking the
-- pairs in one order, and one statement appends the events (ids increasing
-- with n, one event time).  Callable by the roles given
-- consent.allow_recording(): it records what they put in the batch, as
-- grant and withdraw do.
--
-- The ledger's foreign keys lock the category and purpose of every event
-- FOR KEY SHARE and look them up one event at a time; here every row of
-- consent.categories and consent.purposes is locked FOR KEY SHARE once
-- (none can be deleted until the transaction ends), only those keys count
-- as known, and session_replication_role = replica skips the per-event
-- checks for this function's own statements (the triggers of
-- consent.subject_state are ENABLE ALWAYS and fire; the ledger has no
-- other INSERT trigger).
CREATE FUNCTION consent._record_many(relation text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET session_replication_role = replica AS $$
#variable_conflict use_variable
DECLARE
    batch regclass := to_regclass('pg_temp.consent_record_many');
    n bigint;
    first bigint;
    last bigint;
    pairs bigint;
    written bigint;
    bad record;
    at timestamptz := clock_timestamp();
    actor name := consent._acting_role();
    known_categories text[];
    known_purposes text[];
    ids bigint[];
    row_detail text;
    key_syntax constant text := '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$';
    key_rule constant text := 'Keys are dot-separated lowercase identifiers of at most 200 characters, '
                              'e.g. user.contact.email.';
BEGIN
    IF relation IS NULL THEN
        RAISE EXCEPTION 'relation must not be null' USING ERRCODE = '22004';
    END IF;
    IF batch IS NULL THEN
        RETURN 0;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = batch AND pg_get_userbyid(c.relowner) = current_user) THEN
        RAISE EXCEPTION 'the temporary table consent_record_many is reserved for consent.record_many()'
            USING ERRCODE = '42P07';
    END IF;
    SELECT count(*), min(e.n), max(e.n) INTO n, first, last FROM pg_temp.consent_record_many e;
    IF n = 0 THEN
        DROP TABLE pg_temp.consent_record_many;
        RETURN 0;
    END IF;
    IF first IS DISTINCT FROM 1 OR last IS DISTINCT FROM n THEN
        RAISE EXCEPTION 'the events of a batch must be numbered from 1 to %', n USING ERRCODE = '22023';
    END IF;

    -- 1. The categories and purposes, locked (above).
    SELECT coalesce(array_agg(c.key), '{}') INTO known_categories
      FROM (SELECT c.key FROM consent.categories c FOR KEY SHARE) c;
    SELECT coalesce(array_agg(p.key), '{}') INTO known_purposes
      FROM (SELECT p.key FROM consent.purposes p FOR KEY SHARE) p;

    -- 2. Every event is checked in one pass (no function call per event);
    -- the first bad one is then told apart in the order of the checks of
    -- grant and withdraw.  valid_until is compared with the event time.
    SELECT e.n, e.subject, e.category, e.purpose, e.action, e.valid_until,
           c.key IS NOT NULL AS known_category, p.key IS NOT NULL AS known_purpose
      INTO bad
      FROM pg_temp.consent_record_many e
      LEFT JOIN unnest(known_categories) c(key) ON c.key = e.category
      LEFT JOIN unnest(known_purposes) p(key) ON p.key = e.purpose
     WHERE e.subject IS NULL OR e.subject = '' OR starts_with(e.subject, 'erased:')
        OR c.key IS NULL OR p.key IS NULL
        OR e.action IS NULL OR e.action NOT IN ('grant', 'withdraw')
        OR e.valid_until IS NOT NULL AND (e.action <> 'grant' OR e.valid_until <= at)
     ORDER BY e.n
     LIMIT 1;
    IF FOUND THEN
        row_detail := format('Row %s of %s: subject %s, category %s, purpose %s.', bad.n, relation,
                             coalesce('"' || bad.subject || '"', 'NULL'), coalesce('"' || bad.category || '"', 'NULL'),
                             coalesce('"' || bad.purpose || '"', 'NULL'));
        IF bad.subject IS NULL THEN
            RAISE EXCEPTION 'subject must not be null' USING ERRCODE = '22004', DETAIL = row_detail;
        ELSIF bad.subject = '' THEN
            RAISE EXCEPTION 'subject must not be empty' USING ERRCODE = '22023', DETAIL = row_detail;
        ELSIF starts_with(bad.subject, 'erased:') THEN
            RAISE EXCEPTION 'subject "%" is reserved for erased subjects', bad.subject USING ERRCODE = '22023',
                DETAIL = row_detail || ' consent.erase_subject() names erased subjects erased:<pseudonym>.';
        ELSIF bad.category IS NULL THEN
            RAISE EXCEPTION 'category key must not be null' USING ERRCODE = '22004', DETAIL = row_detail;
        ELSIF bad.category COLLATE "C" !~ key_syntax OR octet_length(bad.category) > 200 THEN
            RAISE EXCEPTION 'invalid category key "%"', bad.category USING ERRCODE = '22023',
                DETAIL = row_detail || ' ' || key_rule;
        ELSIF bad.purpose IS NULL THEN
            RAISE EXCEPTION 'purpose key must not be null' USING ERRCODE = '22004', DETAIL = row_detail;
        ELSIF bad.purpose COLLATE "C" !~ key_syntax OR octet_length(bad.purpose) > 200 THEN
            RAISE EXCEPTION 'invalid purpose key "%"', bad.purpose USING ERRCODE = '22023',
                DETAIL = row_detail || ' ' || key_rule;
        ELSIF NOT bad.known_category THEN
            RAISE EXCEPTION 'unknown category "%"', bad.category USING ERRCODE = '22023', DETAIL = row_detail,
                HINT = 'See consent.categories for the defined categories.';
        ELSIF NOT bad.known_purpose THEN
            RAISE EXCEPTION 'unknown purpose "%"', bad.purpose USING ERRCODE = '22023', DETAIL = row_detail,
                HINT = 'See consent.purposes for the defined purposes.';
        ELSIF bad.action IS NULL THEN
            RAISE EXCEPTION 'action must not be null' USING ERRCODE = '22004', DETAIL = row_detail;
        ELSIF bad.action NOT IN ('grant', 'withdraw') THEN
            RAISE EXCEPTION 'unknown action "%"', bad.action USING ERRCODE = '22023', DETAIL = row_detail,
                HINT = 'The action of a consent event is grant or withdraw.';
        ELSIF bad.action <> 'grant' THEN
            RAISE EXCEPTION 'valid_until must be null for a withdrawal' USING ERRCODE = '22023',
                DETAIL = row_detail, HINT = 'valid_until is when a grant expires.';
        ELSE
            RAISE EXCEPTION 'valid_until must be in the future' USING ERRCODE = '22023',
                DETAIL = row_detail || format(' valid_until is %s.', bad.valid_until);
        END IF;
    END IF;

    -- 3. The event ids, increasing with n (ids[n] is the id of event n).
    ids := ARRAY(SELECT nextval('consent.ledger_id_seq') FROM generate_series(1, n));

    -- 4. The derived state of every pair: its latest event of the batch, and
    -- its latest withdrawal when the batch has one.  One writer per pair at
    -- a time, as in grant: this statement locks every pair of the batch in
    -- one order (subject, category, purpose in "C" collation: concurrent
    -- batches do not deadlock), inserting the state of a new pair and
    -- updating that of an existing one, each written once.  The event time
    -- was taken before the locks, so a pair is written only when its state
    -- is older than that time; a pair whose state is not (a concurrent
    -- writer committed an event of it since) stays locked and unwritten, and
    -- below the time and the ids are taken again, after the locks, and every
    -- pair written with them.  Either way the ledger order of a pair follows
    -- commit order, as with grant.  The keys come from the catalog rows
    -- locked above (type consent.key: no domain check per row).
    WITH latest AS (
        SELECT DISTINCT ON (e.subject COLLATE "C", c.key COLLATE "C", p.key COLLATE "C")
               e.subject, c.key AS category, p.key AS purpose, ids[e.n] AS id, e.action, e.valid_until,
               max(ids[e.n]) FILTER (WHERE e.action = 'withdraw') OVER pair AS withdrawn_id
          FROM pg_temp.consent_record_many e
          JOIN consent.categories c ON c.key = e.category
          JOIN consent.purposes p ON p.key = e.purpose
        WINDOW pair AS (PARTITION BY e.subject COLLATE "C", c.key COLLATE "C", p.key COLLATE "C" ORDER BY e.n DESC
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
         ORDER BY e.subject COLLATE "C", c.key COLLATE "C", p.key COLLATE "C", e.n DESC),
    state AS (
        INSERT INTO consent.subject_state AS s (subject, category, purpose, event_id, action, valid_until,
                                                recorded_at, withdrawn_at, withdrawn_id)
        SELECT l.subject, l.category, l.purpose, l.id, l.action, l.valid_until, at,
               CASE WHEN l.withdrawn_id IS NOT NULL THEN at END, l.withdrawn_id
          FROM latest l
            ON CONFLICT ON CONSTRAINT subject_state_pkey DO UPDATE
           SET event_id = excluded.event_id, action = excluded.action, valid_until = excluded.valid_until,
               recorded_at = excluded.recorded_at, withdrawn_at = coalesce(excluded.withdrawn_at, s.withdrawn_at),
               withdrawn_id = coalesce(excluded.withdrawn_id, s.withdrawn_id)
         WHERE s.recorded_at < excluded.recorded_at
        RETURNING 1)
    SELECT (SELECT count(*) FROM latest), (SELECT count(*) FROM state) INTO pairs, written;
    IF written < pairs THEN
        at := clock_timestamp();
        ids := ARRAY(SELECT nextval('consent.ledger_id_seq') FROM generate_series(1, n));
        SELECT e.n, e.subject, e.category, e.purpose, e.valid_until INTO bad
          FROM pg_temp.consent_record_many e WHERE e.valid_until <= at ORDER BY e.n LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'valid_until must be in the future' USING ERRCODE = '22023',
                DETAIL = format('Row %s of %s: subject "%s", category "%s", purpose "%s". valid_until is %s.',
                                bad.n, relation, bad.subject, bad.category, bad.purpose, bad.valid_until);
        END IF;
        UPDATE consent.subject_state s
           SET event_id = l.id, action = l.action, valid_until = l.valid_until, recorded_at = at,
               withdrawn_at = CASE WHEN l.withdrawn_id IS NOT NULL THEN at ELSE s.withdrawn_at END,
               withdrawn_id = coalesce(l.withdrawn_id, s.withdrawn_id)
          FROM (SELECT DISTINCT ON (e.subject, e.category, e.purpose) e.subject, e.category, e.purpose,
                       ids[e.n] AS id, e.action, e.valid_until,
                       max(ids[e.n]) FILTER (WHERE e.action = 'withdraw') OVER pair AS withdrawn_id
                  FROM pg_temp.consent_record_many e
                WINDOW pair AS (PARTITION BY e.subject, e.category, e.purpose ORDER BY e.n DESC
                                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
                 ORDER BY e.subject, e.category, e.purpose, e.n DESC) l
         WHERE s.subject = l.subject AND s.category = l.category AND s.purpose = l.purpose;
    END IF;

    -- 5. The events, appended (the keys again of type consent.key).
    INSERT INTO consent.ledger (id, subject, category, purpose, action, valid_until, recorded_at, recorded_by,
                                source, evidence)
    SELECT ids[e.n], e.subject, c.key, p.key, e.action, e.valid_until, at, actor, e.source, e.evidence
      FROM pg_temp.consent_record_many e
      JOIN consent.categories c ON c.key = e.category
      JOIN consent.purposes p ON p.key = e.purpose;
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written <> n THEN
        RAISE EXCEPTION 'consent ledger insert wrote % of % events', written, n;
    END IF;
    DROP TABLE pg_temp.consent_record_many;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION consent._record_many(text) FROM PUBLIC;

-- Citus: refuses (0A000) what would change this node only while the
-- cluster has other nodes.
CREATE FUNCTION consent._refuse_on_cluster(what text) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'consent_refuse_on_cluster';

-- Records every row of a table or view as a consent event; returns the
-- number of events.  Columns: subject (text, bigint or uuid, stored as
-- grant stores them: integers in decimal, uuids in canonical lowercase
-- form), category, purpose, action ('grant' or 'withdraw'), and optionally
-- valid_until, source, evidence.  Not SECURITY DEFINER: the relation is read
-- with the caller's privileges and row security, in one scan (no parallel
-- workers: the rows are numbered in the order of the scan).
CREATE FUNCTION consent.record_many(events regclass) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET max_parallel_workers_per_gather = 0 AS $$
#variable_conflict use_variable
DECLARE
    kind "char";
    col text;
    typ oid;
    base oid;
    domain_base oid;
    target text;
    items text[] := '{}';
BEGIN
    -- its events would stay on this node of a Citus cluster
    PERFORM consent._refuse_on_cluster('consent.record_many()');
    IF events IS NULL THEN
        RAISE EXCEPTION 'events must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = events;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', events::oid USING ERRCODE = '42P01';
    END IF;
    IF kind NOT IN ('r', 'p', 'v', 'm', 'f') THEN
        RAISE EXCEPTION '% is not a table or view', events USING ERRCODE = '42809';
    END IF;
    FOREACH col IN ARRAY ARRAY['subject', 'category', 'purpose', 'action', 'valid_until', 'source', 'evidence'] LOOP
        target := CASE col WHEN 'valid_until' THEN 'timestamptz' WHEN 'evidence' THEN 'jsonb' ELSE 'text' END;
        SELECT a.atttypid INTO typ FROM pg_attribute a
         WHERE a.attrelid = events AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            IF col IN ('subject', 'category', 'purpose', 'action') THEN
                RAISE EXCEPTION 'column "%" of relation % does not exist', col, events USING ERRCODE = '42703',
                    HINT = 'consent.record_many() reads the columns subject, category, purpose and action, '
                           'and valid_until, source and evidence when they exist.';
            END IF;
            items := items || format('NULL::%s', target);
            CONTINUE;
        END IF;
        base := typ;  -- a domain counts as its base type
        LOOP
            SELECT t.typbasetype INTO domain_base FROM pg_type t WHERE t.oid = base AND t.typtype = 'd';
            EXIT WHEN NOT FOUND;
            base := domain_base;
        END LOOP;
        IF NOT base = ANY (CASE col
                WHEN 'subject' THEN '{text,varchar,bpchar,int8,int4,int2,uuid}'::regtype[]::oid[]
                WHEN 'valid_until' THEN '{timestamptz}'::regtype[]::oid[]
                WHEN 'evidence' THEN '{jsonb}'::regtype[]::oid[]
                ELSE '{text,varchar,bpchar}'::regtype[]::oid[] END) THEN
            RAISE EXCEPTION 'column "%" of relation % is of type %', col, events, format_type(typ, NULL)
                USING ERRCODE = '42804',
                HINT = format('Column %s must be of type %s.', col, CASE col
                    WHEN 'subject' THEN 'text, bigint or uuid (or varchar, char, integer, smallint)'
                    WHEN 'valid_until' THEN 'timestamptz'
                    WHEN 'evidence' THEN 'jsonb'
                    ELSE 'text (or varchar, char)' END);
        END IF;
        -- the text output of bigint and uuid is how grant() stores them
        items := items || format('%I::%s', col, target);
    END LOOP;
    -- one scan, numbering the rows in its order, into the batch table
    PERFORM consent._record_many_batch((SELECT r.oid::regrole FROM pg_roles r WHERE r.rolname = current_user));
    EXECUTE format('INSERT INTO pg_temp.consent_record_many (n, subject, category, purpose, action, valid_until, '
                   'source, evidence) SELECT row_number() OVER (), %s FROM %s',
                   array_to_string(items, ', '), events);
    RETURN consent._record_many(events::text);
END
$$;
REVOKE ALL ON FUNCTION consent.record_many(regclass) FROM PUBLIC;

-- consent.allow_recording() also grants record_many and the functions it
-- calls (roles given it before 1.4 need it again for record_many).
CREATE OR REPLACE FUNCTION consent.allow_recording(role regrole) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    f regprocedure;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22004';
    END IF;
    FOR f IN SELECT p.oid FROM pg_proc p
              WHERE p.pronamespace = 'consent'::regnamespace
                AND p.proname IN ('grant', 'withdraw', 'record_many', '_record_many', '_record_many_batch') LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f, role);
    END LOOP;
END
$$;

-- The server's shared consent state (consent.shared_size): whether it is
-- ready, the database whose state it holds, the subjects it holds, the
-- bytes they take and the bytes reserved, how often it was built and how
-- long the last build took.
CREATE FUNCTION consent.shared_state(OUT status text, OUT database name, OUT subjects bigint, OUT bytes bigint,
                                     OUT capacity bigint, OUT builds bigint, OUT build_ms bigint)
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'consent_shared_state';

-- Parallel workers mask in their leader's context (its decision snapshot,
-- its transaction's consent changes, its audit): the mask functions are
-- parallel safe.
ALTER FUNCTION consent._mask(anyelement, "any", oid, int2) PARALLEL SAFE;
ALTER FUNCTION consent._mask_strict(anyelement, "any", oid, int2) PARALLEL SAFE;
-- So is the row filter of require_consent: row-level security quals run in
-- the workers' scans.
ALTER FUNCTION consent._require_check(anyelement, text) PARALLEL SAFE;

-- Citus: a tagged column of a Citus table leaves the node that plans the
-- query as consent._mask_remote(column, claim), the claim being that
-- session's {acting role, purpose, as_of, strict}; the node that reads the
-- shard's rows replaces it by consent._mask_claimed(...), which decides in
-- the claimed context after checking that the connected user could act in
-- it itself.  Only the masking rewrite puts in _mask_claimed (as _mask).
CREATE FUNCTION consent._mask_remote(value anyelement, claim text[]) RETURNS anyelement
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_mask_remote';
CREATE FUNCTION consent._mask_claimed(value anyelement, subject "any", relid oid, attno int2, claim text[])
    RETURNS anyelement LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_mask_claimed';
-- Citus: runs a call of ours that another node forwarded (consent.grant(),
-- consent.protect(), ...), with the caller's privileges, without
-- forwarding it again.
CREATE FUNCTION consent._replay(call text, VARIADIC args text[]) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'consent_replay';

-- Citus: the catalog functions take effect on every node of a cluster.
-- Each is the function of the same name and arguments moved to the schema
-- consent_local (the work on this node), behind one in consent that calls
-- it and forwards the call to the cluster's other nodes (a call about a
-- relation only when it is a Citus table); without Citus it only calls it.
CREATE SCHEMA consent_local;
REVOKE ALL ON SCHEMA consent_local FROM PUBLIC;
ALTER FUNCTION consent.define_category(text, regtype, text, text, boolean, text) SET SCHEMA consent_local;
CREATE FUNCTION consent.define_category(key text, base_type regtype, type_name text,
                                        mask text DEFAULT 'null', special boolean DEFAULT false,
                                        label text DEFAULT NULL)
    RETURNS regtype LANGUAGE c AS 'MODULE_PATHNAME', 'consent_cluster_call';
REVOKE ALL ON FUNCTION consent.define_category(text, regtype, text, text, boolean, text) FROM PUBLIC;
ALTER FUNCTION consent.drop_category(text) SET SCHEMA consent_local;
CREATE FUNCTION consent.drop_category(key text) RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'consent_cluster_call';
REVOKE ALL ON FUNCTION consent.drop_category(text) FROM PUBLIC;
ALTER FUNCTION consent.define_purpose(text, text, text[], text) SET SCHEMA consent_local;
CREATE FUNCTION consent.define_purpose(key text, basis text DEFAULT 'consent',
                                       necessary text[] DEFAULT '{}', label text DEFAULT NULL)
    RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'consent_cluster_call';
REVOKE ALL ON FUNCTION consent.define_purpose(text, text, text[], text) FROM PUBLIC;
ALTER FUNCTION consent.allow_purpose(regrole, text) SET SCHEMA consent_local;
CREATE FUNCTION consent.allow_purpose(role regrole, purpose text) RETURNS void
    LANGUAGE c AS 'MODULE_PATHNAME', 'consent_cluster_call';
REVOKE ALL ON FUNCTION consent.allow_purpose(regrole, text) FROM PUBLIC;
ALTER FUNCTION consent.revoke_purpose(regrole, text) SET SCHEMA consent_local;
CREATE FUNCTION consent.revoke_purpose(role regrole, purpose text) RETURNS void
    LANGUAGE c AS 'MODULE_PATHNAME', 'consent_cluster_call';
REVOKE ALL ON FUNCTION consent.revoke_purpose(regrole, text) FROM PUBLIC;
ALTER FUNCTION consent.protect(regclass, name) SET SCHEMA consent_local;
CREATE FUNCTION consent.protect(relation regclass, subject_column name) RETURNS void
    LANGUAGE c AS 'MODULE_PATHNAME', 'consent_cluster_call';
REVOKE ALL ON FUNCTION consent.protect(regclass, name) FROM PUBLIC;
ALTER FUNCTION consent.set_mask(regclass, name, text) SET SCHEMA consent_local;
CREATE FUNCTION consent.set_mask(relation regclass, column_name name, mask text) RETURNS void
    LANGUAGE c AS 'MODULE_PATHNAME', 'consent_cluster_call';
REVOKE ALL ON FUNCTION consent.set_mask(regclass, name, text) FROM PUBLIC;
ALTER FUNCTION consent.require_consent(regclass, text) SET SCHEMA consent_local;
CREATE FUNCTION consent.require_consent(relation regclass, purpose text) RETURNS void
    LANGUAGE c AS 'MODULE_PATHNAME', 'consent_cluster_call';
REVOKE ALL ON FUNCTION consent.require_consent(regclass, text) FROM PUBLIC;
ALTER FUNCTION consent.allow_recording(regrole) SET SCHEMA consent_local;
CREATE FUNCTION consent.allow_recording(role regrole) RETURNS void
    LANGUAGE c AS 'MODULE_PATHNAME', 'consent_cluster_call';
REVOKE ALL ON FUNCTION consent.allow_recording(regrole) FROM PUBLIC;

-- Citus: consent.disclosures of every node of the cluster (each node counts
-- the cells it reads, under the distributed table and the role the query
-- claims); on a server without Citus, this server's.
CREATE FUNCTION consent.cluster_disclosures(OUT node text, OUT role name, OUT purpose text, OUT relation text,
                                            OUT column_name text, OUT category text, OUT revealed bigint,
                                            OUT masked bigint)
    RETURNS SETOF record LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RETURN QUERY SELECT 'local'::text, d.role, d.purpose, d.relation, d.column_name, d.category, d.revealed,
                            d.masked FROM consent.disclosures d;
        RETURN;
    END IF;
    FOR r IN EXECUTE $run$SELECT nodeid, success, result FROM run_command_on_all_nodes($cmd$
        SELECT coalesce(json_agg(d), '[]') FROM (SELECT role, purpose, relation, column_name, category, revealed,
                                                        masked FROM consent.disclosures) d$cmd$)$run$ LOOP
        IF NOT r.success THEN
            RAISE EXCEPTION 'cannot read consent.disclosures on node %: %', r.nodeid, r.result
                USING ERRCODE = '08006';
        END IF;
        RETURN QUERY SELECT (SELECT n.nodename || ':' || n.nodeport FROM pg_dist_node n WHERE n.nodeid = r.nodeid),
                            x.role, x.purpose, x.relation, x.column_name, x.category, x.revealed, x.masked
                       FROM json_to_recordset(r.result::json) AS x(role name, purpose text, relation text,
                                                                   column_name text, category text, revealed bigint,
                                                                   masked bigint);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION consent.cluster_disclosures() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consent.cluster_disclosures() TO consent_auditor;

-- Citus: copies the consent catalog and the ledger of this node to a node
-- added to the cluster later (Citus created the extension there; its
-- ledger must be empty), in the caller's distributed transaction; returns
-- the number of ledger events copied.
CREATE FUNCTION consent._send_to_node(node_name text, node_port integer, command text) RETURNS void
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'consent_send_to_node';
REVOKE ALL ON FUNCTION consent._send_to_node(text, integer, text) FROM PUBLIC;
CREATE FUNCTION consent.citus_sync_node(node_name text, node_port integer) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    r record;
    last_id bigint := 0;
    chunk json;
    copied bigint := 0;
    n bigint;
BEGIN
    IF node_name IS NULL OR node_port IS NULL THEN
        RAISE EXCEPTION 'node_name and node_port must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'consent.citus_sync_node needs Citus' USING ERRCODE = '55000';
    END IF;
    PERFORM consent._send_to_node(node_name, node_port, $c$
        DO $do$ BEGIN
            IF EXISTS (SELECT FROM consent.ledger) THEN
                RAISE EXCEPTION 'the node already holds consent events' USING ERRCODE = '55000',
                    HINT = 'consent.citus_sync_node() copies to a node added to the cluster, before any event is recorded there.';
            END IF;
        END $do$ $c$);
    -- categories and purposes of this cluster (not shipped), parents first
    FOR r IN WITH RECURSIVE t AS (
                 SELECT cat AS c, 0 AS depth FROM consent.categories cat WHERE cat.parent IS NULL
                 UNION ALL SELECT cat, t.depth + 1 FROM consent.categories cat JOIN t ON cat.parent = (t.c).key)
             SELECT (t.c).*, format_type((t.c).type, NULL) AS type_text, row_to_json(t.c)::text AS js,
                    (SELECT ty.typname FROM pg_type ty WHERE ty.oid = (t.c).type) AS type_name
               FROM t WHERE NOT (t.c).shipped ORDER BY depth, (t.c).key LOOP
        PERFORM consent._send_to_node(node_name, node_port, format($c$
            DO $do$ BEGIN
                IF NOT EXISTS (SELECT FROM consent.categories WHERE key = %L) THEN
                    IF to_regtype(%L) IS NULL THEN
                        PERFORM consent_local.define_category(%L, %L::regtype, %L, %L, %L, %L);
                    ELSE
                        INSERT INTO consent.categories SELECT * FROM json_populate_record(NULL::consent.categories, %L);
                    END IF;
                END IF;
            END $do$ $c$, r.key, r.type_text, r.key, format_type(r.base_type, NULL), r.type_name, r.default_mask,
            r.special, r.label, r.js));
    END LOOP;
    FOR r IN WITH RECURSIVE t AS (
                 SELECT pur AS p, 0 AS depth FROM consent.purposes pur WHERE pur.parent IS NULL
                 UNION ALL SELECT pur, t.depth + 1 FROM consent.purposes pur JOIN t ON pur.parent = (t.p).key)
             SELECT (t.p).* FROM t WHERE NOT (t.p).shipped ORDER BY depth, (t.p).key LOOP
        PERFORM consent._send_to_node(node_name, node_port, format($c$
            DO $do$ BEGIN
                IF NOT EXISTS (SELECT FROM consent.purposes WHERE key = %L) THEN
                    PERFORM consent_local.define_purpose(%L, %L, %L::text[], %L);
                END IF;
            END $do$ $c$, r.key, r.key, r.basis, r.necessary, r.label));
    END LOOP;
    FOR r IN SELECT role::text AS role, purpose FROM consent.purpose_roles LOOP
        PERFORM consent._send_to_node(node_name, node_port,
            format('SELECT consent_local.allow_purpose(%L::regrole, %L)', r.role, r.purpose));
    END LOOP;
    -- the protection of Citus tables (the node has their shells)
    FOR r IN SELECT p.relation, p.subject_column FROM consent.protected_tables p
              WHERE p.relation IN (SELECT logicalrelid FROM pg_dist_partition) LOOP
        PERFORM consent._send_to_node(node_name, node_port,
            -- (qualified: this function's search_path has no user schema)
            format('SELECT consent_local.protect(%L::regclass, %L)', r.relation::text, r.subject_column));
    END LOOP;
    FOR r IN SELECT m.relation, m.column_name, m.mask FROM consent.column_masks m
              WHERE m.relation IN (SELECT logicalrelid FROM pg_dist_partition) LOOP
        PERFORM consent._send_to_node(node_name, node_port,
            format('SELECT consent_local.set_mask(%L::regclass, %L, %L)', r.relation::text, r.column_name, r.mask));
    END LOOP;
    -- the ledger and its derived state, 10,000 rows a command
    LOOP
        SELECT json_agg(l ORDER BY l.id), count(*), max(l.id) INTO chunk, n, last_id
          FROM (SELECT * FROM consent.ledger WHERE id > last_id ORDER BY id LIMIT 10000) l;
        EXIT WHEN n = 0;
        PERFORM consent._send_to_node(node_name, node_port, format(
            'INSERT INTO consent.ledger OVERRIDING SYSTEM VALUE SELECT * FROM json_populate_recordset(NULL::consent.ledger, %L)',
            chunk));
        copied := copied + n;
    END LOOP;
    PERFORM consent._send_to_node(node_name, node_port,
        format('SELECT setval(pg_get_serial_sequence(''consent.ledger'', ''id''), %s, %L)',
               (SELECT greatest(coalesce(max(id), 0), 1) FROM consent.ledger),
               (SELECT count(*) > 0 FROM consent.ledger)));
    FOR chunk IN SELECT json_agg(s) FROM (SELECT s, (row_number() OVER (ORDER BY subject, category, purpose) - 1) / 10000 AS batch
                                              FROM consent.subject_state s) x GROUP BY batch LOOP
        PERFORM consent._send_to_node(node_name, node_port, format(
            'INSERT INTO consent.subject_state SELECT * FROM json_populate_recordset(NULL::consent.subject_state, %L)',
            chunk));
    END LOOP;
    RETURN copied;
END
$$;
REVOKE ALL ON FUNCTION consent.citus_sync_node(text, integer) FROM PUBLIC;
-- Citus: consent._claim(value, claim) is true; as a qual it carries a
-- query's claim to the nodes reading a Citus table's shards when Citus
-- takes the table's tagged columns out of their claimed expressions (an
-- aggregate over DISTINCT values).
CREATE FUNCTION consent._claim(value anyelement, claim text[]) RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_claim';
-- The audit's count of a scan planned for a role that sees every value
-- (superuser, BYPASSRLS), which reads the plain columns: the planner puts
-- it last among the scan's quals; true, it counts the row's non-NULL
-- tagged cells as revealed.  Refused when called otherwise.
CREATE FUNCTION consent._read_unmasked(relation oid, role oid, columns smallint[], VARIADIC cells "any")
    RETURNS boolean LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_read_unmasked';
