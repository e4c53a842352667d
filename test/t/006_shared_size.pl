# Copyright: pg_consent contributors
#
# consent.shared_size bounds the shared consent state.  When the records of
# every subject do not fit, the state is turned off until the next restart
# with a WARNING naming the setting, and every backend decides from its own
# cache: decisions stay right (checked against the ledger for every
# subject), and consent.shared_state() says 'off'.  With
# consent.shared_size = 0 the state is off from the start; a session that
# starts while a withdrawal commits follows it from the commit on.
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
$node->append_conf('postgresql.conf', "consent.shared_size = 0\nmax_prepared_transactions = 2");
$node->restart;
($ret, $stdout, $stderr) = $node->psql('postgres', $check);
is($stdout, '0/20000', 'with consent.shared_size = 0 every decision equals the ledger');
unlike($stderr, qr/WARNING/, 'without a warning');
is($node->safe_psql('postgres', 'SELECT status FROM consent.shared_state()'), 'off', 'and the state is off');

# Prepared transactions: a change committed by COMMIT PREPARED (in another
# session) reaches the caches of sessions that read the subject before it,
# from their next statement; one rolled back changes nothing.  Subject 2 is
# granted, 4 and 5 too.
my $app = $node->background_psql('postgres');
$app->query_safe(q{SET ROLE app; SET consent.purpose = 'personalize'});
my $one = sub {
	my ($id) = @_;
	return $app->query_safe("SELECT email = 'e$id\@example.com' FROM customers WHERE id = $id");
};
is($one->(2), 't', 'subject 2 revealed (and now in the cache of the session)');
$node->safe_psql('postgres', q{BEGIN; SELECT consent.withdraw(2, 'user.contact.email', 'personalize');
    PREPARE TRANSACTION 'withdraw2'});
is($one->(2), 't', 'a prepared withdrawal does not apply');
# a session that starts after the PREPARE never saw it being made
my $late = $node->background_psql('postgres');
$late->query_safe(q{SET ROLE app; SET consent.purpose = 'personalize'});
my $late_read = q{SELECT email = 'e2@example.com' FROM customers WHERE id = 2};
is($late->query_safe($late_read), 't', 'nor in a session started after it');
$node->safe_psql('postgres', q{COMMIT PREPARED 'withdraw2'});
is($late->query_safe($late_read), 'f', 'there too it applies from the next statement after COMMIT PREPARED');
$late->quit;
cmp_ok($app->query_safe('SELECT subjects FROM consent.cache_stats()'), '>=', 29000,
	'the session keeps the rest of its cache: only the subject that changed is dropped');
is($one->(2), 'f', 'committed by COMMIT PREPARED in another session, it applies from the next statement');
is($one->(5), 't', 'subject 5 revealed');
$node->safe_psql('postgres', q{BEGIN; SELECT consent.withdraw(5, 'user.contact.email', 'personalize');
    PREPARE TRANSACTION 'withdraw5'});
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'withdraw5'});
is($one->(5), 't', 'a withdrawal rolled back by ROLLBACK PREPARED never applies');
# prepared before a restart: what it changed is not known after it
is($one->(4), 't', 'subject 4 revealed');
$node->safe_psql('postgres', q{BEGIN; SELECT consent.withdraw(4, 'user.contact.email', 'personalize');
    PREPARE TRANSACTION 'withdraw4'});
$app->quit;
$node->restart;
$app = $node->background_psql('postgres');
$app->query_safe(q{SET ROLE app; SET consent.purpose = 'personalize'});
is($one->(4), 't', 'after a restart the withdrawal prepared before it does not apply yet');
$node->safe_psql('postgres', q{COMMIT PREPARED 'withdraw4'});
is($app->query_safe('SELECT subjects FROM consent.cache_stats()'), '0',
	'what it changed is not known: the session drops its whole cache');
is($one->(4), 'f', 'committed after the restart, it applies from the next statement');
is($node->safe_psql('postgres', $check), '0/19998', 'every decision still equals the ledger');
$app->quit;

# A session that starts while a transaction is committing: the transaction
# lists its subjects in the invalidation ring before its commit record and
# again once its commit is visible.  Here it is held before (synchronous
# replication to a standby that does not exist) and after its commit
# becomes visible (consent_regress.publish_delay_ms, before the second
# listing); the session started in between loaded its cache before the
# commit, and from the commit on it must decide as the ledger says.
$node->append_conf('postgresql.conf', "wal_level = replica\nmax_wal_senders = 2");
$node->restart;
$node->safe_psql('postgres', q{ALTER SYSTEM SET synchronous_standby_names = 'nobody'});
$node->reload;
my $writer = $node->background_psql('postgres');
$writer->query_until(qr/committing/, q{SET consent_regress.publish_delay_ms = 6000;
\echo committing
SELECT consent.withdraw(7, 'user.contact.email', 'personalize');
});
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'})
  or die 'the withdrawal does not wait for the standby';
my $late_app = $node->background_psql('postgres');
$late_app->query_safe(q{SET ROLE app; SET consent.purpose = 'personalize'});
my $seven = q{SELECT email = 'e7@example.com' FROM customers WHERE id = 7};
is($late_app->query_safe($seven), 't', 'a session started during the commit reveals subject 7 (not committed yet)');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET synchronous_standby_names});
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM consent.ledger WHERE subject = '7' AND action = 'withdraw'})
  or die 'the withdrawal did not commit';
is($late_app->query_safe($seven), 'f', 'once the withdrawal is visible it applies there, before it is listed again');
$writer->quit;
$late_app->quit;

done_testing();
