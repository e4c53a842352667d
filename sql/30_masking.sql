-- Masking: every read path sees only what the subject agreed to.
CREATE TABLE mk_customers (
    id bigint PRIMARY KEY,
    email consent.email,
    name consent.name,
    born consent.birthdate,
    fingerprint consent.fingerprint,
    note text
);
SELECT consent.protect('mk_customers', 'id');
INSERT INTO mk_customers VALUES
    (1, 'jane.doe@example.com', 'Jane Mary Doe', '1987-06-05', '\x0102', 'n1'),
    (2, 'max@example.de', 'Max Mustermann', '1990-01-02', '\x03', 'n2'),
    (3, 'zoe@example.no', 'Zoë Ødegård', '2001-12-31', NULL, 'n3');
CREATE TABLE mk_orders (order_id int PRIMARY KEY, customer_id bigint, shipping consent.address, amount numeric);
SELECT consent.protect('mk_orders', 'customer_id');
INSERT INTO mk_orders VALUES (10, 1, 'Hauptstr. 1, Berlin', 20), (11, 2, 'Ringweg 2, Köln', 30), (12, 3, 'Fjordvei 3, Oslo', 40);
-- subject 1 agreed to contact and name for personalize; 3 to its address; 1 to fingerprint explicitly
SELECT consent.grant(1, 'user.contact', 'personalize') > 0, consent.grant(1, 'user.name', 'personalize') > 0,
       consent.grant(1, 'user.biometric.fingerprint', 'personalize') > 0,
       consent.grant(3, 'user.contact.address', 'personalize') > 0,
       consent.grant(2, 'user.contact.email', 'marketing') > 0;

CREATE ROLE mk_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON mk_customers, mk_orders TO mk_app;
GRANT CREATE ON SCHEMA public TO mk_app;
SELECT consent.allow_purpose('mk_app', 'personalize'), consent.allow_purpose('mk_app', 'essential');

SET ROLE mk_app;
-- no purpose: everything tagged is masked (privacy by default)
SELECT * FROM mk_customers ORDER BY id;
SET consent.purpose = 'personalize';
SELECT * FROM mk_customers ORDER BY id;
-- a purpose with a contract basis sees its necessary categories without consent
SET consent.purpose = 'essential.service';
SELECT id, email, name, born FROM mk_customers ORDER BY id;
SET consent.purpose = 'personalize';

-- predicates, joins, sorting and grouping see masked values
SELECT id FROM mk_customers WHERE email = 'max@example.de';
SELECT id FROM mk_customers WHERE email LIKE 'm%';
SELECT id FROM mk_customers WHERE born = '1990-01-02';
SELECT id FROM mk_customers WHERE born = '1990-01-01';
SELECT name, count(*) FROM mk_customers GROUP BY name ORDER BY name;
SELECT id, email FROM mk_customers ORDER BY email, id;
SELECT c.id, o.shipping FROM mk_customers c JOIN mk_orders o ON o.customer_id = c.id ORDER BY c.id;
SELECT count(*) FROM mk_customers a JOIN mk_customers b ON a.email = b.email;
SELECT id, row_number() OVER (ORDER BY born) FROM mk_customers ORDER BY id;

-- whole-row references
SELECT c FROM mk_customers c ORDER BY id;
SELECT row_to_json(c) FROM mk_customers c WHERE id = 2;
SELECT to_jsonb(c.*) ->> 'email' FROM mk_customers c WHERE id = 2;

-- CTEs (also recursive), subqueries, LATERAL, set operations
WITH x AS (SELECT id, email FROM mk_customers) SELECT * FROM x ORDER BY id;
WITH x AS MATERIALIZED (SELECT email FROM mk_customers WHERE id = 2) SELECT * FROM x;
WITH RECURSIVE r(n, e) AS (SELECT 1, email::text FROM mk_customers WHERE id = 2 UNION ALL SELECT n + 1, e FROM r WHERE n < 2)
SELECT * FROM r;
SELECT (SELECT email FROM mk_customers WHERE id = 2) AS scalar_subquery;
SELECT id FROM mk_customers c WHERE EXISTS (SELECT 1 FROM mk_customers d WHERE d.email = 'max@example.de' AND d.id = c.id);
SELECT o.order_id, l.email FROM mk_orders o, LATERAL (SELECT email FROM mk_customers c WHERE c.id = o.customer_id) l ORDER BY 1;
SELECT email FROM mk_customers WHERE id = 2 UNION SELECT email FROM mk_customers WHERE id = 1 ORDER BY 1;
SELECT email FROM mk_customers INTERSECT SELECT 'max@example.de';

-- views: plain, security_barrier, owned by a superuser
RESET ROLE;
CREATE VIEW mk_view AS SELECT id, email, name FROM mk_customers;
CREATE VIEW mk_sb_view WITH (security_barrier) AS SELECT id, email FROM mk_customers WHERE id > 0;
GRANT SELECT ON mk_view, mk_sb_view TO mk_app;
SET ROLE mk_app;
SELECT * FROM mk_view ORDER BY id;
SELECT * FROM mk_sb_view WHERE email = 'max@example.de';
SELECT * FROM mk_sb_view ORDER BY id;

-- functions: SQL (inlinable and not), PL/pgSQL, SECURITY DEFINER owned by a superuser
RESET ROLE;
CREATE FUNCTION mk_sql_srf() RETURNS TABLE (id bigint, email text) LANGUAGE sql STABLE
    AS $$ SELECT id, email FROM mk_customers ORDER BY id $$;
CREATE FUNCTION mk_sql_scalar(bigint) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT (SELECT email FROM mk_customers WHERE id = $1) $$;
CREATE FUNCTION mk_plpgsql(bigint) RETURNS text LANGUAGE plpgsql STABLE
    AS $$ DECLARE e text; BEGIN SELECT email INTO e FROM mk_customers WHERE id = $1; RETURN e; END $$;
CREATE FUNCTION mk_definer(bigint) RETURNS text LANGUAGE plpgsql SECURITY DEFINER
    AS $$ DECLARE e text; BEGIN SELECT email INTO e FROM mk_customers WHERE id = $1; RETURN e; END $$;
SELECT mk_definer(2) AS superuser_sees;
SET ROLE mk_app;
SELECT * FROM mk_sql_srf();
SELECT mk_sql_scalar(2), mk_plpgsql(2), mk_definer(2);
SELECT mk_sql_scalar(1), mk_plpgsql(1), mk_definer(1);

-- prepared statements and cached plans follow purpose and consent changes
PREPARE mk_q AS SELECT email FROM mk_customers WHERE id = 2;
EXECUTE mk_q; EXECUTE mk_q; EXECUTE mk_q; EXECUTE mk_q; EXECUTE mk_q; EXECUTE mk_q;
SET plan_cache_mode = force_generic_plan;
PREPARE mk_q2(bigint) AS SELECT email FROM mk_customers WHERE id = $1;
EXECUTE mk_q2(2);
RESET ROLE;
SELECT consent.grant(2, 'user.contact.email', 'personalize') > 0;
SET ROLE mk_app;
EXECUTE mk_q2(2);
SELECT mk_plpgsql(2);
RESET ROLE;
SELECT consent.withdraw(2, 'user.contact', 'personalize') > 0;
SET ROLE mk_app;
EXECUTE mk_q2(2);
SELECT mk_plpgsql(2);
SET consent.purpose = 'essential';
EXECUTE mk_q2(2);
RESET consent.purpose;
EXECUTE mk_q2(2);
SET consent.purpose = 'personalize';
RESET plan_cache_mode;

-- cursors, also WITH HOLD
BEGIN;
DECLARE mk_cur CURSOR FOR SELECT id, email FROM mk_customers ORDER BY id;
FETCH 2 FROM mk_cur;
DECLARE mk_hold CURSOR WITH HOLD FOR SELECT id, email FROM mk_customers ORDER BY id;
COMMIT;
FETCH ALL FROM mk_hold;
CLOSE mk_hold;

-- COPY table TO and COPY (query) TO
COPY mk_customers TO STDOUT;
COPY mk_customers (id, email) TO STDOUT;
COPY (SELECT name FROM mk_customers ORDER BY id) TO STDOUT;

-- RETURNING
INSERT INTO mk_customers VALUES (4, 'new@example.com', 'New Person', '2000-02-02', NULL, 'n4') RETURNING *;
UPDATE mk_customers SET note = 'n2b' WHERE id = 2 RETURNING id, email, note;
DELETE FROM mk_customers WHERE id = 4 RETURNING id, email;

-- writes never store masked values: 42501, nothing written
SELECT try($$UPDATE mk_customers SET email = email WHERE id = 2$$);
SELECT try($$UPDATE mk_customers SET name = upper(name) WHERE id = 2$$);
SELECT try($$INSERT INTO mk_customers SELECT 5, email, name, born, NULL, 'copy' FROM mk_customers WHERE id = 2$$);
SELECT try($$UPDATE mk_orders o SET shipping = (SELECT shipping FROM mk_orders WHERE order_id = 11) WHERE order_id = 10$$);
SELECT try($$MERGE INTO mk_customers t USING mk_customers s ON t.id = s.id WHEN MATCHED THEN UPDATE SET email = s.email$$);
-- revealed values may be written, given values are stored as given
UPDATE mk_customers SET email = email WHERE id = 1;
UPDATE mk_customers SET email = 'max.new@example.de' WHERE id = 2;
-- WHERE of UPDATE/DELETE sees masked values
UPDATE mk_customers SET note = 'hit' WHERE email = 'max.new@example.de';
DELETE FROM mk_customers WHERE email = 'max.new@example.de';
RESET ROLE;
SELECT id, email, name, note FROM mk_customers ORDER BY id;
SET ROLE mk_app;

-- CREATE TABLE AS / materialized views by a masked role hold masked data
CREATE TABLE mk_copy AS SELECT * FROM mk_customers;
CREATE MATERIALIZED VIEW mk_mv AS SELECT id, email FROM mk_customers;
RESET ROLE;
SELECT * FROM mk_copy ORDER BY id;
SELECT * FROM mk_mv ORDER BY id;
DROP TABLE mk_copy; DROP MATERIALIZED VIEW mk_mv;
SET ROLE mk_app;

-- EXPLAIN shows the masking expression and no raw values (relation OIDs vary: hidden)
RESET ROLE;
SET ROLE mk_app;
SELECT explain_lines('(VERBOSE, COSTS OFF) SELECT email FROM mk_customers WHERE id = 2');
SELECT explain_lines('(ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT email FROM mk_customers WHERE email = ''max@example.de''');

-- parallel query: workers never reveal, the result equals the serial one
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT count(*) FILTER (WHERE email LIKE '%***%') AS masked, count(*) AS total FROM mk_customers;
SELECT id, email FROM mk_customers ORDER BY id;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- SET ROLE: the purpose is re-checked for the acting role
RESET ROLE;
CREATE ROLE mk_other;
GRANT SELECT ON mk_customers TO mk_other;
SET ROLE mk_app;
SET consent.purpose = 'personalize';
SELECT email FROM mk_customers WHERE id = 1;
RESET ROLE;
SET ROLE mk_other;
SELECT email FROM mk_customers WHERE id = 1;
SELECT consent.current_purpose();
RESET ROLE;
RESET consent.purpose;
REVOKE ALL ON mk_customers FROM mk_other;
DROP ROLE mk_other;

-- a scan in subject order, with subjects that hold no consent between those
-- that do (9 -> 10 crosses a key length): none is revealed wrongly, none
-- stays masked after a grant in this session
CREATE TABLE mk_seq (id bigint PRIMARY KEY, email consent.email);
SELECT consent.protect('mk_seq', 'id');
INSERT INTO mk_seq SELECT g, 'p' || g || '@example.com' FROM generate_series(7, 12) g;
GRANT SELECT ON mk_seq TO mk_app;
SELECT count(*) FROM (SELECT consent.grant(g, 'user.contact.email', 'personalize') FROM unnest(ARRAY[8, 11]) g) s;
SET ROLE mk_app;
SET consent.purpose = 'personalize';
SELECT id, email FROM mk_seq;
RESET ROLE;
SELECT count(*) FROM (SELECT consent.grant(10, 'user.contact.email', 'personalize')) s;
SET ROLE mk_app;
SELECT id, email FROM mk_seq;
RESET ROLE;
SELECT count(*) FROM (SELECT consent.withdraw(11, 'user.contact.email', 'personalize')) s;
SET ROLE mk_app;
SELECT id, email FROM mk_seq;
RESET ROLE;
RESET consent.purpose;

-- one decision pass per row (decide_all) follows the rules of a single
-- decision (consent.granted): grants on a general ancestor do not reveal a
-- special category, an ancestor's withdrawal masks its descendants, a grant
-- under a parent purpose reaches its children, the newest event decides
CREATE TABLE mk_rules (id bigint PRIMARY KEY, email consent.email, fp consent.fingerprint, born consent.birthdate);
SELECT consent.protect('mk_rules', 'id');
INSERT INTO mk_rules SELECT g, 'r' || g || '@example.com', '\x0102', date '1980-05-17' FROM generate_series(21, 26) g;
GRANT SELECT ON mk_rules TO mk_app;
SELECT consent.allow_purpose('mk_app', 'marketing.communications.email');
SELECT count(*) FROM (
    SELECT consent.grant(21, 'user', 'personalize')                               -- general root: not fp
    UNION ALL SELECT consent.grant(22, 'user', 'personalize')
    UNION ALL SELECT consent.grant(22, 'user.biometric.fingerprint', 'personalize') -- named: fp too
    UNION ALL SELECT consent.grant(23, 'user.biometric', 'personalize')           -- special ancestor: fp only
    UNION ALL SELECT consent.grant(24, 'user', 'personalize')
    UNION ALL SELECT consent.withdraw(24, 'user.contact', 'personalize')          -- masks email, not born
    UNION ALL SELECT consent.withdraw(25, 'user', 'personalize')
    UNION ALL SELECT consent.grant(25, 'user.contact.email', 'personalize')       -- newer grant wins for email
    UNION ALL SELECT consent.grant(26, 'user', 'marketing')                       -- parent purpose
) s;
SELECT id, consent.granted(id, 'user.contact.email', 'personalize') AS email,
       consent.granted(id, 'user.biometric.fingerprint', 'personalize') AS fp,
       consent.granted(id, 'user.demographic.date_of_birth', 'personalize') AS born,
       consent.granted(id, 'user.contact.email', 'marketing.communications.email') AS email_mce,
       consent.granted(id, 'user.biometric.fingerprint', 'marketing.communications.email') AS fp_mce
FROM mk_rules ORDER BY id;
SET ROLE mk_app;
SET consent.purpose = 'personalize';
SELECT id, email = 'r' || id || '@example.com' AS email, fp IS NOT NULL AS fp, born = date '1980-05-17' AS born
FROM mk_rules ORDER BY id;
SET consent.purpose = 'marketing.communications.email';
SELECT id, email = 'r' || id || '@example.com' AS email, fp IS NOT NULL AS fp FROM mk_rules ORDER BY id;
RESET ROLE;
RESET consent.purpose;

-- The ConsentMask scan (consent.mask_scan, on by default) masks the rows of
-- simple scans in one plan node: every query returns exactly what the
-- plain mask calls return, and the node is in the plan where expected.
CREATE FUNCTION mk_both(q text) RETURNS TABLE (mask_node boolean, same boolean, n int) LANGUAGE plpgsql AS $$
DECLARE on_rows text[]; off_rows text[]; plan_on text; plan_off text;
BEGIN
    PERFORM set_config('consent.mask_scan', 'on', true);
    SELECT string_agg(l, E'\n') INTO plan_on FROM explain_lines('(COSTS OFF) ' || q) l;
    EXECUTE format('SELECT array_agg(r::text) FROM (%s) r', q) INTO on_rows;
    PERFORM set_config('consent.mask_scan', 'off', true);
    SELECT string_agg(l, E'\n') INTO plan_off FROM explain_lines('(COSTS OFF) ' || q) l;
    EXECUTE format('SELECT array_agg(r::text) FROM (%s) r', q) INTO off_rows;
    PERFORM set_config('consent.mask_scan', 'on', true);
    IF plan_off LIKE '%ConsentMask%' THEN
        RAISE EXCEPTION 'consent.mask_scan = off still plans a ConsentMask node';
    END IF;
    RETURN QUERY SELECT plan_on LIKE '%ConsentMask%', on_rows IS NOT DISTINCT FROM off_rows, cardinality(on_rows);
END
$$;
SET ROLE mk_app;
SET consent.purpose = 'personalize';
SELECT * FROM mk_both('SELECT * FROM mk_customers WHERE id = 1');
SELECT * FROM mk_both('SELECT * FROM mk_customers ORDER BY id');
SELECT * FROM mk_both('SELECT id, email, note FROM mk_customers WHERE email LIKE ''%@%'' ORDER BY id');
SELECT * FROM mk_both('SELECT id, name FROM mk_customers WHERE name LIKE ''%.%'' ORDER BY id');
SELECT * FROM mk_both('SELECT id, email FROM mk_customers ORDER BY id FOR UPDATE');
SELECT * FROM mk_both('SELECT id, (SELECT email FROM mk_customers c2 WHERE c2.id = c1.id) FROM mk_customers c1 ORDER BY id');
SELECT * FROM mk_both('SELECT email, fp FROM mk_rules WHERE id BETWEEN 21 AND 26 ORDER BY id');
SELECT * FROM mk_both('SELECT c.id, o.shipping FROM mk_customers c JOIN mk_orders o ON o.customer_id = c.id ORDER BY c.id');
SET consent.purpose = 'essential.service';
SELECT * FROM mk_both('SELECT * FROM mk_customers ORDER BY id');
SET consent.purpose = 'personalize';
-- the node inside joins (a join of tables masks above the join; a
-- subquery kept apart by OFFSET 0 masks in its own scan): the inner side of
-- a nested loop, scanned again for every outer row with a new parameter,
-- and the ordered side of a merge join
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SELECT explain_lines('(COSTS OFF) SELECT v.cid, c.* FROM (VALUES (3), (1), (3), (2)) v(cid), LATERAL (SELECT * FROM mk_customers c WHERE c.id = v.cid OFFSET 0) c');
SELECT * FROM mk_both('SELECT v.cid, c.* FROM (VALUES (3), (1), (3), (2)) v(cid), LATERAL (SELECT * FROM mk_customers c WHERE c.id = v.cid OFFSET 0) c');
RESET enable_mergejoin;
SET enable_nestloop = off;
SET enable_sort = off;
SELECT explain_lines('(COSTS OFF) SELECT v.cid, c.* FROM (VALUES (3), (1), (3), (2), (9)) v(cid) LEFT JOIN (SELECT * FROM mk_customers ORDER BY id OFFSET 0) c ON c.id = v.cid');
SELECT * FROM mk_both('SELECT v.cid, c.* FROM (VALUES (3), (1), (3), (2), (9)) v(cid) LEFT JOIN (SELECT * FROM mk_customers ORDER BY id OFFSET 0) c ON c.id = v.cid');
RESET enable_hashjoin;
RESET enable_nestloop;
RESET enable_sort;
-- aggregates: the mask calls that run for every row are computed by a node
-- under the aggregate, the others stay calls (32_aggregates); results and
-- audit counts are the same both ways
SELECT * FROM mk_both('SELECT count(*) FILTER (WHERE email LIKE ''%***%''), max(name), sum(length(note || email)) FROM mk_customers');
SELECT * FROM mk_both('SELECT note, max(email), count(born) FROM mk_customers GROUP BY note ORDER BY note');
SELECT * FROM mk_both('SELECT max(email), min(email) FROM mk_customers');
SELECT * FROM mk_both('SELECT count(CASE WHEN id > 1 THEN email END) FROM mk_customers');
SELECT * FROM mk_both('SELECT count(email) FILTER (WHERE id > 1) FROM mk_customers');
SELECT explain_lines('(VERBOSE, COSTS OFF) SELECT count(*) FILTER (WHERE email LIKE ''%***%''), max(name), count(CASE WHEN id > 1 THEN born END) FROM mk_customers');
-- the audit counts the same cells both ways
RESET ROLE;
SET consent.audit = 'all';
SET consent.audit_log_level = 'notice';
SET ROLE mk_app;
SELECT count(*) FILTER (WHERE email LIKE '%***%') AS masked, max(name), count(CASE WHEN id > 1 THEN born END) FROM mk_customers;
SET consent.mask_scan = off;
SELECT count(*) FILTER (WHERE email LIKE '%***%') AS masked, max(name), count(CASE WHEN id > 1 THEN born END) FROM mk_customers;
RESET consent.mask_scan;
SELECT email FROM mk_customers WHERE id = 2;
SET consent.mask_scan = off;
SELECT email FROM mk_customers WHERE id = 2;
RESET consent.mask_scan;
RESET ROLE;
RESET consent.audit;
RESET consent.audit_log_level;
SET ROLE mk_app;
-- a table with a dropped column and a column added with a default (the scan
-- then returns only the columns the node reads)
RESET ROLE;
CREATE TABLE mk_altered (id bigint PRIMARY KEY, junk text, email consent.email);
SELECT consent.protect('mk_altered', 'id');
INSERT INTO mk_altered VALUES (1, 'x', 'jane.doe@example.com'), (2, 'y', 'max@example.de');
ALTER TABLE mk_altered DROP COLUMN junk;
ALTER TABLE mk_altered ADD COLUMN name consent.name DEFAULT 'Default Name';
GRANT SELECT ON mk_altered TO mk_app;
SET ROLE mk_app;
SELECT * FROM mk_both('SELECT * FROM mk_altered ORDER BY id');
SELECT * FROM mk_altered ORDER BY id;
-- a scrollable cursor reads backwards through the node
BEGIN;
DECLARE mk_scroll SCROLL CURSOR FOR SELECT id, email, name FROM mk_customers ORDER BY id;
FETCH LAST FROM mk_scroll;
FETCH PRIOR FROM mk_scroll;
FETCH ABSOLUTE 1 FROM mk_scroll;
COMMIT;
-- a stored value derived from a masked cell still fails (42501) in the node
UPDATE mk_customers SET note = email WHERE id = 2;
SELECT explain_lines('(VERBOSE, COSTS OFF) UPDATE mk_customers SET note = email WHERE id = 2');
SET consent.mask_scan = off;
SELECT explain_lines('(VERBOSE, COSTS OFF) SELECT email FROM mk_customers WHERE id = 2');
RESET consent.mask_scan;
-- the relation's whole row (SELECT *, exports): the node describes its rows
-- by the relation itself ("on" it in EXPLAIN), which saves PostgreSQL a
-- descriptor per execution; EXPLAIN VERBOSE lists the calls that mask them
SELECT explain_lines('(VERBOSE, COSTS OFF) SELECT * FROM mk_customers WHERE id = 2');
-- rows of any other shape keep their own description, and every shape
-- returns what the plain calls return
SELECT * FROM mk_both('SELECT *, email AS again FROM mk_customers ORDER BY id');
SELECT * FROM mk_both('SELECT id, email, born, name, fingerprint, note FROM mk_customers ORDER BY id');
SELECT * FROM mk_both('SELECT * FROM mk_customers WHERE id = 2 UNION ALL SELECT * FROM mk_customers WHERE id = 1');
SELECT explain_lines('(VERBOSE, COSTS OFF) SELECT id, email, born, name, fingerprint, note FROM mk_customers WHERE id = 2');
-- WHERE CURRENT OF does not take the node's masked row for the table's
-- current row: the cursor is not a simply updatable scan (24000), as for
-- every masked scan, and nothing is updated
BEGIN;
DECLARE mk_cur CURSOR FOR SELECT * FROM mk_customers WHERE id = 2;
FETCH mk_cur;
UPDATE mk_customers SET note = 'changed' WHERE CURRENT OF mk_cur;
ROLLBACK;
SELECT note FROM mk_customers WHERE id = 2;
RESET ROLE;
RESET consent.purpose;

-- Many subjects whose events grow round after round, in the shared state
-- (records are replaced) and, inside the transaction that changes them, in
-- the session's own cache (records move and the cache compacts itself).
-- Masked reads equal consent.granted() before, during and after.
CREATE TABLE mk_many (id bigint PRIMARY KEY, email consent.email, name consent.name, born consent.birthdate,
                      address consent.address);
SELECT consent.protect('mk_many', 'id');
INSERT INTO mk_many SELECT g, 'm' || g || '@example.com', 'Many Name ' || g, date '1970-01-02' + g % 300, 'Street ' || g
FROM generate_series(1001, 1600) g;
GRANT SELECT ON mk_many TO mk_app;
CREATE FUNCTION mk_many_check() RETURNS TABLE (email bigint, name bigint, born bigint, address bigint, wrong bigint)
LANGUAGE sql AS $$
    SELECT count(*) FILTER (WHERE email = 'm' || id || '@example.com'),
           count(*) FILTER (WHERE name = 'Many Name ' || id),
           count(*) FILTER (WHERE born = date '1970-01-02' + (id % 300)::int),
           count(*) FILTER (WHERE address = 'Street ' || id),
           count(*) FILTER (WHERE
               (email = 'm' || id || '@example.com') IS DISTINCT FROM consent.granted(id, 'user.contact.email', 'personalize')
            OR (name = 'Many Name ' || id) IS DISTINCT FROM consent.granted(id, 'user.name', 'personalize')
            OR (born = date '1970-01-02' + (id % 300)::int)
                   IS DISTINCT FROM consent.granted(id, 'user.demographic.date_of_birth', 'personalize')
            OR (address = 'Street ' || id) IS DISTINCT FROM consent.granted(id, 'user.contact.address', 'personalize'))
    FROM mk_many
$$;
SELECT count(consent.grant(id, 'user.contact.email', 'personalize')) FROM mk_many;
SET ROLE mk_app;
SET consent.purpose = 'personalize';
SELECT * FROM mk_many_check();
RESET ROLE;
SELECT count(consent.grant(id, 'user.name', 'personalize')) FROM mk_many;
SET ROLE mk_app;
SELECT * FROM mk_many_check();
RESET ROLE;
SELECT count(consent.grant(id, 'user.demographic.date_of_birth', 'personalize')) FROM mk_many WHERE id % 2 = 0;
SELECT count(consent.grant(id, 'user.demographic.date_of_birth', 'marketing')) FROM mk_many WHERE id % 2 = 1;
SET ROLE mk_app;
SELECT * FROM mk_many_check();
RESET ROLE;
SELECT count(consent.grant(id, 'user.contact.address', 'personalize')) FROM mk_many WHERE id % 3 <> 0;
SELECT count(consent.grant(id, 'user.contact.address', 'marketing')) FROM mk_many WHERE id % 3 = 0;
SET ROLE mk_app;
SELECT * FROM mk_many_check();
RESET ROLE;
-- more events per subject (for marketing), each read by consent.granted():
-- every record moves once per round
DO $$
DECLARE c text; n bigint;
BEGIN
    FOREACH c IN ARRAY ARRAY['user.contact.phone_number', 'user.behavior.purchase_history', 'user.device.ip_address',
                             'user.behavior.search_history', 'user.name'] LOOP
        PERFORM count(consent.grant(id, c, 'marketing')) FROM mk_many;
        SELECT count(*) INTO n FROM mk_many WHERE consent.granted(id, c, 'marketing');
        IF n <> 600 THEN
            RAISE EXCEPTION 'granted % for % of 600 subjects', c, n;
        END IF;
    END LOOP;
END
$$;
SET ROLE mk_app;
SELECT * FROM mk_many_check();
RESET ROLE;
SELECT count(consent.withdraw(id, 'user.contact', 'personalize')) FROM mk_many WHERE id % 4 = 0;
SET ROLE mk_app;
SELECT * FROM mk_many_check();
RESET ROLE;
RESET consent.purpose;
