-- Load check, verdict (run as superuser after the load by
-- test/bench/load_check.sh): no cell was revealed without a covering grant.
--
-- The rule.  A read statement starts at S = statement_timestamp() and has
-- decided its cells by E (clock_timestamp() after them).  pg_consent decides
-- as of the statement start and promises that a change committed before a
-- statement starts is in effect in it.  A change is recorded at R (its
-- ledger recorded_at, taken before its commit) and its commit was
-- acknowledged to the recorder at A (load_changes.acked_at); it became
-- visible to other sessions at some instant in [R, A], we do not know
-- when.  So:
--   - consent.granted(subject, category, purpose, at => S) is the decision
--     the read must have taken, except when a covering change was in flight
--     during the read ([R, A] overlaps [S, E]): then the state just before
--     and the state just after each such change, that is
--     consent.granted(..., at => R - 1 microsecond) and
--     consent.granted(..., at => R), are both legitimate outcomes;
--   - a revealed cell that none of these allow is a violation (a withdrawal
--     that was acknowledged before the read began was ignored, or a grant
--     was invented); a masked cell that none of these allow is an
--     over-masking (a grant acknowledged before the read was ignored).
-- This needs one recorder session (load_check.sh runs exactly one): with a
-- single writer, changes are recorded, committed and acknowledged one after
-- the other, so their [R, A] intervals do not overlap and ledger order is
-- commit order.  Changes whose acknowledgement was not logged (the recorder
-- was stopped in between) count as in flight until the end.
--
-- Also checked: consent.granted() agrees with an independent SQL reading of
-- the ledger (the most recent covering event by (recorded_at, id) decides;
-- the load uses no special categories and no valid_until), so the verdict
-- does not rest on the code it checks.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;

CREATE TEMP TABLE load_events AS
SELECT l.id, l.subject, l.category, l.purpose, l.action, l.recorded_at,
       coalesce(c.acked_at, 'infinity') AS acked_at
FROM consent.ledger l LEFT JOIN load_changes c ON c.event_id = l.id
WHERE l.id > (SELECT initial_last_event FROM load_meta);
CREATE INDEX ON load_events (subject);
ANALYZE load_events;

CREATE TEMP TABLE cells AS
SELECT r.subject, r.purpose, r.started, r.finished, c.category, c.revealed,
       consent.granted(r.subject, c.category, r.purpose, at => r.started) AS granted_at_start,
       false AS control
FROM load_reads r
CROSS JOIN LATERAL (VALUES ('user.contact.email', r.email), ('user.name', r.name),
                           ('user.demographic.date_of_birth', r.birthdate)) c(category, revealed);

-- Controls: copies of up to 100 masked and 100 revealed cells read while no
-- covering change was in flight, with the outcome flipped.  The check below
-- must flag every one of them (as a violation or an over-masking), which
-- shows it can fail.
INSERT INTO cells
SELECT subject, purpose, started, finished, category, NOT revealed, granted_at_start, true
FROM (SELECT c.*, row_number() OVER (PARTITION BY c.revealed ORDER BY c.started) AS n
      FROM cells c
      WHERE c.revealed = c.granted_at_start
        AND NOT EXISTS (SELECT FROM load_events e
                        WHERE e.subject = c.subject::text
                          AND (e.category = c.category OR c.category LIKE e.category || '.%')
                          AND (e.purpose = c.purpose OR c.purpose LIKE e.purpose || '.%')
                          AND e.recorded_at <= c.finished AND e.acked_at >= c.started)) k
WHERE n <= 100;

-- Cells whose outcome differs from the decision at the statement start and
-- that no change in flight explains.
CREATE TEMP TABLE unexplained AS
SELECT c.* FROM cells c
WHERE c.revealed <> c.granted_at_start
  AND NOT EXISTS (
      SELECT FROM load_events e
      WHERE e.subject = c.subject::text
        AND (e.category = c.category OR c.category LIKE e.category || '.%')
        AND (e.purpose = c.purpose OR c.purpose LIKE e.purpose || '.%')
        AND e.recorded_at <= c.finished AND e.acked_at >= c.started
        AND (consent.granted(c.subject, c.category, c.purpose, at => e.recorded_at - interval '1 microsecond')
                 = c.revealed
             OR consent.granted(c.subject, c.category, c.purpose, at => e.recorded_at) = c.revealed));

-- The independent reading of the ledger at each read's start.
CREATE TEMP TABLE oracle_disagreements AS
SELECT c.* FROM cells c
WHERE NOT c.control AND c.granted_at_start IS DISTINCT FROM coalesce((
      SELECT e.action = 'grant' FROM consent.ledger e
      WHERE e.subject = c.subject::text AND e.action <> 'erase' AND e.recorded_at <= c.started
        AND (e.category = c.category OR c.category LIKE e.category || '.%')
        AND (e.purpose = c.purpose OR c.purpose LIKE e.purpose || '.%')
      ORDER BY e.recorded_at DESC, e.id DESC LIMIT 1), false);

\pset format unaligned
\pset tuples_only on
SELECT 'read_statements=' || (SELECT count(*) FROM load_reads);
SELECT 'changes_during_load=' || (SELECT count(*) FROM load_events);
SELECT 'changes_acknowledged=' || (SELECT count(*) FROM load_events WHERE acked_at < 'infinity');
SELECT 'initial_events=' || (SELECT initial_events FROM load_meta);
SELECT 'cells_checked=' || count(*) FROM cells WHERE NOT control;
SELECT 'cells_revealed=' || count(*) FILTER (WHERE revealed) FROM cells WHERE NOT control;
SELECT 'cells_masked=' || count(*) FILTER (WHERE NOT revealed) FROM cells WHERE NOT control;
SELECT 'controls=' || count(*) FROM cells WHERE control;
SELECT 'controls_flagged=' || count(*) FROM unexplained WHERE control;
SELECT 'reads_per_purpose=' || string_agg(purpose || ':' || n, ',' ORDER BY purpose)
FROM (SELECT purpose, count(*) n FROM load_reads GROUP BY purpose) p;
SELECT 'subjects_read=' || count(DISTINCT subject) FROM load_reads;
SELECT 'cells_decided_during_a_change=' || count(*) FROM cells WHERE NOT control AND revealed <> granted_at_start;
SELECT 'violations=' || count(*) FILTER (WHERE revealed) FROM unexplained WHERE NOT control;
SELECT 'over_masked=' || count(*) FILTER (WHERE NOT revealed) FROM unexplained WHERE NOT control;
SELECT 'oracle_disagreements=' || count(*) FROM oracle_disagreements;
-- details, at most 20 of each
SELECT 'unexplained: ' || concat_ws(' ', subject, category, purpose, started, finished,
                                    CASE WHEN revealed THEN 'revealed' ELSE 'masked' END)
FROM (SELECT * FROM unexplained WHERE NOT control ORDER BY started LIMIT 20) u;
SELECT 'oracle: ' || concat_ws(' ', subject, category, purpose, started, granted_at_start)
FROM (SELECT * FROM oracle_disagreements ORDER BY started LIMIT 20) o;
