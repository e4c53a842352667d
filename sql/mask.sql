--
-- The masks: consent.mask_value and consent.check_mask (src/mask.cpp).
-- Every mask, every type it accepts, every parse error with its SQLSTATE,
-- Unicode text, invalid UTF-8, NULLs, keyed pseudonyms, function masks and a
-- database that is not UTF-8.  docs/masks.md is the reference.
--
SET DateStyle = 'ISO, YMD';
SET TimeZone = 'UTC';
CREATE SCHEMA mask_test;

-- 'ok', or the SQLSTATE and message consent.check_mask raises.
CREATE FUNCTION mask_test.check(mask text, type regtype) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM consent.check_mask(mask, type);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- The masked value as text ('<NULL>' for NULL), or the SQLSTATE and message.
CREATE FUNCTION mask_test.try(value anyelement, mask text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN coalesce(consent.mask_value(value, mask)::text, '<NULL>');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

CREATE DOMAIN mask_test.email AS text CHECK (VALUE LIKE '%@%');
CREATE DOMAIN mask_test.birthdate AS date;
CREATE DOMAIN mask_test.ip AS inet;

-- Function masks used below.
CREATE FUNCTION mask_test.shout(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT upper($1) || '!' $$;
CREATE FUNCTION mask_test.decade(integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT $1 / 10 * 10 $$;
CREATE FUNCTION mask_test.keys_only(jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT jsonb_agg(k ORDER BY k) FROM jsonb_object_keys($1) k $$;
CREATE FUNCTION mask_test.nothing(text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN NULL; END $$;
CREATE FUNCTION mask_test.fail(text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE EXCEPTION 'mask function refuses %', length($1) USING ERRCODE = 'XM001', HINT = 'Raised on purpose.';
END $$;
-- a mask function that itself masks
CREATE FUNCTION mask_test.nested(text) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT consent.mask_value($1, 'partial(1,0)') || '!' $$;
-- wrong signatures
CREATE FUNCTION mask_test.len(text) RETURNS integer LANGUAGE sql AS $$ SELECT length($1) $$;
CREATE FUNCTION mask_test.rows(text) RETURNS SETOF text LANGUAGE sql AS $$ SELECT $1 $$;
CREATE FUNCTION mask_test.two(text, text) RETURNS text LANGUAGE sql AS $$ SELECT $1 || $2 $$;
CREATE PROCEDURE mask_test.proc(text) LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION mask_test."Mixed Case"(text) RETURNS text LANGUAGE sql AS $$ SELECT 'mixed' $$;

--
-- 1. Parsing: consent.check_mask(mask, type)
--
SELECT mask, type, mask_test.check(mask, type::regtype)
FROM (VALUES
    -- every mask on every type it accepts
    ('null', 'text'), ('null', 'integer'), ('null', 'jsonb'), ('null', 'bytea'), ('null', 'integer[]'),
    ('redact', 'text'), ('redact', 'character varying'), ('redact', 'character'),
    ('partial(2,1)', 'text'), ('partial(0,2)', 'character varying'), ('partial(1,0)', 'character'),
    ('email', 'text'), ('email', 'character varying'), ('email', 'character'),
    ('initials', 'text'), ('initials', 'character varying'), ('initials', 'character'),
    ('year', 'date'), ('year', 'timestamp'), ('year', 'timestamptz'),
    ('month', 'date'), ('month', 'timestamp'), ('month', 'timestamptz'),
    ('generalize', 'inet'), ('generalize', 'cidr'), ('generalize', 'date'),
    ('hash', 'text'), ('hash', 'character varying'), ('hash', 'character'), ('hash', 'bytea'),
    ('mask_test.shout', 'text'), ('mask_test.decade', 'integer'), ('mask_test.keys_only', 'jsonb'),
    ('mask_test."Mixed Case"', 'text'), ('MASK_TEST.SHOUT', 'text'),
    -- domains are checked as their base type
    ('email', 'mask_test.email'), ('year', 'mask_test.birthdate'), ('generalize', 'mask_test.ip'),
    ('mask_test.shout', 'mask_test.email'),
    -- spelling: spaces, case, leading zeros, bounds
    (' partial ( 2 , 1 ) ', 'text'), ('PARTIAL(0,2)', 'text'), ('Email', 'text'), (E'\tredact\n', 'text'),
    ('partial(0,0)', 'text'), ('partial(1000,1000)', 'text'), ('partial(0007,01)', 'text'),
    -- malformed: 22023
    ('', 'text'), ('   ', 'text'), ('partial', 'text'), ('partial()', 'text'), ('partial(2)', 'text'),
    ('partial(2,1', 'text'), ('partial(2,1))', 'text'), ('partial(2;1)', 'text'), ('partial(-1,2)', 'text'),
    ('partial(+1,2)', 'text'), ('partial(1.5,2)', 'text'), ('partial(a,b)', 'text'), ('partial(1001,0)', 'text'),
    ('partial(0,99999999999999999999)', 'text'), ('partial(2,1) x', 'text'), ('partialx', 'text'),
    ('redacted', 'text'), ('upper', 'text'), ('mask_test.', 'text'), ('.shout', 'text'),
    ('a.b.c', 'text'), ('"unterminated.x', 'text'), ('mask_test.shout(text)', 'text'), ('mask_test.sh out', 'text'),
    -- a mask on a type it does not fit: 22023
    ('redact', 'integer'), ('redact', 'bytea'), ('partial(1,1)', 'date'), ('email', 'bytea'),
    ('initials', 'jsonb'), ('year', 'text'), ('year', 'time'), ('month', 'interval'),
    ('generalize', 'text'), ('generalize', 'timestamp'), ('generalize', 'macaddr'),
    ('hash', 'integer'), ('hash', 'inet'), ('hash', 'jsonb'), ('email', 'mask_test.birthdate'),
    -- unknown functions: 42883
    ('mask_test.nope', 'text'), ('no_such_schema.shout', 'text'), ('mask_test.shout', 'integer'),
    -- wrong signatures: 42804
    ('mask_test.len', 'text'), ('mask_test.rows', 'text'), ('mask_test.two', 'text'),
    ('mask_test.proc', 'text'), ('pg_catalog.max', 'text'), ('mask_test.decade', 'bigint'),
    ('pg_catalog.lower', 'integer')
) AS t(mask, type);

-- as a user sees them
SELECT consent.check_mask('partial(2)', 'text');
SELECT consent.check_mask('partial(1,1001)', 'text');
SELECT consent.check_mask('rot13', 'text');
SELECT consent.check_mask('shout', 'text');
SELECT consent.check_mask('redact', 'date');
SELECT consent.check_mask('hash', 'integer');
SELECT consent.check_mask('mask_test.nope', 'text');
SELECT consent.check_mask('mask_test.decade', 'text');
SELECT consent.check_mask('mask_test.len', 'text');
SELECT consent.check_mask('mask_test.rows', 'text');
SELECT consent.check_mask('mask_test.proc', 'text');
SELECT consent.check_mask(NULL, 'text');
SELECT consent.check_mask('null', NULL);
SELECT consent.check_mask('null', 0::oid::regtype);

-- the SQLSTATEs, by name
DO $$
DECLARE
    cases text[][] := ARRAY[['partial(2)', 'text'], ['redact', 'integer'], ['mask_test.nope', 'text'],
                            ['mask_test.len', 'text'], [NULL, 'text']];
    c text[];
BEGIN
    FOREACH c SLICE 1 IN ARRAY cases LOOP
        BEGIN
            PERFORM consent.check_mask(c[1], c[2]::regtype);
        EXCEPTION
            WHEN invalid_parameter_value THEN RAISE NOTICE '% on %: invalid_parameter_value', c[1], c[2];
            WHEN undefined_function THEN RAISE NOTICE '% on %: undefined_function', c[1], c[2];
            WHEN datatype_mismatch THEN RAISE NOTICE '% on %: datatype_mismatch', c[1], c[2];
            WHEN null_value_not_allowed THEN RAISE NOTICE '% on %: null_value_not_allowed', c[1], c[2];
        END;
    END LOOP;
END $$;

--
-- 2. NULLs
--
SELECT consent.mask_value(NULL::text, 'redact') IS NULL AS null_value,
       consent.mask_value(NULL::integer, 'null') IS NULL AS null_int,
       consent.mask_value(NULL::text, 'mask_test.nothing') IS NULL AS null_fn;
SELECT consent.mask_value('x'::text, NULL);
SELECT consent.mask_value(NULL::text, NULL);
SELECT consent.mask_value('x'::text, 'year');

--
-- 3. null: any type becomes NULL
--
SELECT consent.mask_value('secret'::text, 'null') IS NULL AS text,
       consent.mask_value(42, 'null') IS NULL AS int,
       consent.mask_value('{"a": 1}'::jsonb, 'null') IS NULL AS jsonb,
       consent.mask_value('\x0102'::bytea, 'null') IS NULL AS bytea,
       consent.mask_value(ARRAY[1, 2], 'null') IS NULL AS int_array,
       consent.mask_value('1.2.3.4'::inet, 'null') IS NULL AS inet,
       consent.mask_value('a@b'::mask_test.email, 'null') IS NULL AS domain;

--
-- 4. redact: the constant '[redacted]', of the input type
--
SELECT v, consent.mask_value(v, 'redact') AS masked
FROM (VALUES ('Jane Doe'::text), (''), ('Ødegård'), (U&'\+01F469\+01F3FD\200D\+01F4BB')) AS t(v);
SELECT consent.mask_value('Jane'::varchar(4), 'redact') AS varchar,
       pg_typeof(consent.mask_value('Jane'::varchar(4), 'redact')) AS varchar_type,
       consent.mask_value('Jane'::char(8), 'redact') AS bpchar,
       pg_typeof(consent.mask_value('Jane'::char(8), 'redact')) AS bpchar_type,
       consent.mask_value('jane@example.com'::mask_test.email, 'redact') AS domain,
       pg_typeof(consent.mask_value('jane@example.com'::mask_test.email, 'redact')) AS domain_type;

--
-- 5. partial(prefix,suffix): counts user-perceived characters
--
SELECT v, m, consent.mask_value(v, m) AS masked
FROM (VALUES
    ('Jane'::text, 'partial(1,1)'), ('Jane', 'partial(2,1)'), ('Jane', 'partial(2,2)'), ('Jane', 'partial(3,2)'),
    ('Jane', 'partial(0,0)'), ('Jane', 'partial(4,0)'), ('Jane', 'partial(0,4)'), ('Jane', 'partial(1000,1000)'),
    ('+49 170 1234567', 'partial(0,2)'), ('+49 170 1234567', 'partial(3,0)'), ('+49 170 1234567', 'partial(3,2)'),
    ('J', 'partial(0,0)'), ('J', 'partial(1,0)'), ('', 'partial(0,0)'), ('', 'partial(1,1)'),
    ('abc  ', 'partial(0,1)'), ('Ødegård', 'partial(1,1)'), ('Ødegård', 'partial(2,3)'), ('Ødegård', 'partial(3,4)'),
    ('한국어', 'partial(1,1)'), ('한국어', 'partial(1,2)'), ('שלום', 'partial(1,1)'), ('مرحبا', 'partial(2,0)')
) AS t(v, m);

-- text types and domains keep their type; character(n) padding is not part of the value
SELECT consent.mask_value('ab'::char(10), 'partial(0,1)') AS bpchar,
       pg_typeof(consent.mask_value('ab'::char(10), 'partial(0,1)')) AS bpchar_type,
       consent.mask_value('Jane'::varchar(10), 'partial(1,0)') AS varchar,
       consent.mask_value('jane@example.com'::mask_test.email, 'partial(2,4)') AS domain,
       pg_typeof(consent.mask_value('jane@example.com'::mask_test.email, 'partial(2,4)')) AS domain_type;

-- never cut inside a character: decomposed accents, Hangul jamo, emoji
-- sequences (ZWJ, skin tones, flags), RTL text with marks
SELECT name, m, consent.mask_value(v, m) AS masked, consent.mask_value(v, m) = expected AS ok
FROM (VALUES
    ('José NFD', U&'Jose\0301', 'partial(0,1)', U&'***e\0301'),
    ('José NFD', U&'Jose\0301', 'partial(3,0)', 'Jos***'),
    ('José NFD', U&'Jose\0301', 'partial(1,3)', '***'),
    ('Ødegård NFD', U&'\00D8dega\030Ard', 'partial(5,0)', U&'\00D8dega\030A***'),
    ('Ødegård NFD', U&'\00D8dega\030Ard', 'partial(0,3)', U&'***a\030Ard'),
    ('Hangul jamo', U&'\1112\1161\11AB\AD6D\C5B4', 'partial(1,0)', U&'\1112\1161\11AB***'),
    ('Hangul jamo', U&'\1112\1161\11AB\AD6D\C5B4', 'partial(0,2)', U&'***\AD6D\C5B4'),
    ('Hangul jamo', U&'\1112\1161\11AB\AD6D\C5B4', 'partial(2,1)', '***'),
    ('technologist', U&'\+01F469\+01F3FD\200D\+01F4BB', 'partial(1,0)', '***'),
    ('technologist', U&'\+01F469\+01F3FD\200D\+01F4BB', 'partial(0,0)', '***'),
    ('emoji mix', U&'x\+01F469\+01F3FD\200D\+01F4BB\+01F468\200D\+01F469\200D\+01F467\200D\+01F466\+01F1E9\+01F1EAy',
     'partial(2,2)', U&'x\+01F469\+01F3FD\200D\+01F4BB***\+01F1E9\+01F1EAy'),
    ('emoji mix', U&'x\+01F469\+01F3FD\200D\+01F4BB\+01F468\200D\+01F469\200D\+01F467\200D\+01F466\+01F1E9\+01F1EAy',
     'partial(3,1)', U&'x\+01F469\+01F3FD\200D\+01F4BB\+01F468\200D\+01F469\200D\+01F467\200D\+01F466***y'),
    ('emoji mix', U&'x\+01F469\+01F3FD\200D\+01F4BB\+01F468\200D\+01F469\200D\+01F467\200D\+01F466\+01F1E9\+01F1EAy',
     'partial(3,2)', '***'),
    ('thumbs', U&'\+01F44D\+01F3FF\+01F44D\+01F3FB', 'partial(1,0)', U&'\+01F44D\+01F3FF***'),
    ('Hebrew niqqud', U&'\05E9\05C1\05B8\05DC\05D5\05B9\05DD', 'partial(1,1)', U&'\05E9\05C1\05B8***\05DD'),
    ('Arabic harakat', U&'\0645\064F\062D\064E\0645\0651\064E\062F', 'partial(1,1)', U&'\0645\064F***\062F'),
    ('CRLF', E'ab\r\ncd', 'partial(3,0)', E'ab\r\n***')
) AS t(name, v, m, expected);

--
-- 6. email: first character of the local part, '***', '@' and the domain
--
SELECT v, consent.mask_value(v, 'email') AS masked
FROM (VALUES ('jane.doe@example.com'::text), ('j@x'), ('@example.com'), ('no at sign'), (''),
             ('"a@b"@example.com'), ('a@b@example.com'), ('Ødegård@exämple.no'), ('שלום@example.co.il'),
             ('JANE.DOE@EXAMPLE.COM')) AS t(v);
SELECT name, consent.mask_value(v, 'email') AS masked, consent.mask_value(v, 'email') = expected AS ok
FROM (VALUES
    ('José NFD', U&'Jose\0301@example.com', 'J***@example.com'),
    ('Élodie NFD', U&'E\0301lodie@example.fr', U&'E\0301***@example.fr'),
    ('technologist', U&'\+01F469\+01F3FD\200D\+01F4BB@example.com', U&'\+01F469\+01F3FD\200D\+01F4BB***@example.com'),
    ('Hangul jamo', U&'\1112\1161\11AB@example.kr', U&'\1112\1161\11AB***@example.kr')
) AS t(name, v, expected);
SELECT consent.mask_value('jane@example.com'::mask_test.email, 'email') AS domain,
       consent.mask_value('jane@example.com'::varchar(20), 'email') AS varchar,
       consent.mask_value('jane@example.com'::char(20), 'email') AS bpchar;

--
-- 7. initials: first character of each word, upper case, with '.'
--
SELECT v, consent.mask_value(v, 'initials') AS masked
FROM (VALUES ('Jane Mary Doe'::text), ('jane doe'), (E'  jane \t\n doe  '), ('ødegård'), ('Jean-Paul Sartre'),
             ('straße'), ('ßa'), ('ωμέγα'), ('ılgaz işık'), ('한국어 사랑'), ('דוד בן גוריון'), ('محمد علي'),
             ('X'), (''), ('   ')) AS t(v);
SELECT name, consent.mask_value(v, 'initials') AS masked, consent.mask_value(v, 'initials') = expected AS ok
FROM (VALUES
    ('Élodie NFD', U&'e\0301lodie dupont', U&'E\0301. D.'),
    ('José NFD', U&'jose\0301 garci\0301a', 'J. G.'),
    ('no-break space', U&'anne\00A0marie', 'A. M.'),
    ('ideographic space', U&'\5C71\7530\3000\592A\90CE', U&'\5C71. \592A.'),
    ('Hangul jamo', U&'\1112\1161\11AB\AD6D', U&'\1112\1161\11AB.'),
    ('emoji', U&'\+01F469\+01F3FD\200D\+01F4BB dev', U&'\+01F469\+01F3FD\200D\+01F4BB. D.'),
    ('dz digraph', U&'\01C6emal', U&'\01C4.'),
    ('Hebrew niqqud', U&'\05E9\05C1\05B8\05DC\05D5\05B9\05DD', U&'\05E9\05C1\05B8.'),
    ('Latin-1 words', 'ülrich ärmel', 'Ü. Ä.'),
    ('ASCII initials in non-ASCII text', 'jürgen müller-lüdenscheidt', 'J. M.'),
    ('Latin-1 then a mark', U&'\00E9\0301te \00F8\0308l', U&'\00C9\0301. \00D8\0308.'),
    ('soft hyphen', U&'a\00ADb c', 'A. C.'),
    ('tab after one letter', E'x\ty', 'X. Y.')
) AS t(name, v, expected);
SELECT consent.mask_value('jane doe'::varchar, 'initials') AS varchar,
       consent.mask_value('jane doe'::char(12), 'initials') AS bpchar;

--
-- 8. year and month: date, timestamp, timestamptz (in the session time zone)
--
SELECT consent.mask_value('1987-06-15'::date, 'year') AS date_year,
       consent.mask_value('1987-06-15'::date, 'month') AS date_month,
       consent.mask_value('1987-06-15 13:45:12.5'::timestamp, 'year') AS ts_year,
       consent.mask_value('1987-06-15 13:45:12.5'::timestamp, 'month') AS ts_month;
SELECT consent.mask_value('1987-06-15 13:45:12.5+00'::timestamptz, 'year') AS tstz_year,
       consent.mask_value('1987-06-15 13:45:12.5+00'::timestamptz, 'month') AS tstz_month,
       consent.mask_value('2023-12-31 23:30:00+00'::timestamptz, 'year') AS new_year_eve;
SET TimeZone = 'Europe/Berlin';
SELECT consent.mask_value('2023-12-31 23:30:00+00'::timestamptz, 'year') AS new_year_eve_berlin,
       consent.mask_value('1987-06-15 13:45:12.5+00'::timestamptz, 'month') AS tstz_month_berlin;
SET TimeZone = 'UTC';
SELECT consent.mask_value('infinity'::date, 'year') AS inf_date,
       consent.mask_value('-infinity'::timestamp, 'month') AS neg_inf_ts,
       consent.mask_value('infinity'::timestamptz, 'year') AS inf_tstz,
       consent.mask_value('0044-03-15 BC'::date, 'year') AS bc_date,
       consent.mask_value('2024-02-29'::date, 'month') AS leap_day,
       consent.mask_value('1990-12-31'::mask_test.birthdate, 'year') AS domain,
       pg_typeof(consent.mask_value('1990-12-31'::mask_test.birthdate, 'year')) AS domain_type;

--
-- 9. generalize: /24 and /48 networks; dates to their year
--
SELECT v, consent.mask_value(v, 'generalize') AS masked, pg_typeof(consent.mask_value(v, 'generalize')) AS type
FROM (VALUES ('192.168.17.5'::inet), ('192.168.17.77/28'), ('10.1.2.3/16'), ('0.0.0.0'), ('255.255.255.255'),
             ('2001:db8:abcd:1234::1'), ('2001:db8:abcd:ff00::/56'), ('2001:db8::1/32'), ('::ffff:192.168.1.1'),
             ('::1')) AS t(v);
SELECT v, consent.mask_value(v, 'generalize') AS masked, pg_typeof(consent.mask_value(v, 'generalize')) AS type
FROM (VALUES ('192.168.17.0/24'::cidr), ('10.0.0.0/8'), ('192.168.17.128/25'), ('2001:db8:abcd:12::/64')) AS t(v);
SELECT consent.mask_value('192.168.17.5'::mask_test.ip, 'generalize') AS domain,
       consent.mask_value('1987-06-15'::date, 'generalize') AS date,
       consent.mask_value('1987-06-15'::mask_test.birthdate, 'generalize') AS birthdate;

--
-- 10. hash: keyed, deterministic pseudonyms (HMAC-SHA256)
--
-- empty key (insecure, but works): HMAC-SHA256 with an empty key
SELECT consent.mask_value('jane@example.com'::text, 'hash') AS empty_key;
SET consent.pseudonym_key = 'correct horse battery staple';
SELECT v, consent.mask_value(v, 'hash') AS masked
FROM (VALUES ('jane@example.com'::text), (''), ('Ødegård'), (U&'\+01F469\+01F3FD\200D\+01F4BB')) AS t(v);
-- the same bytes give the same pseudonym in every text type; padding is not part of a character(n) value
SELECT consent.mask_value('jane@example.com'::varchar(30), 'hash') AS varchar,
       consent.mask_value('jane@example.com'::char(30), 'hash') AS bpchar,
       consent.mask_value('jane@example.com'::mask_test.email, 'hash') AS domain,
       pg_typeof(consent.mask_value('jane@example.com'::mask_test.email, 'hash')) AS domain_type;
-- NFC and NFD are different values, hence different pseudonyms
SELECT consent.mask_value('José'::text, 'hash') = consent.mask_value(U&'Jose\0301'::text, 'hash') AS nfc_equals_nfd;
-- bytea: the 32-byte digest
SELECT consent.mask_value('\x00ff10'::bytea, 'hash') AS bytea_digest,
       length(consent.mask_value('\x00ff10'::bytea, 'hash')) AS digest_length,
       consent.mask_value(''::bytea, 'hash') AS empty_bytea;
-- deterministic: joins and GROUP BY on pseudonyms work
CREATE TABLE mask_test.visits (email text, page text);
INSERT INTO mask_test.visits VALUES ('jane@example.com', '/a'), ('joe@example.com', '/a'),
    ('jane@example.com', '/b'), ('jane@example.com', '/c'), ('joe@example.com', '/c'), ('ann@example.com', '/a');
SELECT consent.mask_value(email, 'hash') AS visitor, count(*)
FROM mask_test.visits GROUP BY 1 ORDER BY 2 DESC, 1;
SELECT count(*) AS joined
FROM mask_test.visits a JOIN mask_test.visits b
  ON consent.mask_value(a.email, 'hash') = consent.mask_value(b.email, 'hash') AND a.page < b.page;
-- keyed: another key gives other pseudonyms
SET consent.pseudonym_key = 'another key';
SELECT consent.mask_value('jane@example.com'::text, 'hash') AS other_key;
RESET consent.pseudonym_key;
SELECT consent.mask_value('jane@example.com'::text, 'hash') AS empty_key_again;
-- only superusers set or see the key; mask_value is not granted to PUBLIC
CREATE ROLE regress_mask_reader;
GRANT USAGE ON SCHEMA mask_test TO regress_mask_reader;
SET ROLE regress_mask_reader;
SET consent.pseudonym_key = 'guess';
SHOW consent.pseudonym_key;
SELECT consent.mask_value('jane@example.com'::text, 'hash');
RESET ROLE;

--
-- 11. Function masks: called through fmgr, their errors propagate
--
SELECT consent.mask_value('Jane'::text, 'mask_test.shout') AS shout,
       consent.mask_value('jane@x'::mask_test.email, 'mask_test.shout') AS domain,
       consent.mask_value(1987, 'mask_test.decade') AS decade,
       consent.mask_value('{"b": 1, "a": {"x": 2}}'::jsonb, 'mask_test.keys_only') AS keys,
       consent.mask_value('Jane'::text, 'mask_test."Mixed Case"') AS mixed,
       consent.mask_value('Jane'::text, 'mask_test.nested') AS nested;
SELECT consent.mask_value('Jane'::text, 'mask_test.nothing') IS NULL AS null_result;
SELECT consent.mask_value('Jane'::text, 'mask_test.fail');
SELECT mask_test.try('Jane'::text, 'mask_test.fail') AS caught;
-- per row, through the cached function
SELECT v, consent.mask_value(v, 'mask_test.shout') FROM (VALUES ('a'::text), ('b'), ('ødegård')) AS t(v);
-- a redefined function is used from the next call on
CREATE OR REPLACE FUNCTION mask_test.shout(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT lower($1) || '?' $$;
SELECT consent.mask_value('Jane'::text, 'mask_test.shout') AS redefined;
CREATE OR REPLACE FUNCTION mask_test.shout(text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$ BEGIN RETURN '<' || $1 || '>'; END $$;
SELECT consent.mask_value('Jane'::text, 'mask_test.shout') AS plpgsql_now;
DROP FUNCTION mask_test.shout(text);
SELECT consent.mask_value('Jane'::text, 'mask_test.shout');
CREATE FUNCTION mask_test.shout(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT upper($1) || '!' $$;
SELECT consent.mask_value('Jane'::text, 'mask_test.shout') AS recreated;
-- the session's role needs EXECUTE on the mask function
GRANT EXECUTE ON FUNCTION consent.mask_value(anyelement, text) TO regress_mask_reader;
REVOKE EXECUTE ON FUNCTION mask_test.shout(text) FROM PUBLIC;
SET ROLE regress_mask_reader;
SELECT consent.mask_value('Jane'::text, 'mask_test.shout');
SELECT consent.mask_value('Jane'::text, 'partial(1,0)') AS reader_partial;
RESET ROLE;
GRANT EXECUTE ON FUNCTION mask_test.shout(text) TO regress_mask_reader;
SET ROLE regress_mask_reader;
SELECT consent.mask_value('Jane'::text, 'mask_test.shout') AS after_grant;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION consent.mask_value(anyelement, text) FROM regress_mask_reader;

-- more mask functions than the cache holds, used in turns
DO $$
BEGIN
    FOR i IN 1..20 LOOP
        EXECUTE format('CREATE FUNCTION mask_test.f%s(text) RETURNS text LANGUAGE sql IMMUTABLE AS %L',
                       i, format('SELECT $1 || %L', '#' || i));
    END LOOP;
END $$;
SELECT count(*) AS calls,
       bool_and(consent.mask_value('v'::text, 'mask_test.f' || (n % 20 + 1)) = 'v#' || (n % 20 + 1)) AS all_right
FROM generate_series(0, 59) AS n;
-- a mask function redefined while it runs, and masking with itself
CREATE FUNCTION mask_test.redefine(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF length($1) >= 4 THEN
        RETURN $1;
    END IF;
    EXECUTE pg_get_functiondef('mask_test.redefine(text)'::regprocedure);
    RETURN consent.mask_value($1 || '+', 'mask_test.redefine') || '.';
END $$;
SELECT consent.mask_value(v, 'mask_test.redefine') AS redefined_while_running
FROM (VALUES ('a'::text), ('b'), ('cc')) AS t(v);
-- the cache keeps at most 16 functions, and frees what it replaced
SELECT count(*) BETWEEN 1 AND 16 AS bounded_cache
FROM pg_backend_memory_contexts WHERE name = 'pg_consent mask function';

-- the mask may differ per row
SELECT m, consent.mask_value('Jane Doe'::text, m)
FROM (VALUES ('null'), ('redact'), ('partial(1,1)'), ('initials'), ('email'), ('hash'), ('mask_test.shout')) AS t(m);

--
-- 12. Invalid UTF-8: the masks that read characters refuse it (22021),
-- the others still mask it; nothing of the value is shown.
--
CREATE CAST (bytea AS text) WITHOUT FUNCTION;
SELECT b AS bytes, m, left(mask_test.try(b::text, m), 80) AS result
FROM (VALUES ('\xc328'::bytea), ('\xeda080'), ('\xc0af'), ('\x4a61ff'), ('\x610062'), ('\xe282'), ('\xf4908080'))
     AS v(b),
     (VALUES ('partial(1,1)'), ('email'), ('initials'), ('redact'), ('null')) AS m(m)
ORDER BY m, b;
SELECT consent.mask_value('\x4a61ff'::bytea::text, 'partial(1,0)');
SELECT consent.mask_value('\x4a61ff'::bytea::text, 'hash') = consent.mask_value('\x4a61ff'::bytea::text, 'hash')
       AS hash_deterministic,
       consent.mask_value('\x4a61ff'::bytea::text, 'hash') LIKE 'h:%' AS hash_works;
-- an invalid mask spec is not echoed
SELECT mask_test.check('\xff'::bytea::text, 'text');
DROP CAST (bytea AS text);

--
-- 14. The per-cell fast paths agree with the masks written in SQL: ASCII
-- values (masked straight into the result, mask_ascii() in src/mask.cpp;
-- CR and NUL take the general path) and dates in order and out of order
-- (the last year or month truncated is remembered).
--
CREATE TEMP TABLE ascii_values AS
SELECT i, string_agg(substr(E'ab Z@.\t\n\x0b-xyQ1 ', 1 + (hashint4(i * 31 + j) & 2147483647) % 15, 1), ''
                     ORDER BY j) AS s
FROM generate_series(1, 3000) i, generate_series(0, (hashint4(i) & 2147483647) % 12) j GROUP BY i;
CREATE TEMP VIEW ascii_masks AS
SELECT s, consent.mask_value(s, 'email') AS email,
       CASE WHEN strpos(s, '@') = 0 THEN '***'
            ELSE CASE WHEN length(s) - strpos(reverse(s), '@') > 0 THEN left(s, 1) ELSE '' END || '***'
                 || substr(s, length(s) - strpos(reverse(s), '@') + 1) END AS email_sql,
       consent.mask_value(s, 'partial(2,1)') AS partial,
       CASE WHEN length(s) <= 3 THEN '***' ELSE left(s, 2) || '***' || right(s, 1) END AS partial_sql,
       consent.mask_value(s, 'partial(0,2)') AS partial_end,
       CASE WHEN length(s) <= 2 THEN '***' ELSE '***' || right(s, 2) END AS partial_end_sql,
       consent.mask_value(s, 'initials') AS initials,
       coalesce((SELECT string_agg(upper(left(w, 1)) || '.', ' ' ORDER BY n)
                 FROM regexp_split_to_table(s, E'[\t\n\x0b\f\r ]+') WITH ORDINALITY AS x(w, n) WHERE w <> ''), '')
           AS initials_sql
FROM ascii_values;
SELECT count(*) AS ascii_values,
       count(*) FILTER (WHERE email IS DISTINCT FROM email_sql) AS email_wrong,
       count(*) FILTER (WHERE partial IS DISTINCT FROM partial_sql) AS partial_wrong,
       count(*) FILTER (WHERE partial_end IS DISTINCT FROM partial_end_sql) AS partial_end_wrong,
       count(*) FILTER (WHERE initials IS DISTINCT FROM initials_sql) AS initials_wrong,
       count(DISTINCT initials) > 100 AS varied
FROM ascii_masks;
-- the same for text that is not plain ASCII, through the general path and
-- its ASCII shortcuts (an ASCII initial, ASCII inside a word): Latin-1
-- letters and CR among ASCII; every character here is one user-perceived
-- character, so the first one of each word, upper-cased by ICU's root
-- locale, is the oracle
CREATE TEMP TABLE mixed_values AS
SELECT i, string_agg(substr(E'ab Z\u00fc.\t\n\r-\u00e9Q1 ', 1 + (hashint4(i * 17 + j) & 2147483647) % 14, 1), ''
                     ORDER BY j) AS s
FROM generate_series(1, 3000) i, generate_series(0, (hashint4(i + 7) & 2147483647) % 12) j GROUP BY i;
SELECT count(*) AS mixed_values,
       count(*) FILTER (WHERE s ~ '[^\x01-\x7f]') > 1500 AS mostly_not_ascii,
       count(*) FILTER (WHERE consent.mask_value(s, 'initials') IS DISTINCT FROM
           coalesce((SELECT string_agg(upper(left(w, 1) COLLATE "und-x-icu") || '.', ' ' ORDER BY n)
                     FROM regexp_split_to_table(s, E'[\t\n\x0b\f\r ]+') WITH ORDINALITY AS x(w, n)
                     WHERE w <> ''), '')) AS initials_wrong,
       count(DISTINCT consent.mask_value(s, 'initials')) > 100 AS varied
FROM mixed_values;
DROP TABLE mixed_values;
SELECT count(*) AS dates,
       count(*) FILTER (WHERE consent.mask_value(d, 'year') IS DISTINCT FROM date_trunc('year', d)::date) AS year_wrong,
       count(*) FILTER (WHERE consent.mask_value(d, 'month') IS DISTINCT FROM date_trunc('month', d)::date) AS month_wrong
FROM (SELECT date '1999-11-15' + i AS d FROM generate_series(0, 800) i
      UNION ALL SELECT date '1970-01-01' + (hashint4(i) & 2147483647) % 40000 FROM generate_series(1, 500) i
      UNION ALL SELECT d FROM unnest(ARRAY[date '0044-03-15 BC', date '0001-01-01 BC', date '0001-12-31 BC',
                                           date '0001-01-01', date '4000-02-29']) d) t;
SELECT consent.mask_value(d, 'year') AS year, consent.mask_value(d, 'month') AS month
FROM unnest(ARRAY[date '1999-12-31', date 'infinity', date '-infinity', date '2000-01-01']) d;
DROP VIEW ascii_masks;
DROP TABLE ascii_values;

--
-- 13. A database that is not UTF-8 (LATIN1): values are read through UTF-8
-- and written back; an upper-case initial LATIN1 lacks stays as written.
--
SELECT current_database() AS regress_db \gset
CREATE DATABASE regress_mask_latin1 TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C';
\c regress_mask_latin1
SET client_encoding = 'UTF8';
CREATE SCHEMA consent;
CREATE FUNCTION consent.mask_value(value anyelement, mask text) RETURNS anyelement
    LANGUAGE c STABLE PARALLEL SAFE AS '$libdir/pg_consent', 'consent_mask_value';
SELECT v, m, consent.mask_value(v, m) AS masked
FROM (VALUES ('Ødegård'::text, 'partial(1,1)'), ('Ødegård', 'partial(3,0)'), ('Ødegård@exämple.no', 'email'),
             ('ødegård élodie', 'initials'), ('ÿvonne µller', 'initials'), ('ßa', 'initials'),
             ('Ødegård', 'redact'), ('Ødegård', 'hash')) AS t(v, m);
-- a value with bytes LATIN1 does not allow (a NUL) is refused without showing them
CREATE CAST (bytea AS text) WITHOUT FUNCTION;
SELECT consent.mask_value('\x4a0061'::bytea::text, 'partial(1,0)');
\c :regress_db
DROP DATABASE regress_mask_latin1;

SET client_min_messages = warning;
DROP SCHEMA mask_test CASCADE;
DROP ROLE regress_mask_reader;
