# Copyright: pg_consent contributors
#
# consent.shared_size bounds the shared consent state.  When the records of
# every subject do not fit, the state is turned off until the next restart
# with a WARNING naming the setting, and every backend decides from its own
# cache: decisions stay right (checked against the ledger for every
# subject), and consent.shared_state() says 'off'.  With
# consent.shared_size = 0 the state is off from the start.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

my $node = consent_node('shared_size', 'consent.shared_size = 1');

$node->safe_psql('postgres',
	protected_customers_sql('SELECT generate_series(1, 30000)') . ledger_says_sql() . q{
    CREATE TABLE ev AS SELECT id AS subject, 'user.contact.email' AS category, 'personalize' AS purpose,
                              CASE WHEN id % 3 = 0 THEN 'withdraw' ELSE 'grant' END AS action
                         FROM customers;
    SELECT consent.record_many('ev');
});

my $check = q{SET ROLE app; SET consent.purpose = 'personalize';
    SELECT count(*) FILTER (WHERE (email = 'e' || id || '@example.com') IS DISTINCT FROM ledger_says(id)) || '/' ||
           count(*) FILTER (WHERE email = 'e' || id || '@example.com')
    FROM customers};

my ($ret, $stdout, $stderr) = $node->psql('postgres', $check);
is($stdout, '0/20000', 'with 1 MB for 30,000 subjects every decision still equals the ledger');
like($stderr, qr/WARNING:  pg_consent: the shared consent state is turned off: .*\n.*consent\.shared_size is 1 MB/s,
	'the statement that found it too small warns, naming the setting');
like($stderr, qr/HINT:  Raise consent\.shared_size and restart the server\./, 'and says what to do');
is($node->safe_psql('postgres', 'SELECT status FROM consent.shared_state()'), 'off', 'consent.shared_state() says off');

# later changes and other sessions: the per-backend caches
$node->safe_psql('postgres', q{SELECT consent.withdraw(1, 'user.contact.email', 'personalize')});
$node->safe_psql('postgres', q{SELECT consent.grant(3, 'user.contact.email', 'personalize')});
is($node->safe_psql('postgres', $check), '0/20000', 'changes apply, decisions still equal the ledger');
unlike(slurp_file($node->logfile), qr/shared consent state of database \d+ built/, 'no state was built');

# consent.shared_size = 0: off from the start, no warning
$node->append_conf('postgresql.conf', 'consent.shared_size = 0');
$node->restart;
($ret, $stdout, $stderr) = $node->psql('postgres', $check);
is($stdout, '0/20000', 'with consent.shared_size = 0 every decision equals the ledger');
unlike($stderr, qr/WARNING/, 'without a warning');
is($node->safe_psql('postgres', 'SELECT status FROM consent.shared_state()'), 'off', 'and the state is off');

done_testing();
