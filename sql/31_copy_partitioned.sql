-- COPY TO of a protected partitioned table: PostgreSQL refuses COPY TO of a
-- partitioned table (42809); under row-level security it would read FROM
-- ONLY the parent and export no row at all, silently.  Every role gets the
-- error, and COPY (SELECT ...) TO exports the whole tree, masked.
CREATE TABLE cp_customers (id bigint, email consent.email, region text) PARTITION BY LIST (region);
CREATE TABLE cp_customers_eu PARTITION OF cp_customers FOR VALUES IN ('eu');
CREATE TABLE cp_customers_us PARTITION OF cp_customers FOR VALUES IN ('us');
SELECT consent.protect('cp_customers', 'id');
INSERT INTO cp_customers VALUES (1, 'jane.doe@example.com', 'eu'), (2, 'max@example.de', 'us'), (3, 'zoe@example.no', 'eu');
SELECT consent.grant(1, 'user.contact.email', 'personalize') > 0 AS granted;
CREATE ROLE cp_app;
GRANT SELECT ON cp_customers, cp_customers_eu TO cp_app;
SELECT consent.allow_purpose('cp_app', 'personalize');

\set VERBOSITY sqlstate
-- a bypass role (superuser): PostgreSQL's own error
COPY cp_customers TO STDOUT;
SET ROLE cp_app;
SET consent.purpose = 'personalize';
-- a masked role: the same error, not an empty export
COPY cp_customers TO STDOUT;
COPY cp_customers (id, email) TO STDOUT;
\set VERBOSITY default
COPY cp_customers TO STDOUT;
-- the query form exports every partition, masked
COPY (SELECT * FROM cp_customers ORDER BY id) TO STDOUT;
-- a partition is an ordinary table: exported, masked
COPY cp_customers_eu TO STDOUT;
RESET consent.purpose;
RESET ROLE;
COPY (SELECT * FROM cp_customers ORDER BY id) TO STDOUT;

-- a partitioned table without a tagged column: PostgreSQL's behaviour, unchanged
CREATE TABLE cp_plain (k int) PARTITION BY RANGE (k);
\set VERBOSITY sqlstate
COPY cp_plain TO STDOUT;
\set VERBOSITY default

SELECT consent.revoke_purpose('cp_app', 'personalize');
DROP OWNED BY cp_app;
DROP ROLE cp_app;
DELETE FROM consent.protected_tables WHERE relation = 'cp_customers'::regclass;
DROP TABLE cp_customers, cp_plain;
