-- Aggregates over a scan of a protected table.  The mask calls that run for
-- every row (arguments of aggregates without FILTER, FILTER clauses, outside
-- CASE, COALESCE and the later operands of AND/OR) move into a ConsentMask
-- node under the aggregate; the others stay calls.  Results and audit
-- counts are those of the plain calls (consent.mask_scan = off), and the
-- node reads rows ahead when they come in no subject order.
SET client_min_messages = warning;
CREATE TABLE ag_customers (id bigint PRIMARY KEY, cust bigint NOT NULL, email consent.email, name consent.name,
                           born consent.birthdate, note text);
-- 3,000 rows whose subjects (cust) come in no order: a permutation of
-- 900001..903000 (subjects no other test uses)
INSERT INTO ag_customers
SELECT g, 900001 + (g * 1237) % 3000, 'a' || g || '@example.com', CASE WHEN g % 10 <> 0 THEN 'Agnes Nr' || g END,
       date '1960-01-01' + g, 'n' || g % 4
FROM generate_series(1, 3000) g;
ANALYZE ag_customers;
SELECT consent.protect('ag_customers', 'cust') IS NOT NULL AS protected;
SELECT count(consent.grant(cust, 'user.contact', 'personalize')) FROM ag_customers WHERE cust % 2 = 0;
SELECT count(consent.grant(cust, 'user.name', 'personalize')) FROM ag_customers WHERE cust % 3 = 0;
SELECT count(consent.withdraw(cust, 'user.contact.email', 'personalize')) FROM ag_customers WHERE cust % 5 = 0;
-- the same rows in subject order
CREATE TABLE ag_ordered AS SELECT * FROM ag_customers ORDER BY cust;
SELECT consent.protect('ag_ordered', 'cust') IS NOT NULL AS protected;
CREATE ROLE ag_app;
GRANT SELECT ON ag_customers, ag_ordered TO ag_app;
SELECT consent.allow_purpose('ag_app', 'personalize') IS NOT NULL AS allowed;
-- The shared state keeps a subject's record where it was last (re)loaded:
-- in subject order when it is built, at the end when a change is read for
-- the first time.  Reading the subjects in subject order first puts their
-- records in that order however the state was built.
SET ROLE ag_app;
SET consent.purpose = 'personalize';
SELECT count(email) FROM ag_ordered;
RESET ROLE;
-- the audit counts of a statement, by column: taken before (ag_mark) and
-- after (ag_count) it, as the superuser
CREATE TABLE ag_counts (variant text, q int, column_name text, revealed bigint, masked bigint);
CREATE FUNCTION ag_mark() RETURNS void LANGUAGE sql AS $$
    DROP TABLE IF EXISTS ag_before;
    CREATE TABLE ag_before AS
    SELECT column_name, revealed, masked FROM consent.disclosures
    WHERE relation = 'public.ag_customers' AND role = 'ag_app';
$$;
SELECT ag_mark();
CREATE FUNCTION ag_count(variant text, q int) RETURNS void LANGUAGE sql AS $$
    INSERT INTO ag_counts
    SELECT variant, q, d.column_name, d.revealed - coalesce(b.revealed, 0), d.masked - coalesce(b.masked, 0)
    FROM consent.disclosures d LEFT JOIN ag_before b USING (column_name)
    WHERE d.relation = 'public.ag_customers' AND d.role = 'ag_app';
$$;
SET consent.track_disclosures = on;
SET consent.purpose = 'personalize';
SET enable_indexscan = off;
SET enable_bitmapscan = off;

-- the calls that run for every row are computed by the node
SET ROLE ag_app;
SELECT explain_lines('(VERBOSE, COSTS OFF) SELECT count(*) FILTER (WHERE email LIKE ''%*%''), max(name), count(CASE WHEN id > 1 THEN born END) FROM ag_customers');
-- aggregates with FILTER keep the calls of their arguments; COALESCE and the
-- second operand of AND/OR too
SELECT explain_lines('(VERBOSE, COSTS OFF) SELECT count(email) FILTER (WHERE id > 5), max(coalesce(note, name)), count(*) FILTER (WHERE id > 5 AND name LIKE ''A%'') FROM ag_customers');
-- a grouped aggregate reads its group column and the lifted calls only
SELECT explain_lines('(VERBOSE, COSTS OFF) SELECT note, max(email), count(name) FROM ag_customers GROUP BY note HAVING count(name) > 0');
RESET ROLE;

-- results and audit counts, node and plain calls, for queries of each shape
\set run_on 'RESET ROLE; SELECT ag_mark(); SET ROLE ag_app; SET consent.mask_scan = on;'
\set run_off 'RESET ROLE; SELECT ag_mark(); SET ROLE ag_app; SET consent.mask_scan = off;'
\set q1 'SELECT count(*) FILTER (WHERE email LIKE ''%*%'') AS masked_emails, max(name), min(born), sum(length(email)) FROM ag_customers'
\set q2 'SELECT count(email) FILTER (WHERE id > 5), max(coalesce(note, name)), count(*) FILTER (WHERE id > 5 AND name LIKE ''A%'') FROM ag_customers'
\set q3 'SELECT note, max(email), count(name), min(name) FROM ag_customers GROUP BY note HAVING count(name) > 0 ORDER BY note'
\set q4 'SELECT count(DISTINCT email), string_agg(name, '','' ORDER BY name) IS NOT NULL AS agg, sum(length(name)), avg(length(name)) FROM ag_customers'
\set q5 'SELECT count(CASE WHEN id % 2 = 0 THEN email END), max(born) FILTER (WHERE name IS NOT NULL), count(name) FROM ag_customers'
\set q6 'SELECT note, born IS NULL AS no_born, count(*) FROM ag_customers GROUP BY GROUPING SETS ((note), (born IS NULL)) ORDER BY 1, 2'
:run_on :q1; RESET ROLE; SELECT ag_count('on', 1);
:run_off :q1; RESET ROLE; SELECT ag_count('off', 1);
:run_on :q2; RESET ROLE; SELECT ag_count('on', 2);
:run_off :q2; RESET ROLE; SELECT ag_count('off', 2);
:run_on :q3; RESET ROLE; SELECT ag_count('on', 3);
:run_off :q3; RESET ROLE; SELECT ag_count('off', 3);
:run_on :q4; RESET ROLE; SELECT ag_count('on', 4);
:run_off :q4; RESET ROLE; SELECT ag_count('off', 4);
:run_on :q5; RESET ROLE; SELECT ag_count('on', 5);
:run_off :q5; RESET ROLE; SELECT ag_count('off', 5);
-- hashed instead of sorted groups
SET enable_sort = off;
:run_on :q3; RESET ROLE; SELECT ag_count('on', 7);
:run_off :q3; RESET ROLE; SELECT ag_count('off', 7);
RESET enable_sort;
:run_on :q6; RESET ROLE; SELECT ag_count('on', 6);
:run_off :q6; RESET ROLE; SELECT ag_count('off', 6);
RESET consent.mask_scan;
-- every query counted cells, the same both ways
SELECT q, bool_and(o.revealed = f.revealed AND o.masked = f.masked) AS same_counts,
       sum(o.revealed + o.masked) AS cells
FROM ag_counts o JOIN ag_counts f USING (q, column_name)
WHERE o.variant = 'on' AND f.variant = 'off'
GROUP BY q ORDER BY q;
SELECT q, count(*) FILTER (WHERE variant = 'on') AS columns_on, count(*) FILTER (WHERE variant = 'off') AS columns_off
FROM ag_counts GROUP BY q HAVING count(*) FILTER (WHERE variant = 'on') <> count(*) FILTER (WHERE variant = 'off');

-- Read-ahead: rows in no subject order are read ahead (EXPLAIN ANALYZE says
-- so), rows in subject order are not; the results are the same
SET ROLE ag_app;
SELECT explain_has('SELECT max(email), count(name) FROM ag_customers', 'Read Ahead: true', true) AS shuffled,
       explain_has('SELECT max(email), count(name) FROM ag_ordered', 'Read Ahead: true', true) AS in_order;
SELECT (SELECT array[max(email)::text, count(name)::text, sum(length(email))::text] FROM ag_customers)
     = (SELECT array[max(email)::text, count(name)::text, sum(length(email))::text] FROM ag_ordered) AS same;
-- a hashed aggregate reads ahead too
SET enable_sort = off;
SELECT explain_has('SELECT note, max(email) FROM ag_customers GROUP BY note', 'Read Ahead: true', true) AS hashed;
RESET enable_sort;
-- so does the scan under a sort (which reads its whole input), under a
-- bitmap heap scan too (rows of many pages held at once); the same rows as
-- the plain calls.  A hash join on a masked column computes the masks in
-- its Hash node, over the bare columns: no node there.
-- ag_both(q): q (a masked count, an md5 of the rows) planned with the node
-- and with the plain calls: the count, and whether both gave the same.
RESET ROLE;
CREATE FUNCTION ag_both(q text, OUT masked bigint, OUT same boolean) LANGUAGE plpgsql AS $$
DECLARE on_rows text; off_masked bigint; off_rows text;
BEGIN
    PERFORM set_config('consent.mask_scan', 'on', true);
    EXECUTE q INTO masked, on_rows;
    PERFORM set_config('consent.mask_scan', 'off', true);
    EXECUTE q INTO off_masked, off_rows;
    same := masked = off_masked AND on_rows = off_rows;
END
$$;
SET enable_mergejoin = off;
SET enable_nestloop = off;
SET ROLE ag_app;
SELECT explain_has('SELECT id, email, name FROM ag_customers ORDER BY email, id', 'Read Ahead: true', true) AS sorted,
       explain_has('SELECT g, c.name FROM generate_series(1, 30000) g JOIN ag_customers c ON c.email = ''a'' || g || ''@example.com''', 'Read Ahead: true', true) AS hash_join;
SELECT * FROM ag_both('SELECT count(*) FILTER (WHERE email LIKE ''%*%''), md5(string_agg(concat_ws('':'', id, email, name, born), '',''))
                       FROM (SELECT id, email, name, born FROM ag_customers ORDER BY email, id) s');
SELECT * FROM ag_both('SELECT count(*) FILTER (WHERE name LIKE ''%.%''), md5(string_agg(concat_ws('':'', g, name, born), '','' ORDER BY g))
                       FROM generate_series(1, 30000) g JOIN ag_customers c ON c.email = ''a'' || g || ''@example.com''');
RESET enable_mergejoin;
RESET enable_nestloop;
SET enable_seqscan = off;
SET enable_indexscan = off;
SELECT explain_has('SELECT id, email, name FROM ag_customers WHERE id BETWEEN 100 AND 2900 ORDER BY name, id', 'Read Ahead: true', true) AS bitmap;
SELECT * FROM ag_both('SELECT count(*) FILTER (WHERE email LIKE ''%*%''), md5(string_agg(concat_ws('':'', id, email, name), '',''))
                       FROM (SELECT id, email, name FROM ag_customers WHERE id BETWEEN 100 AND 2900 ORDER BY name, id) s');
RESET enable_seqscan;
RESET enable_indexscan;
-- a relation with a dropped column: its scan returns projected rows, which
-- the ring copies (instead of holding their buffer)
RESET ROLE;
CREATE TABLE ag_dropped AS SELECT id, cust, 0 AS gone, email, name, born FROM ag_customers;
ALTER TABLE ag_dropped DROP COLUMN gone;
SELECT consent.protect('ag_dropped', 'cust') IS NOT NULL AS protected;
GRANT SELECT ON ag_dropped TO ag_app;
SET ROLE ag_app;
SELECT explain_has('SELECT max(email), count(name) FROM ag_dropped', 'Read Ahead: true', true) AS dropped_column;
SELECT * FROM ag_both('SELECT count(*) FILTER (WHERE email LIKE ''%*%''), md5(string_agg(concat_ws('':'', id, email, name, born), '','' ORDER BY id))
                       FROM ag_dropped');
RESET ROLE;
-- a node whose parent may stop early never reads ahead: a sorted group
-- aggregate under LIMIT reads the rows it needs, and not the row beyond
-- them that fails
RESET ROLE;
RESET enable_indexscan;
SET enable_hashagg = off;
SET enable_sort = off;
SET enable_seqscan = off;
SET ROLE ag_app;
SELECT explain_lines('(COSTS OFF) SELECT id, max(email) FROM ag_customers WHERE 1 / (id - 710) <> 7 GROUP BY id ORDER BY id LIMIT 700');
SELECT count(*), count(DISTINCT m) FROM (
    SELECT id, max(email) AS m FROM ag_customers WHERE 1 / (id - 710) <> 7 GROUP BY id ORDER BY id LIMIT 700) s;
SELECT explain_has('SELECT id, max(email) FROM ag_customers WHERE id <> 710 GROUP BY id ORDER BY id LIMIT 700', 'Read Ahead: true', true) AS sorted_groups;
RESET ROLE;
RESET enable_hashagg;
RESET enable_sort;
RESET enable_seqscan;
-- a rescanned node (the inner side of a nested loop) starts again with an
-- empty ring: the same counts as the plain calls
SET ROLE ag_app;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SELECT v, (SELECT count(email) + count(name) FROM ag_customers WHERE note = 'n' || v) AS n
FROM generate_series(0, 3) v ORDER BY v;
SET consent.mask_scan = off;
SELECT v, (SELECT count(email) + count(name) FROM ag_customers WHERE note = 'n' || v) AS n
FROM generate_series(0, 3) v ORDER BY v;
RESET consent.mask_scan;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET ROLE;
-- A table in subject order stays in order for the look-ups when a tenth of
-- its subjects change: a changed subject's record moves to the end of the
-- shared state (when the change is first read), and the look-up after it
-- goes on in the sequence after its old place.  With the subjects that
-- have no record (8 in 30 here: a look-up each that finds nothing), that
-- is 37 % of the look-ups off the sequence, not the half that starts the
-- read-ahead.
SELECT count(consent.grant(cust, 'user.demographic', 'personalize')) FROM ag_ordered WHERE cust % 10 = 0;
SET ROLE ag_app;
SELECT count(born) FROM ag_ordered;
SELECT explain_has('SELECT max(email), count(name) FROM ag_ordered', 'Read Ahead: true', true) AS after_changes;
RESET ROLE;

DROP FUNCTION ag_both(text);
DROP FUNCTION ag_count(text, int);
DROP FUNCTION ag_mark();
DROP TABLE ag_counts, ag_before, ag_ordered, ag_dropped, ag_customers;
SELECT consent.revoke_purpose('ag_app', 'personalize') IS NOT NULL AS revoked;
DROP ROLE ag_app;
