-- sql_fuzz.sql — the SQL side of `make fuzz` (test/harness/fuzz.sh, README.md):
-- random mask specs, keys, subjects, type names and values (mutated from
-- seeds, any bytes but NUL, valid UTF-8 or not) fed to consent.mask_value,
-- consent.check_mask, consent.define_category, consent.define_purpose,
-- consent.grant, consent.withdraw, consent.granted, consent.set_mask,
-- consent.discover and masked reads, in a real server with the extension
-- preloaded.  This file creates the playground and the generator;
-- fuzz.sh then runs batches of SELECT fz_statement() ... \gexec.
--
-- Every generated statement is SELECT fz_try(op, sql): errors are expected
-- (most inputs are bad) and counted per operation and SQLSTATE in
-- fz_outcomes; internal errors (XX000, 58xxx) and out of memory are findings
-- (fz_findings, with the statement).  A crash ends the connection: the
-- server log names the statement that was running.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_consent;
-- text from arbitrary bytes (input functions would refuse invalid UTF-8)
CREATE CAST (bytea AS text) WITHOUT FUNCTION;
CREATE FUNCTION fz_text(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1::text';

CREATE TABLE fz_outcomes (op text, outcome text, n bigint NOT NULL, PRIMARY KEY (op, outcome));
CREATE TABLE fz_findings (op text, sqlstate text, message text, sql text);

-- Runs one generated statement; rollback => undo what it did (writes that
-- would pile up, SET LOCAL ROLE of a masked read).
CREATE FUNCTION fz_try(op text, sql text, rollback boolean DEFAULT false) RETURNS void LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    st text := 'ok';
    msg text;
BEGIN
    BEGIN
        EXECUTE sql;
        IF rollback THEN
            RAISE EXCEPTION 'roll back' USING ERRCODE = 'FZ000';
        END IF;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        IF st = 'FZ000' THEN
            st := 'ok';
        ELSIF st = 'XX000' OR st LIKE '58%' OR st = '53200' OR st = '55000' THEN
            INSERT INTO fz_findings VALUES (op, st, msg, sql);
        END IF;
    END;
    INSERT INTO fz_outcomes AS o VALUES (op, st, 1) ON CONFLICT ON CONSTRAINT fz_outcomes_pkey DO UPDATE SET n = o.n + 1;
END
$$;

-- The seeds the inputs are mutated from.
CREATE TABLE fz_seeds (kind text, s bytea);
INSERT INTO fz_seeds SELECT 'key', convert_to(k, 'UTF8') FROM unnest(ARRAY[
    'user', 'user.contact', 'user.contact.email', 'user.biometric', 'user.biometric.fingerprint', 'user.name',
    'user.device.ip_address', 'marketing', 'marketing.communications.email', 'essential.service', 'personalize',
    'fz', 'fz.a', 'fz.a.b', 'a', 'a_b.c9', 'USER', '', '.', 'user..x', 'user.', repeat('x', 200),
    repeat('y.', 100), 'user.contact.email'' OR ''1''=''1', 'erased', 'q.q.q']) k;
INSERT INTO fz_seeds SELECT 'spec', convert_to(k, 'UTF8') FROM unnest(ARRAY[
    'null', 'redact', 'partial(2,2)', 'partial(0,0)', 'partial(1000,1000)', 'partial( 1 , 1 )', 'partial(1001,0)',
    'email', 'initials', 'hash', 'generalize', 'year', 'month', ' EMAIL ', 'pg_catalog.upper',
    '"pg_catalog"."lower"', 'public.fz_mask', 'public.fz_mask_int', 'public.fz_proc', 'consent.version',
    'partial(1,1); SELECT 1', 'a.b.c']) k;
INSERT INTO fz_seeds SELECT 'value', convert_to(k, 'UTF8') FROM unnest(ARRAY[
    'Zoë Ødegård', 'jane.doe@example.com', '@', '', ' ', 'a@b@c', '@example.com', 'x@',
    '👩‍👩‍👧 family', E'e\u0301\u0302\u0303', '🇩🇪🇳🇴', '한국어', repeat('x', 300), 'ǅungla', 'straße',
    'ﬁne', 'İstanbul', 'ΣΊΣΥΦΟΣ', E'\u200d\u200d', E'tab\tnew\nline', E'\u00a0nbsp', E'\u3000ideo',
    '+49 30 1234567', '192.0.2.1', '2001:db8::1', '1987-06-05', '{"a": 1}']) k
UNION ALL SELECT 'value', '\xc328'::bytea UNION ALL SELECT 'value', '\xe282'::bytea
UNION ALL SELECT 'value', '\xeda080'::bytea UNION ALL SELECT 'value', '\xf4908080'::bytea;
INSERT INTO fz_seeds SELECT 'subject', convert_to(k, 'UTF8') FROM unnest(ARRAY[
    '1', '-1', '9223372036854775807', '00000000-0000-0000-0000-000000000001', 'o''brien', ' ', 'ñ',
    'erased:abc', E'multi\nline', 'x']) k;
INSERT INTO fz_seeds SELECT 'typename', convert_to(k, 'UTF8') FROM unnest(ARRAY[
    'fz_t1', 'public.fz_t2', 'consent.fz_t3', 'Bad', 'x y', 'pg_catalog.fz_t4', 'fz_t5; SELECT 1',
    '"quoted"']) k;
-- interesting byte sequences to insert
CREATE TABLE fz_bits (b bytea);
INSERT INTO fz_bits VALUES ('\xcc88'), ('\xe2808d'), ('\xefb88f'), ('\xf09f8fbd'), ('\xf09f87a9'), ('\xc2a0'),
    ('\x40'), ('\x2e'), ('\x2c'), ('\x28'), ('\x29'), ('\x22'), ('\x27'), ('\x5c'), ('\x20'), ('\x09'), ('\x0a'),
    ('\x80'), ('\xc3'), ('\xe282'), ('\xff'), ('\xc0af'), ('\x30'), ('\x39'), ('\x5f');

-- A mutated copy of a random seed of the kind (at most 4096 bytes, no NUL).
CREATE FUNCTION fz_bytes(kind text) RETURNS bytea LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    b bytea;
    pos int;
BEGIN
    SELECT s INTO b FROM fz_seeds f WHERE f.kind = kind ORDER BY random() LIMIT 1;
    FOR i IN 1..floor(random() * 5)::int LOOP
        pos := floor(random() * (length(b) + 1))::int;
        CASE floor(random() * 7)::int
            WHEN 0 THEN b := overlay(b PLACING (SELECT f.b FROM fz_bits f ORDER BY random() LIMIT 1) FROM pos + 1 FOR 0);
            WHEN 1 THEN IF pos < length(b) THEN b := overlay(b PLACING '' FROM pos + 1 FOR 1); END IF;
            WHEN 2 THEN IF pos < length(b) THEN b := set_byte(b, pos, 1 + floor(random() * 255)::int); END IF;
            WHEN 3 THEN b := b || (SELECT s FROM fz_seeds ORDER BY random() LIMIT 1);
            WHEN 4 THEN b := b || b;
            WHEN 5 THEN b := substring(b FROM 1 FOR pos);
            ELSE b := overlay(b PLACING set_byte('\x00'::bytea, 0, 1 + floor(random() * 255)::int) FROM pos + 1 FOR 0);
        END CASE;
        b := substring(b FROM 1 FOR 4096);
    END LOOP;
    RETURN b;
END
$$;
-- As SQL: text from the bytes (any but NUL), written in hex (the bytea to
-- text cast above is the binary one: encode() gives the hex).
CREATE FUNCTION fz_hex(b bytea) RETURNS text LANGUAGE sql AS $$ SELECT format('%L::bytea', '\x' || encode(b, 'hex')) $$;
CREATE FUNCTION fz_str(kind text) RETURNS text LANGUAGE sql AS
    $$ SELECT 'fz_text(' || fz_hex(fz_bytes(kind)) || ')' $$;

-- A value of a random type, as SQL.
CREATE FUNCTION fz_value() RETURNS text LANGUAGE sql AS $$
    SELECT CASE floor(random() * 12)::int
        WHEN 0 THEN fz_str('value')
        WHEN 1 THEN fz_str('value') || '::varchar'
        WHEN 2 THEN fz_str('value') || '::char(' || (1 + floor(random() * 20)::int) || ')'
        WHEN 3 THEN fz_str('value') || '::consent.name'
        WHEN 4 THEN fz_str('value') || '::consent.email'
        WHEN 5 THEN fz_hex(fz_bytes('value'))
        WHEN 6 THEN format('(date ''2000-01-01'' + %s)', floor(random() * 2e6)::int - 1000000)
        WHEN 7 THEN format('to_timestamp(%s)', floor(random() * 1e11)::bigint - 5e10::bigint)
        WHEN 8 THEN format('to_timestamp(%s)::timestamp', floor(random() * 1e10)::bigint)
        WHEN 9 THEN format('%L::inet', CASE WHEN random() < 0.5
            THEN format('%s.%s.%s.%s/%s', floor(random()*256), floor(random()*256), floor(random()*256), floor(random()*256), floor(random()*33))
            ELSE format('2001:db8:%s::%s/%s', to_hex(floor(random()*65536)::int), to_hex(floor(random()*65536)::int), floor(random()*129)) END)
        WHEN 10 THEN '''infinity''::date'
        ELSE floor(random() * 1000)::text END
$$;

CREATE FUNCTION fz_type() RETURNS text LANGUAGE sql AS $$
    SELECT (ARRAY['text', 'varchar', 'char', 'bytea', 'date', 'timestamp', 'timestamptz', 'inet', 'cidr',
                  'integer', 'jsonb', 'consent.email', 'consent.key', 'fz_enum'])[1 + floor(random() * 14)::int]
$$;

-- A subject of a random type, as SQL.
CREATE FUNCTION fz_subject() RETURNS text LANGUAGE sql AS $$
    SELECT CASE floor(random() * 4)::int
        WHEN 0 THEN (floor(random() * 20)::int)::text || '::bigint'
        WHEN 1 THEN format('%L::uuid', '00000000-0000-0000-0000-0000000000' || lpad((floor(random() * 20)::int)::text, 2, '0'))
        WHEN 2 THEN format('%L::text', floor(random() * 20)::int)
        ELSE fz_str('subject') END
$$;

-- A key: mostly mutated, sometimes a valid one unchanged.
CREATE FUNCTION fz_key(kind text) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN random() < 0.4 THEN fz_str('key')
        WHEN kind = 'category' THEN quote_literal((SELECT key FROM consent.categories ORDER BY random() LIMIT 1))
        ELSE quote_literal((SELECT key FROM consent.purposes ORDER BY random() LIMIT 1)) END
$$;

-- The playground: a protected table with every tagged type, an
-- application role, mask functions, an enum.
CREATE TYPE fz_enum AS ENUM ('a', 'b');
CREATE FUNCTION public.fz_mask(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT left(t, 1) || '...' $$;
CREATE FUNCTION public.fz_mask_int(i integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 0';
CREATE PROCEDURE public.fz_proc(t text) LANGUAGE sql AS 'SELECT 1';
CREATE ROLE fz_app;
CREATE TABLE fz_t (id bigint, email consent.email, name consent.name, phone consent.phone, address consent.address,
                   born consent.birthdate, ip consent.ip_address, fp consent.fingerprint, dna consent.dna,
                   history consent.search_history, purchases consent.purchase_history, note text);
SELECT consent.protect('fz_t', 'id');
INSERT INTO fz_t SELECT g, 'user' || g || '@example.com', 'Zoë Ødegård ' || g, '+49 30 ' || g, 'Street ' || g,
                        date '1980-01-01' + g * 100, ('192.0.2.' || g)::inet, '\x0102', '\x0304', 'search ' || g,
                        '{"item": 1}', 'n' || g
                   FROM generate_series(1, 20) g;
GRANT SELECT, INSERT ON fz_t TO fz_app;
SELECT consent.allow_purpose('fz_app', p) FROM unnest(ARRAY['personalize', 'marketing', 'essential']) p;

-- A masked read: as fz_app, under a random purpose (rolled back by fz_try).
CREATE FUNCTION fz_read(purpose text, columns text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL ROLE fz_app;
    PERFORM set_config('consent.purpose', purpose, true);
    EXECUTE format('SELECT count(*), max(t::text) FROM (SELECT %s FROM fz_t) t', columns);
END
$$;

-- One random statement.
CREATE FUNCTION fz_statement() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    op int := floor(random() * 13)::int;
BEGIN
    RETURN CASE op
        WHEN 0 THEN format('SELECT fz_try(%L, %L)', 'mask_value',
                           format('SELECT consent.mask_value(%s, %s)', fz_value(), fz_str('spec')))
        WHEN 1 THEN format('SELECT fz_try(%L, %L)', 'mask_value',
                           format('SELECT consent.mask_value(%s, %L)', fz_value(),
                                  (SELECT convert_from(s, 'UTF8') FROM fz_seeds WHERE kind = 'spec' ORDER BY random() LIMIT 1)))
        WHEN 2 THEN format('SELECT fz_try(%L, %L)', 'check_mask',
                           format('SELECT consent.check_mask(%s, %L)', fz_str('spec'), fz_type()))
        WHEN 3 THEN format('SELECT fz_try(%L, %L, true)', 'define_category',
                           format('SELECT consent.define_category(%s, %L, %s, %s, %s, %s)', fz_key('category'), fz_type(),
                                  fz_str('typename'), fz_str('spec'), CASE WHEN random() < 0.3 THEN 'true' ELSE 'false' END,
                                  fz_str('value')))
        WHEN 4 THEN format('SELECT fz_try(%L, %L, true)', 'define_purpose',
                           format('SELECT consent.define_purpose(%s, %L, ARRAY[%s]::text[], %s)', fz_key('purpose'),
                                  (ARRAY['consent', 'contract', 'legitimate_interest', 'x'])[1 + floor(random() * 4)::int],
                                  CASE WHEN random() < 0.5 THEN '' ELSE fz_key('category') END, fz_str('value')))
        WHEN 5 THEN format('SELECT fz_try(%L, %L)', 'grant',
                           format('SELECT consent.grant(%s, %s, %s, %s)', fz_subject(), fz_key('category'), fz_key('purpose'),
                                  CASE WHEN random() < 0.7 THEN 'NULL' ELSE format('now() + interval ''%s seconds''', floor(random() * 200) - 100) END))
        WHEN 6 THEN format('SELECT fz_try(%L, %L)', 'withdraw',
                           format('SELECT consent.withdraw(%s, %s, %s)', fz_subject(), fz_key('category'), fz_key('purpose')))
        WHEN 7 THEN format('SELECT fz_try(%L, %L)', 'granted',
                           format('SELECT consent.granted(%s, %s, %s, %s)', fz_subject(), fz_key('category'), fz_key('purpose'),
                                  CASE WHEN random() < 0.5 THEN 'NULL' ELSE format('now() - interval ''%s seconds''', floor(random() * 100)) END))
        WHEN 8 THEN format('SELECT fz_try(%L, %L)', 'set_mask',
                           format('SELECT consent.set_mask(%L, %L, %s)', 'fz_t',
                                  (ARRAY['email', 'name', 'phone', 'address', 'born', 'ip', 'fp', 'dna', 'history', 'purchases', 'note', 'nope'])[1 + floor(random() * 12)::int],
                                  CASE WHEN random() < 0.5 THEN fz_str('spec') ELSE quote_literal((SELECT convert_from(s, 'UTF8') FROM fz_seeds WHERE kind = 'spec' ORDER BY random() LIMIT 1)) END))
        WHEN 9 THEN format('SELECT fz_try(%L, %L, true)', 'masked read',
                           format('SELECT fz_read(%L, %L)',
                                  (ARRAY['', 'personalize', 'marketing', 'essential.service', 'marketing.communications.email', 'analytics'])[1 + floor(random() * 6)::int],
                                  (ARRAY['*', 'email, name', 'phone', 'born, ip', 'fp, dna', 'history, purchases', 'fz_t', 'row_to_json(fz_t)'])[1 + floor(random() * 8)::int]))
        WHEN 10 THEN format('SELECT fz_try(%L, %L)', 'insert',
                           format('INSERT INTO fz_t (id, email, name, phone, history) VALUES (%s, %s, %s, %s, %s)',
                                  floor(random() * 40)::int, fz_str('value'), fz_str('value'), fz_str('value'), fz_str('value')))
        WHEN 11 THEN format('SELECT fz_try(%L, %L)', 'discover',
                           format('SELECT count(*) FROM consent.discover(%L, %s)', 'public', floor(random() * 50)::int - 5))
        ELSE format('SELECT fz_try(%L, %L)', 'mask_value',
                    format('SELECT consent.mask_value(%s, %s)', fz_value(), fz_str('spec')))
    END;
END
$$;
