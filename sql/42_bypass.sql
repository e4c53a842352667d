-- Reads by roles that see every value (superuser, BYPASSRLS): planned
-- without masking, counted for the audit by one qual per scan, and never
-- reused for a role whose reads are masked.
SET client_min_messages = warning;
CREATE TABLE bp_customers (id bigint PRIMARY KEY, email consent.email, name consent.name, note text);
-- subjects no other test of the suite uses
INSERT INTO bp_customers VALUES (7101, 'ann@example.com', 'Ann Smith', 'a'), (7102, 'bob@example.com', NULL, 'b'),
    (7103, NULL, 'Cem Yilmaz', 'c');
SELECT consent.protect('bp_customers', 'id');
SELECT consent.grant(7101, 'user.contact.email', 'personalize') > 0 AS granted;
CREATE TABLE bp_orders (order_id int PRIMARY KEY, customer_id bigint, shipping consent.address);
INSERT INTO bp_orders VALUES (10, 7101, 'Hauptstraße 1'), (11, 7102, 'Ringweg 2');
SELECT consent.protect('bp_orders', 'customer_id');
CREATE TABLE bp_people (id bigint PRIMARY KEY, name consent.name);
SELECT consent.protect('bp_people', 'id');
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bp_app') THEN CREATE ROLE bp_app; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bp_bypass') THEN CREATE ROLE bp_bypass BYPASSRLS; END IF;
END $$;
GRANT SELECT ON bp_customers, bp_orders, bp_people TO bp_app, bp_bypass;
SELECT consent.allow_purpose('bp_app', 'personalize');
SET consent.track_disclosures = on;
SELECT consent.disclosures_reset();
-- plans with the OIDs the counting qual names left out
CREATE FUNCTION bp_counts(r name) RETURNS TABLE (relation text, column_name text, revealed bigint, masked bigint)
    LANGUAGE sql AS $$ SELECT relation, column_name, revealed, masked FROM consent.disclosures
                       WHERE role = r ORDER BY 1, 2 $$;

-- the superuser's plan: plain columns, one counting qual per scan
SELECT explain_lines($q$(COSTS OFF, VERBOSE) SELECT email, name FROM bp_customers WHERE id > 0$q$);
SELECT explain_lines($q$(COSTS OFF, VERBOSE) SELECT count(*) FROM bp_customers$q$);
SELECT id, email, name FROM bp_customers ORDER BY id;
-- counted as revealed: the non-NULL cells of the columns read, per row read
SELECT * FROM bp_counts(current_user);
SELECT count(*) FROM bp_customers;
SELECT * FROM bp_counts(current_user);
-- only the rows the scan's other quals keep are counted: email 1, name 2
SELECT consent.disclosures_reset();
SELECT email, name FROM bp_customers WHERE note <> 'b' ORDER BY id;
SELECT * FROM bp_counts(current_user);
-- likewise when another qual runs a subquery per row (a SubPlan): all
-- three rows kept, email 2, name 2
SELECT consent.disclosures_reset();
SELECT explain_has($q$SELECT email, name FROM bp_customers c
  WHERE (SELECT count(*) FROM bp_orders o WHERE o.customer_id = c.id) > 0 OR note = 'c'$q$, 'SubPlan') AS subplan;
SELECT email, name FROM bp_customers c
  WHERE (SELECT count(*) FROM bp_orders o WHERE o.customer_id = c.id) > 0 OR note = 'c' ORDER BY id;
SELECT * FROM bp_counts(current_user);
-- a table scanned twice (a self-join): each scan counts the columns the
-- statement reads of the table, 4 and 4
SELECT consent.disclosures_reset();
SELECT a.email, b.name FROM bp_customers a JOIN bp_customers b ON b.id = a.id + 1 ORDER BY a.id;
SELECT * FROM bp_counts(current_user);

-- a BYPASSRLS role: the same, counted under its name
SET ROLE bp_bypass;
SELECT c.name, o.shipping FROM bp_orders o JOIN bp_customers c ON c.id = o.customer_id ORDER BY o.order_id;
-- a column of a join (USING) is read on both sides
SELECT substring(l FROM 'consent\._read_unmasked\([^)]*\)') AS counting
  FROM explain_lines($q$(COSTS OFF, VERBOSE) SELECT name FROM bp_customers JOIN bp_people USING (id, name)$q$) l
 WHERE l ~ 'read_unmasked' ORDER BY 1;
-- a predicate on a tagged column sees the plain value, and may use an index
SELECT id FROM bp_customers WHERE email = 'bob@example.com';
RESET ROLE;
SELECT * FROM bp_counts('bp_bypass');

-- an index-only scan of a tagged column counts the index's cells
CREATE INDEX bp_email ON bp_customers (email);
VACUUM ANALYZE bp_customers;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT explain_lines($q$(COSTS OFF, VERBOSE) SELECT email FROM bp_customers WHERE email > 'a'$q$);
SELECT consent.disclosures_reset();
SELECT email FROM bp_customers WHERE email > 'a' ORDER BY email;
SELECT * FROM bp_counts(current_user);
RESET enable_seqscan;
RESET enable_bitmapscan;

-- a partitioned table: the partitions' scans count under the table read
CREATE TABLE bp_parted (id bigint, email consent.email) PARTITION BY RANGE (id);
CREATE TABLE bp_parted_1 PARTITION OF bp_parted FOR VALUES FROM (0) TO (10);
CREATE TABLE bp_parted_2 (email consent.email, id bigint);
ALTER TABLE bp_parted ATTACH PARTITION bp_parted_2 FOR VALUES FROM (10) TO (20);
INSERT INTO bp_parted VALUES (1, 'p1@example.com'), (11, 'p11@example.com'), (12, NULL);
SELECT consent.protect('bp_parted', 'id');
SELECT consent.disclosures_reset();
SELECT explain_lines($q$(COSTS OFF, VERBOSE) SELECT email FROM bp_parted$q$);
SELECT email FROM bp_parted ORDER BY 1;
SELECT * FROM bp_counts(current_user);

-- a prepared statement planned for the superuser is planned again for a
-- role whose reads are masked (SET ROLE, set_config('role'))
PREPARE bp_q AS SELECT email FROM bp_customers WHERE id = 7102;
EXECUTE bp_q; EXECUTE bp_q; EXECUTE bp_q; EXECUTE bp_q; EXECUTE bp_q; EXECUTE bp_q;
SET ROLE bp_app;
SET consent.purpose = 'personalize';
EXECUTE bp_q;
RESET ROLE;
EXECUTE bp_q;
SELECT set_config('role', 'bp_app', false) IS NOT NULL AS role_set;
EXECUTE bp_q;
RESET ROLE;
-- a role that loses BYPASSRLS: its cached plans are made again
GRANT bp_bypass TO bp_app;
SET ROLE bp_bypass;
PREPARE bp_q2 AS SELECT email FROM bp_customers WHERE id = 7102;
EXECUTE bp_q2; EXECUTE bp_q2; EXECUTE bp_q2; EXECUTE bp_q2; EXECUTE bp_q2; EXECUTE bp_q2;
RESET ROLE;
ALTER ROLE bp_bypass NOBYPASSRLS;
SET ROLE bp_bypass;
EXECUTE bp_q2;
RESET ROLE;
ALTER ROLE bp_bypass BYPASSRLS;
DEALLOCATE bp_q2;

-- a cursor opened by the superuser refuses to go on under a masked role,
-- whether its rows were computed ahead (a sort) or are read at each fetch
BEGIN;
DECLARE bp_c CURSOR FOR SELECT email FROM bp_customers ORDER BY id;
FETCH 1 FROM bp_c;
SET ROLE bp_app;
FETCH 1 FROM bp_c;
ROLLBACK;
BEGIN;
DECLARE bp_c CURSOR FOR SELECT email FROM bp_customers WHERE id > 0;
FETCH 1 FROM bp_c;
SET ROLE bp_app;
FETCH 1 FROM bp_c;
ROLLBACK;
RESET ROLE;
-- opened by a masked role, fetched by the superuser: decided at each fetch
SET ROLE bp_app;
BEGIN;
DECLARE bp_c2 CURSOR FOR SELECT email FROM bp_customers WHERE id = 7102;
RESET ROLE;
FETCH 1 FROM bp_c2;
ROLLBACK;
RESET ROLE;

-- a superuser-owned SECURITY DEFINER function called by a masked role:
-- the acting role decides, and the function's cached plan follows it
CREATE FUNCTION bp_definer(bigint) RETURNS text LANGUAGE plpgsql SECURITY DEFINER
    AS $$ DECLARE e text; BEGIN SELECT email INTO e FROM bp_customers WHERE id = $1; RETURN e; END $$;
SELECT bp_definer(7102) AS superuser_sees;
SET ROLE bp_app;
SELECT bp_definer(7102) AS app_sees;
RESET ROLE;
SELECT bp_definer(7102) AS superuser_sees_again;

-- parallel workers count the cells they read
CREATE TABLE bp_many (id bigint PRIMARY KEY, email consent.email);
INSERT INTO bp_many SELECT g, CASE WHEN g % 3 <> 0 THEN 'm' || g || '@example.com' END
  FROM generate_series(1, 30000) g;
SELECT consent.protect('bp_many', 'id');
ANALYZE bp_many;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
SELECT explain_has('SELECT count(email) FROM bp_many', 'Workers Launched: [1-9]', true) AS workers_launched;
SELECT consent.disclosures_reset();
SELECT count(email) FROM bp_many;
SELECT * FROM bp_counts(current_user);
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;

-- the counting function is the planner's: called in SQL it is refused
SELECT consent._read_unmasked('bp_customers'::regclass, 10, '{2}', email) FROM bp_customers;
SELECT 1 FROM bp_customers WHERE consent._read_unmasked('bp_customers'::regclass, 10, '{2}', email);
SET ROLE bp_app;
SELECT consent._read_unmasked('bp_customers'::regclass, 10, '{2}', VARIADIC ARRAY['x']);
RESET ROLE;

DROP FUNCTION bp_definer(bigint);
DROP FUNCTION bp_counts(name);
DROP TABLE bp_customers, bp_orders, bp_parted, bp_many, bp_people;
REVOKE bp_bypass FROM bp_app;
SELECT consent.revoke_purpose('bp_app', 'personalize');
DROP ROLE bp_app, bp_bypass;
