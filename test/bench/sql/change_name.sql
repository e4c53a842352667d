-- pgbench script (-D rows=N): grants or withdraws the name of a random one
-- of N customers under personalize, one change per transaction.
\set id random(1, :rows)
\set a random(0, 1)
SELECT CASE WHEN :a = 0 THEN consent.withdraw(:id, 'user.name', 'personalize') ELSE consent.grant(:id, 'user.name', 'personalize') END;
