-- sql_fuzz_report.sql — the summary of the SQL fuzz loop: per operation,
-- how many statements ended how (ok or the SQLSTATE), most frequent first.
SELECT op || ': ' || string_agg(outcome || ' ' || n, ', ' ORDER BY n DESC, outcome)
  FROM fz_outcomes GROUP BY op ORDER BY op;
