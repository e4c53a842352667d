# Copyright: pg_consent contributors
#
# A scan in subject order does not probe the shared consent state's hash
# for a subject without consent records: the build writes each database's
# records in subject order, so a subject that sorts between the record
# read last and the one after it has none, unless it got a record since
# (docs/architecture.md, "The shared consent state").  Here the subjects
# that had no record when the state was built get one, and subjects whose
# records were replaced lose their place in the build's order when a
# compaction drops the old records; after each, every decision of a scan
# in subject order must equal the ledger.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

# a small shared state, so that changes soon make it compact (logged at DEBUG1)
my $node = consent_node('absence', "consent.shared_size = 2\nlog_min_messages = debug1");
$node->safe_psql('postgres',
	protected_customers_sql('SELECT generate_series(1, 3000)') . ledger_says_sql() . q{
    CREATE TABLE ev (subject text, category text, purpose text, action text);
    -- every subject but the tenth ones grants: those have no record at all
    INSERT INTO ev SELECT id, 'user.contact.email', 'personalize', 'grant' FROM customers WHERE id % 10 <> 0;
    SELECT consent.record_many('ev');
});

# every decision of a scan in subject order (the table's order) against the ledger
my $check = q{SET ROLE app; SET consent.purpose = 'personalize';
    SELECT count(*) FILTER (WHERE (email = 'e' || id || '@example.com') IS DISTINCT FROM ledger_says(id)) || '/' ||
           count(*) FILTER (WHERE email = 'e' || id || '@example.com')
    FROM customers};
is($node->safe_psql('postgres', $check), '0/2700', 'built: every decision equals the ledger');
is($node->safe_psql('postgres', 'SELECT status FROM consent.shared_state()'), 'ready', 'from the shared state');

# subjects without a record get one: each sorts between two records of the build
$node->safe_psql('postgres', q{
    TRUNCATE ev;
    INSERT INTO ev SELECT id, 'user.contact.email', 'personalize', 'grant' FROM customers WHERE id % 100 = 50;
    SELECT consent.record_many('ev');
});
is($node->safe_psql('postgres', $check), '0/2730', 'new subjects between the build\'s records are found');
$node->safe_psql('postgres', q{SELECT consent.grant(3000, 'user.contact.email', 'personalize'),
                                      consent.grant(10, 'user.contact.email', 'personalize')});
is($node->safe_psql('postgres', $check), '0/2732', 'so are the first and the last subject');

# Half the subjects withdrawn and granted again: their new records go
# elsewhere, and the old ones stay in the build's order until a compaction
# drops them (the other half's stay: subject 13 sorts between 12 and 18).
# Churn until the state compacts, reading after each round so that the
# readers load the changed subjects again.
my $compacted = 0;
$node->safe_psql('postgres', q{
    TRUNCATE ev;
    INSERT INTO ev SELECT id, 'user.contact.email', 'personalize', a
      FROM customers, unnest(ARRAY['withdraw', 'grant']) a WHERE id % 10 BETWEEN 3 AND 7;
});
for my $round (1 .. 60)
{
	$node->safe_psql('postgres', q{SELECT consent.record_many('ev')});
	$node->safe_psql('postgres', q{SET ROLE app; SET consent.purpose = 'personalize';
        SELECT count(*) FILTER (WHERE email = 'e' || id || '@example.com') FROM customers});
	if (slurp_file($node->logfile) =~ /shared consent state compacted/)
	{
		$compacted = $round;
		last;
	}
}
ok($compacted, "the shared state compacted (round $compacted)");
is($node->safe_psql('postgres', 'SELECT status FROM consent.shared_state()'), 'ready', 'and is still in use');
is($node->safe_psql('postgres', $check), '0/2732',
	'after the compaction, subjects whose build records it dropped are found');

# one more change after the compaction, withdrawn this time
$node->safe_psql('postgres', q{SELECT consent.withdraw(13, 'user.contact.email', 'personalize')});
is($node->safe_psql('postgres', $check), '0/2731', 'every decision still equals the ledger');

done_testing();
