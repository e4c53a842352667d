-- Types built from tagged types are masked too; partitions fail closed.
CREATE DOMAIN public.dt_work_email AS consent.email;
CREATE TYPE public.dt_contact AS (kind text, addr consent.email);
CREATE TABLE dt_people (id bigint PRIMARY KEY, work public.dt_work_email, emails consent.email[],
                        contact public.dt_contact, note text);
INSERT INTO dt_people VALUES
    (801, 'ann@work.example', ARRAY['ann@home.example']::consent.email[], ROW('home', 'ann@private.example'), 'n1'),
    (802, 'bo@work.example', ARRAY['bo@home.example']::consent.email[], ROW('work', 'bo@private.example'), 'n2');
SELECT consent.protect('dt_people', 'id');
SELECT consent.grant(801, 'user.contact.email', 'personalize') > 0;
SELECT consent._has_tagged_column('dt_people'), consent._has_tagged_column('pg_class');
CREATE ROLE dt_app;
GRANT SELECT ON dt_people TO dt_app;
SELECT consent.allow_purpose('dt_app', 'personalize');
SET ROLE dt_app;
-- no purpose: the domain gets its base category's mask, arrays and composites are NULL
SELECT * FROM dt_people ORDER BY id;
SET consent.purpose = 'personalize';
-- 801 granted e-mail: domain and array revealed; a composite is only shown to bypass roles
SELECT * FROM dt_people ORDER BY id;
SELECT id FROM dt_people WHERE 'bo@home.example' = ANY (emails);
-- consent._mask cannot be called with other types than the column's
SELECT try(format('SELECT consent._mask(42::int, 801::bigint, %s::oid, 2::int2)', 'dt_people'::regclass::oid));
SELECT try(format('SELECT consent._mask(%L::consent.email, %L::text, %s::oid, 2::int2)', 'x@y.z', '801', 'dt_people'::regclass::oid));
RESET consent.purpose;
RESET ROLE;
-- nor from a CHECK constraint (evaluated without the planner): no hash oracle
CREATE TABLE dt_oracle (v text CHECK (consent._mask(v, NULL::bigint, 'dt_people'::regclass, 2::int2) IS NOT NULL));
SELECT try($$INSERT INTO dt_oracle VALUES ('guess@example.com')$$);
DROP TABLE dt_oracle;
SELECT * FROM dt_people ORDER BY id;
-- no statistics for any of them
ANALYZE dt_people;
SELECT attname FROM pg_stats WHERE tablename = 'dt_people' ORDER BY attname;

-- partitions and children: protected through the parent, failing closed when read directly
CREATE TABLE dt_parts (id bigint, email consent.email) PARTITION BY RANGE (id);
CREATE TABLE dt_parts_1 PARTITION OF dt_parts FOR VALUES FROM (0) TO (1000);
SELECT consent.protect('dt_parts', 'id');
CREATE TABLE dt_parts_2 PARTITION OF dt_parts FOR VALUES FROM (1000) TO (2000);
CREATE TABLE dt_parts_3 (id bigint, email consent.email);
ALTER TABLE dt_parts ATTACH PARTITION dt_parts_3 FOR VALUES FROM (2000) TO (3000);
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT string_agg(polname, ',' ORDER BY polname) FROM pg_policy WHERE polrelid = c.oid) AS policies
FROM pg_class c WHERE c.relname LIKE 'dt_parts%' AND c.relkind IN ('r', 'p') ORDER BY 1;
INSERT INTO dt_parts VALUES (801, 'p1@example.com'), (1500, 'p2@example.com'), (2500, 'p3@example.com');
SELECT consent.grant(1500, 'user.contact.email', 'personalize') > 0;
GRANT SELECT ON dt_parts, dt_parts_1, dt_parts_2, dt_parts_3 TO dt_app;
SET ROLE dt_app;
SET consent.purpose = 'personalize';
SELECT * FROM dt_parts ORDER BY id;
SELECT * FROM dt_parts_2;
SELECT * FROM dt_parts_3;
SELECT * FROM ONLY dt_parts_1;
RESET consent.purpose;
RESET ROLE;
DROP TABLE dt_parts;
-- a dropped protected table leaves the consent catalog
SELECT count(*) AS left_behind FROM consent.protected_tables WHERE relation::text LIKE 'dt_parts%';
REVOKE ALL ON dt_people FROM dt_app;
SELECT consent.revoke_purpose('dt_app', 'personalize');
DROP ROLE dt_app;
