-- Load check: one read of a random customer by the application under
-- purpose personalize, and what it revealed (see setup.sql for why a value tells).
-- Needs -M prepared or extended (the timestamps are passed as parameters).
\set id random(1, :customers)
SET consent.purpose = 'personalize';
SELECT email NOT LIKE '%***%' AS email_revealed,
       name !~ '^[^ ]\.( [^ ]\.)*$' AS name_revealed,
       to_char(birthdate, 'MM-DD') <> '01-01' AS birthdate_revealed,
       statement_timestamp() AS started,
       clock_timestamp() AS finished
FROM customers WHERE id = :id
\gset
INSERT INTO load_reads (subject, purpose, started, finished, email, name, birthdate)
VALUES (:id, 'personalize', :started, :finished, :email_revealed, :name_revealed, :birthdate_revealed);
