
# Copyright: pg_consent contributors
#
# Consent survives a crash: grants and withdrawals committed before an
# immediate shutdown (no checkpoint, crash recovery at the next start) are
# in effect after the restart, an event that was not committed is not,
# consent.subject_state agrees with consent.ledger, and the shared-memory
# invalidation ring works again (a withdrawal after the restart reaches a
# session that was already reading).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

my $node = consent_node('restart');

$node->safe_psql(
	'postgres', q{
    CREATE EXTENSION pg_consent;
    CREATE ROLE app_reader LOGIN;
    CREATE TABLE customers (id bigint PRIMARY KEY, email consent.email, name consent.name);
    INSERT INTO customers VALUES (1, 'alice@example.com', 'Alice Archer'),
                                 (2, 'bob@example.org', 'Bob Baker'),
                                 (3, 'carol@example.net', 'Carol Clark'),
                                 (4, 'dave@example.com', 'Dave Dunn'),
                                 (5, 'erin@example.org', 'Erin Evans');
    GRANT SELECT ON customers TO app_reader;
    SELECT FROM consent.protect('customers', 'id');
    SELECT FROM consent.allow_purpose('app_reader', 'personalize');
});

my $read = 'SELECT id, email, name FROM customers ORDER BY id';
my $app_prefix = "SET consent.purpose = 'personalize';\n";

# Reads customers as app_reader under 'personalize' in a new connection.
sub app_read
{
	return $node->safe_psql('postgres', $app_prefix . $read, extra_params => [ '-U', 'app_reader' ]);
}

# Per (subject, category, purpose): pairs whose subject_state disagrees with
# the latest ledger event (by recorded_at, id) or the latest withdrawal.
my $state_vs_ledger = q{
    WITH latest AS (
        SELECT DISTINCT ON (subject, category, purpose) subject, category, purpose, id, action, valid_until, recorded_at
        FROM consent.ledger WHERE action <> 'erase'
        ORDER BY subject, category, purpose, recorded_at DESC, id DESC),
    latest_withdrawal AS (
        SELECT DISTINCT ON (subject, category, purpose) subject, category, purpose, id, recorded_at
        FROM consent.ledger WHERE action = 'withdraw'
        ORDER BY subject, category, purpose, recorded_at DESC, id DESC)
    SELECT subject || ' ' || category || ' ' || purpose
    FROM latest l
    FULL JOIN consent.subject_state s USING (subject, category, purpose)
    LEFT JOIN latest_withdrawal w USING (subject, category, purpose)
    WHERE s.event_id IS DISTINCT FROM l.id OR s.action IS DISTINCT FROM l.action
       OR s.valid_until IS DISTINCT FROM l.valid_until OR s.recorded_at IS DISTINCT FROM l.recorded_at
       OR s.withdrawn_id IS DISTINCT FROM w.id OR s.withdrawn_at IS DISTINCT FROM w.recorded_at
    ORDER BY 1
};

# A session of the application that is reading when the server goes down.
my $app = $node->background_psql('postgres', extra_params => [ '-U', 'app_reader' ]);
$app->query_safe("SET consent.purpose = 'personalize'");
is( $app->query_safe($read),
	"1|a***\@example.com|A. A.\n2|b***\@example.org|B. B.\n3|c***\@example.net|C. C.\n"
	  . "4|d***\@example.com|D. D.\n5|e***\@example.org|E. E.",
	'before any grant: everything masked');

# Committed events: 1 e-mail; 2 everything about the user; 3 granted, then
# withdrawn; 4 e-mail until tomorrow.
$node->safe_psql(
	'postgres', q{
    SELECT FROM consent.grant(1, 'user.contact.email', 'personalize');
    SELECT FROM consent.grant(2, 'user', 'personalize', source => 'web form', evidence => '{"form": "v2"}');
    BEGIN;
    SELECT FROM consent.grant(3, 'user.contact.email', 'personalize');
    SELECT FROM consent.grant(3, 'user.name', 'personalize');
    COMMIT;
    SELECT FROM consent.withdraw(3, 'user.contact.email', 'personalize');
    SELECT FROM consent.grant(4, 'user.contact.email', 'personalize', valid_until => now() + interval '1 day');
});

my $expected =
    "1|alice\@example.com|A. A.\n2|bob\@example.org|Bob Baker\n3|c***\@example.net|Carol Clark\n"
  . "4|dave\@example.com|D. D.\n5|e***\@example.org|E. E.";
is($app->query_safe($read), $expected, 'before the crash: the committed events are in effect');

# An event that is not committed when the server goes down.
my $recorder = $node->background_psql('postgres');
$recorder->query_safe(q{BEGIN; SELECT consent.grant(5, 'user', 'personalize')});
is($app->query_safe($read), $expected, 'before the crash: the uncommitted grant is not in effect');

my $events_before = $node->safe_psql('postgres', 'SELECT count(*) FROM consent.ledger');
is($events_before, '6', 'six committed events');

# Crash: immediate shutdown, no checkpoint.
$node->stop('immediate');
eval { $app->quit };
eval { $recorder->quit };
$node->start;
ok( $node->log_contains(
		qr/database system was not properly shut down; automatic recovery in progress|database system was interrupted/),
	'the restart ran crash recovery');

is(app_read(), $expected, 'after the crash: committed grants and withdrawals are in effect');
is($node->safe_psql('postgres', 'SELECT count(*) FROM consent.ledger'),
	$events_before, 'after the crash: the ledger holds exactly the committed events');
is($node->safe_psql('postgres', q{SELECT count(*) FROM consent.ledger WHERE subject = '5'}),
	'0', 'after the crash: nothing of the uncommitted grant');
is($node->safe_psql('postgres', $state_vs_ledger), '', 'after the crash: subject_state agrees with the ledger');
is( $node->safe_psql(
		'postgres', q{
    SELECT string_agg(s || ':' || consent.granted(s, 'user.contact.email', 'personalize')::text
                      || '/' || consent.granted(s, 'user.contact.email', 'personalize', clock_timestamp())::text,
                      ' ' ORDER BY s)
    FROM generate_series(1, 5) s}),
	'1:true/true 2:true/true 3:false/false 4:true/true 5:false/false',
	'after the crash: decisions from the derived state equal those replayed from the ledger');
is( $node->safe_psql(
		'postgres', q{
    SELECT source || ' ' || (evidence ->> 'form') FROM consent.history(2)}),
	'web form v2',
	'after the crash: the evidence of a grant is kept');

# The invalidation ring works after the restart: a session that already
# read sees another session's withdrawal (and grant) in its next statement.
$app = $node->background_psql('postgres', extra_params => [ '-U', 'app_reader' ]);
$app->query_safe("SET consent.purpose = 'personalize'");
is($app->query_safe($read), $expected, 'new session after the crash reads');
$node->safe_psql(
	'postgres', q{
    SELECT FROM consent.withdraw(1, 'user.contact.email', 'personalize');
    SELECT FROM consent.grant(5, 'user.contact.email', 'personalize');
});
my $after_change =
    "1|a***\@example.com|A. A.\n2|bob\@example.org|Bob Baker\n3|c***\@example.net|Carol Clark\n"
  . "4|dave\@example.com|D. D.\n5|erin\@example.org|E. E.";
is($app->query_safe($read), $after_change, 'after the crash: changes reach a running session at its next statement');
$app->quit;

# A clean restart keeps all of it too.
$node->restart;
is(app_read(), $after_change, 'after a clean restart: the same decisions');
is($node->safe_psql('postgres', $state_vs_ledger), '', 'after a clean restart: subject_state agrees with the ledger');

$node->stop;
done_testing();
