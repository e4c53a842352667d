-- Side channels: statistics, triggers, error messages.
CREATE TABLE sc_customers (id bigint PRIMARY KEY, email consent.email UNIQUE, name consent.name, note text);
INSERT INTO sc_customers SELECT g, 'person' || g || '@example.com', 'Person ' || g, 'note ' || g FROM generate_series(1, 200) g;
SELECT consent.protect('sc_customers', 'id');
CREATE ROLE sc_app;
GRANT SELECT, INSERT, UPDATE ON sc_customers TO sc_app;
GRANT CREATE ON SCHEMA public TO sc_app;

-- planner statistics of tagged columns are never collected: pg_stats cannot show raw values
ANALYZE sc_customers;
-- (the default target: -1 up to PostgreSQL 16, NULL since 17)
SELECT attname, coalesce(attstattarget, -1) AS attstattarget FROM pg_attribute WHERE attrelid = 'sc_customers'::regclass AND attnum > 0 ORDER BY attnum;
SELECT attname, most_common_vals IS NOT NULL OR histogram_bounds IS NOT NULL AS has_values
FROM pg_stats WHERE tablename = 'sc_customers' ORDER BY attname;
-- also for tables created later, columns added later, and CREATE TABLE AS
CREATE TABLE sc_later (id int, contact consent.email);
ALTER TABLE sc_later ADD COLUMN born consent.birthdate;
CREATE TABLE sc_ctas AS SELECT * FROM sc_customers;
INSERT INTO sc_later SELECT g, 'x' || g || '@example.org', '2000-01-01' FROM generate_series(1, 50) g;
ANALYZE sc_later, sc_ctas;
SELECT tablename, attname FROM pg_stats WHERE tablename IN ('sc_later', 'sc_ctas') AND attname IN ('contact', 'born', 'email', 'name') ORDER BY 1, 2;
-- statistics that existed before protect() are deleted by it
CREATE TABLE sc_old (id bigint, email text);
INSERT INTO sc_old SELECT g, 'old' || g || '@example.com' FROM generate_series(1, 50) g;
ANALYZE sc_old;
ALTER TABLE sc_old ALTER COLUMN email TYPE consent.email;
SELECT count(*) AS email_stats_left FROM pg_stats WHERE tablename = 'sc_old' AND attname = 'email';
DROP TABLE sc_later, sc_ctas, sc_old;
-- statistics beside the table's columns: index expressions (pg_stats of the
-- index, shown to the owner whatever row-level security says) and extended
-- statistics (pg_stats_ext, pg_stats_ext_exprs) that read a tagged column
-- are never collected either, on protected tables and on others, for the
-- table's partitions too, and also after a later SET STATISTICS
SET ROLE sc_app;
CREATE TABLE sc_derived (id bigint PRIMARY KEY, email consent.email, n int) PARTITION BY RANGE (id);
CREATE TABLE sc_derived_1 PARTITION OF sc_derived FOR VALUES FROM (0) TO (1000);
INSERT INTO sc_derived SELECT g, 'd' || (g % 3) || '@example.com', g % 3 FROM generate_series(1, 300) g;
CREATE INDEX sc_derived_lower ON sc_derived (lower(email));
CREATE INDEX sc_derived_n ON sc_derived ((n + 1));
CREATE STATISTICS sc_derived_expr ON (lower(email)) FROM sc_derived_1;
CREATE STATISTICS sc_derived_mcv ON email, n FROM sc_derived_1;
CREATE STATISTICS sc_derived_plain ON n, (n * 2) FROM sc_derived_1;
ALTER STATISTICS sc_derived_expr SET STATISTICS 100;
ALTER INDEX sc_derived_1_lower_idx ALTER COLUMN 1 SET STATISTICS 100;
ANALYZE sc_derived_1;
-- the owner sees the statistics of the untagged expressions only
SELECT tablename, attname, most_common_vals IS NOT NULL AS has_values FROM pg_stats
WHERE tablename LIKE 'sc_derived%' AND attname NOT IN ('id', 'n') ORDER BY 1, 2;
SELECT statistics_name, most_common_vals IS NOT NULL AS has_values FROM pg_stats_ext
WHERE tablename LIKE 'sc_derived%' ORDER BY 1;
SELECT statistics_name, expr, most_common_vals IS NOT NULL AS has_values FROM pg_stats_ext_exprs
WHERE tablename LIKE 'sc_derived%' ORDER BY 1, 2;
RESET ROLE;
SELECT c.relname, a.attname, coalesce(a.attstattarget, -1) AS attstattarget FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relname LIKE 'sc_derived%idx' OR c.relname LIKE 'sc_derived_lower' OR c.relname LIKE 'sc_derived_n' ORDER BY 1, 2;
SELECT stxname, coalesce(stxstattarget, -1) AS stxstattarget FROM pg_statistic_ext WHERE stxname LIKE 'sc_derived%' ORDER BY 1;
-- statistics ANALYZE stored before the column was tagged are deleted
CREATE TABLE sc_old_idx (id bigint, email text, n int);
INSERT INTO sc_old_idx SELECT g, 'old' || (g % 3) || '@example.com', g % 3 FROM generate_series(1, 60) g;
CREATE INDEX sc_old_idx_lower ON sc_old_idx (lower(email));
CREATE STATISTICS sc_old_idx_expr ON (upper(email)), n FROM sc_old_idx;
ANALYZE sc_old_idx;
SELECT (SELECT count(*) FROM pg_stats WHERE tablename = 'sc_old_idx_lower' AND most_common_vals IS NOT NULL) AS index_values,
       (SELECT count(*) FROM pg_stats_ext_exprs WHERE statistics_name = 'sc_old_idx_expr' AND most_common_vals IS NOT NULL) AS expr_values;
ALTER TABLE sc_old_idx ALTER COLUMN email TYPE consent.email;
SELECT (SELECT count(*) FROM pg_stats WHERE tablename = 'sc_old_idx_lower' AND most_common_vals IS NOT NULL) AS index_values,
       (SELECT count(*) FROM pg_stats_ext_exprs WHERE statistics_name = 'sc_old_idx_expr' AND most_common_vals IS NOT NULL) AS expr_values;
DROP TABLE sc_derived, sc_old_idx;

-- triggers would see OLD/NEW unmasked: masked roles cannot attach them
SET ROLE sc_app;
CREATE TABLE sc_loot (v text);
CREATE FUNCTION sc_steal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sc_loot VALUES (OLD.email); RETURN NEW; END $$;
SELECT try($$CREATE TRIGGER steal BEFORE UPDATE ON sc_customers FOR EACH ROW EXECUTE FUNCTION sc_steal()$$);
RESET ROLE;
-- a trigger a superuser created: its function cannot be replaced by a masked owner
ALTER FUNCTION sc_steal() OWNER TO sc_app;
CREATE FUNCTION sc_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
ALTER FUNCTION sc_audit() OWNER TO sc_app;
CREATE TRIGGER audit BEFORE UPDATE ON sc_customers FOR EACH ROW EXECUTE FUNCTION sc_audit();
SET ROLE sc_app;
SELECT try($$CREATE OR REPLACE FUNCTION sc_audit() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO sc_loot VALUES (OLD.email); RETURN NEW; END'$$);
UPDATE sc_customers SET note = 'touched' WHERE id = 1;
SELECT count(*) AS looted FROM sc_loot;
-- triggers on other tables are not affected
CREATE TABLE sc_mine (v text);
CREATE TRIGGER mine BEFORE INSERT ON sc_mine FOR EACH ROW EXECUTE FUNCTION sc_steal();
DROP TABLE sc_mine;
RESET ROLE;
DROP TRIGGER audit ON sc_customers;

-- unique-violation DETAIL: only the session's own value is echoed, never another row's
SET ROLE sc_app;
SET consent.purpose = '';
SELECT try($$INSERT INTO sc_customers VALUES (1000, 'person7@example.com', 'Probe', NULL)$$);
RESET ROLE;
DROP TABLE sc_loot;
DROP FUNCTION sc_steal(), sc_audit();
REVOKE ALL ON sc_customers FROM sc_app;
REVOKE CREATE ON SCHEMA public FROM sc_app;
DROP ROLE sc_app;
