-- Side channels: statistics, triggers, error messages.
CREATE TABLE sc_customers (id bigint PRIMARY KEY, email consent.email UNIQUE, name consent.name, note text);
INSERT INTO sc_customers SELECT g, 'person' || g || '@example.com', 'Person ' || g, 'note ' || g FROM generate_series(1, 200) g;
SELECT consent.protect('sc_customers', 'id');
CREATE ROLE sc_app;
GRANT SELECT, INSERT, UPDATE ON sc_customers TO sc_app;
GRANT CREATE ON SCHEMA public TO sc_app;

-- planner statistics of tagged columns are never collected: pg_stats cannot show raw values
ANALYZE sc_customers;
SELECT attname, attstattarget FROM pg_attribute WHERE attrelid = 'sc_customers'::regclass AND attnum > 0 ORDER BY attnum;
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
