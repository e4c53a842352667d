-- Load check: one consent change by the consent service, then the time its
-- commit was acknowledged (the SELECT runs in its own transaction, so its
-- commit, and the invalidation it publishes, precede the INSERT).
\set subject random(1, :customers)
\set c random(1, 8)
\set p random(1, 4)
\set g random(0, 1)
SELECT load_change(:subject, :c, :p, :g) AS event_id
\gset
INSERT INTO load_changes (event_id, acked_at) VALUES (:event_id, clock_timestamp());
