-- Claims: consent._mask_remote(column, '{role,purpose,as_of,strict}') is
-- how a Citus node sends a tagged column to the node that reads its rows,
-- with the session context to decide it in (docs/scaling.md, "Citus").
-- The node reading the rows checks the claim for the connected user and
-- decides every tagged column of the statement in that context.  On one
-- server the same rules hold for a claim written in a query: a claim is
-- never more than what SET ROLE and SET consent.purpose give.
SET client_min_messages = warning;
CREATE TABLE cl_customers (id bigint PRIMARY KEY, email consent.email, name consent.name, city text);
-- subjects no other test of the suite uses
INSERT INTO cl_customers SELECT g, 'c' || g || '@example.com', 'Claire ' || g, 'city' || g
  FROM generate_series(7101, 7106) g;
SELECT consent.protect('cl_customers', 'id') IS NOT NULL AS protected;
CREATE TABLE cl_copy (id bigint, email consent.email);
SELECT consent.protect('cl_copy', 'id') IS NOT NULL AS protected;
CREATE ROLE cl_app;
CREATE ROLE cl_other;
GRANT SELECT ON cl_customers TO cl_app, cl_other;
GRANT SELECT, INSERT ON cl_copy TO cl_app;
SELECT consent.allow_purpose('cl_app', 'marketing') IS NOT NULL AS allowed;
SELECT consent.allow_purpose('cl_other', 'analytics') IS NOT NULL AS allowed;
SELECT count(consent.grant(id, 'user.contact.email', 'marketing')) FROM cl_customers WHERE id % 2 = 0;
SELECT count(consent.grant(id, 'user.name', 'marketing')) FROM cl_customers WHERE id % 3 = 0;

-- the superuser claiming cl_app under marketing decides as cl_app would:
-- every tagged column of the statement, the ones outside the claimed call
-- too (Citus moves columns out of the claimed expressions)
SELECT id, consent._mask_remote(email, '{cl_app,marketing,NULL,f}') AS email, name
  FROM cl_customers ORDER BY id;
-- what cl_app sees under marketing without a claim: the same
SET ROLE cl_app;
SET consent.purpose = 'marketing';
SELECT id, email, name FROM cl_customers ORDER BY id;
RESET consent.purpose;
-- cl_app claiming itself under marketing (no SET): the same again
SELECT id, consent._mask_remote(email, '{cl_app,marketing,NULL,f}') AS email, name
  FROM cl_customers ORDER BY id;
-- a purpose the claimed role may not act under decides as no purpose
SELECT id, consent._mask_remote(email, '{cl_app,analytics,NULL,f}') AS email FROM cl_customers ORDER BY id;
-- predicates see the claimed decision
SELECT count(*) AS shown FROM cl_customers
 WHERE consent._mask_remote(email, '{cl_app,marketing,NULL,f}') LIKE 'c%@example.com'
   AND consent._mask_remote(email, '{cl_app,marketing,NULL,f}') NOT LIKE '%***%';

-- refused: a role the connected user cannot act as (42501)
\set VERBOSITY sqlstate
SELECT consent._mask_remote(email, '{cl_other,analytics,NULL,f}') FROM cl_customers;
SELECT consent._mask_remote(email, '{postgres_no_such_role,marketing,NULL,f}') FROM cl_customers;
-- as_of is an auditor's (42501)
SELECT consent._mask_remote(email, '{cl_app,marketing,0,f}') FROM cl_customers;
RESET ROLE;
-- unknown role (42704), unknown purpose (22023), malformed (22023), not a
-- constant (42501)
SELECT consent._mask_remote(email, '{cl_nobody,marketing,NULL,f}') FROM cl_customers;
SELECT consent._mask_remote(email, '{cl_app,no_such_purpose,NULL,f}') FROM cl_customers;
SELECT consent._mask_remote(email, '{cl_app,marketing}') FROM cl_customers;
SELECT consent._mask_remote(email, NULL) FROM cl_customers;
SELECT consent._mask_remote(email, ARRAY['cl_app', city, NULL, 'f']) FROM cl_customers;
-- the rewrite's own call is refused when written (42501)
SELECT consent._mask_claimed(email, id, 'cl_customers'::regclass::oid, 2::int2, '{cl_app,marketing,NULL,f}')
  FROM cl_customers;
\set VERBOSITY default

-- a strict claim (the value will be stored): a masked cell is refused
SET ROLE cl_app;
INSERT INTO cl_copy SELECT id, consent._mask_remote(email, '{cl_app,marketing,NULL,t}') FROM cl_customers;
INSERT INTO cl_copy SELECT id, consent._mask_remote(email, '{cl_app,marketing,NULL,t}') FROM cl_customers
 WHERE id % 2 = 0;
RESET ROLE;
SELECT id, email FROM cl_copy ORDER BY id;

-- ConsentMask decides claimed columns too
EXPLAIN (COSTS OFF)
SELECT id, consent._mask_remote(email, '{cl_app,marketing,NULL,f}') AS email FROM cl_customers;

-- the audit counts the cells for the claimed role and purpose
SELECT consent.disclosures_reset();
SELECT count(e) FROM (SELECT consent._mask_remote(email, '{cl_app,marketing,NULL,f}') AS e FROM cl_customers) s;
SELECT role, purpose, relation, column_name, revealed, masked FROM consent.disclosures
 WHERE relation = 'public.cl_customers' ORDER BY 1, 2, 4;

DROP TABLE cl_customers, cl_copy;
SELECT consent.revoke_purpose('cl_app', 'marketing') IS NOT NULL AS revoked;
SELECT consent.revoke_purpose('cl_other', 'analytics') IS NOT NULL AS revoked;
DROP ROLE cl_app, cl_other;
