-- pg_consent demo, part 3: an export, a withdrawal that takes effect in a
-- running session, and what the application cannot do.
\set ON_ERROR_STOP 1
\set QUIET on
SET TimeZone = 'Europe/Berlin';
SET DateStyle = 'ISO, YMD';
\pset footer off
\pset null '(null)'

-- Helper for the last section: runs one statement and returns 'ok' or the
-- SQLSTATE and message of its error (which is then rolled back).
CREATE FUNCTION pg_temp.outcome(statement text) RETURNS text
    LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Picked by the superuser before the show: the first customer who consented
-- to personalization with the e-mail address (whose consent is withdrawn
-- below), the real e-mail of customer 1 (to probe for it), and the first
-- customer whose name is masked under marketing (to try to overwrite it).
SELECT min(c.id) AS subject FROM shop.customers c
WHERE consent.granted(c.id, 'user.contact.email', 'personalize') \gset
SELECT email AS real_email FROM shop.customers WHERE id = 1 \gset
SELECT min(c.id) AS unnamed FROM shop.customers c
WHERE NOT consent.granted(c.id, 'user.name', 'marketing') \gset
\setenv CONSENT_DEMO_SUBJECT :subject

\echo
\echo '======================================================================'
\echo ' 5. COPY ... TO STDOUT by shop_app under personalize (first 3 rows):'
\echo '    the export is masked like a query'
\echo '======================================================================'
SET ROLE shop_app;
SET consent.purpose = 'personalize';
\echo 'COPY (SELECT * FROM shop.customers ORDER BY id LIMIT 3) TO STDOUT WITH (FORMAT csv, HEADER);'
COPY (SELECT * FROM shop.customers ORDER BY id LIMIT 3) TO STDOUT WITH (FORMAT csv, HEADER);
\echo
\echo 'The whole table, COPY shop.customers TO STDOUT (rewritten into a query), first 3 lines:'
\copy shop.customers TO PROGRAM 'sed -n 1,3p'

\echo
\echo '======================================================================'
\echo ' 6. A withdrawal committed by another session takes effect at the next'
\echo '    statement of this one'
\echo '======================================================================'
\echo 'shop_app under personalize, before:'
SELECT id, name, email, consent.granted(id, 'user.contact.email') AS email_granted
FROM shop.customers WHERE id = :subject;
\echo
\echo 'Another session (the superuser) records the withdrawal:'
\! printf "SELECT consent.withdraw(%s, 'user.contact.email', 'personalize') AS withdrawal_event;\n" "$CONSENT_DEMO_SUBJECT" | psql -X -q -v ON_ERROR_STOP=1 -P footer=off || touch "$CONSENT_DEMO_FAILED"
\echo 'shop_app under personalize, same session, next statement:'
SELECT id, name, email, consent.granted(id, 'user.contact.email') AS email_granted
FROM shop.customers WHERE id = :subject;

\echo
\echo '======================================================================'
\echo ' 7. What shop_app cannot do'
\echo '======================================================================'
\echo 'Act under a purpose it was not allowed:'
SELECT pg_temp.outcome($$SET consent.purpose = 'analytics'$$) AS "SET consent.purpose = 'analytics'";
\echo
\echo 'Probe for a hidden value with a predicate, no purpose set (WHERE sees masked values):'
RESET consent.purpose;
\set probe 'SELECT count(*) AS matches FROM shop.customers WHERE email = ' :'real_email' ';'
\echo :probe
:probe
\echo
\echo 'Overwrite a masked cell under marketing (the masked value would replace the real one):'
SET consent.purpose = 'marketing';
\set overwrite 'UPDATE shop.customers SET name = name || '' (VIP)'' WHERE id = ' :unnamed
SELECT name AS "name as shop_app sees it" FROM shop.customers WHERE id = :unnamed;
SELECT pg_temp.outcome(:'overwrite') AS :"overwrite";
\echo
\echo 'The superuser, for comparison:'
RESET ROLE;
RESET consent.purpose;
\echo :probe
:probe
SELECT id, name FROM shop.customers WHERE id = :unnamed;
