# Copyright: pg_consent contributors
#
# pg_consent with logical replication (docs/scaling.md): a publisher ships
# the consent data to a subscriber that also has pg_consent, and the
# subscriber enforces the same decisions.
#
# What is replicated and what is not:
#  - consent.ledger and consent.subject_state: all of it (the ledger ids are
#    the publisher's; consent is recorded on the publisher only);
#  - consent.purpose_roles: all of it (role names; the roles exist on both
#    clusters, as roles are never replicated);
#  - consent.purposes: only what users added (WHERE NOT shipped: CREATE
#    EXTENSION creates the shipped rows on both), inserts only (a row filter
#    on a column outside the replica identity allows no UPDATE or DELETE
#    publication);
#  - the protected table shop.customers;
#  - NOT consent.categories: a category is a type (define_category runs
#    CREATE DOMAIN), which is DDL, so it is defined on both nodes before the
#    tables that use it;
#  - NOT consent.protected_tables and consent.column_masks: they hold
#    regclass OIDs of each node, and protect() also creates row-level
#    security policies (DDL): both are run on each node.
#
# Checked: the same masked output, string for string, for the same role and
# purpose on both nodes, after the initial copy, after grants and
# withdrawals, after a purpose is defined, allowed and revoked; the same
# ledger and subject_state; and that sessions of the subscriber that stay
# open across a replicated change follow it at their next statement.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

my $publisher = consent_node('publisher', 'max_prepared_transactions = 4', allows_streaming => 'logical');

my $subscriber = consent_node('subscriber', 'max_prepared_transactions = 4');

# The schema, on both nodes: extension, roles, a user-defined category (a
# type), the protected table, its protection and masks.
my $schema = q{
    CREATE EXTENSION pg_consent;
    CREATE ROLE app LOGIN;
    SELECT FROM consent.define_category('user.loyalty', 'text', 'loyalty_tier', 'redact');
    CREATE SCHEMA shop;
    CREATE TABLE shop.customers (id bigint PRIMARY KEY, email consent.email, name consent.name,
                                 birthdate consent.birthdate, tier consent.loyalty_tier);
    GRANT USAGE ON SCHEMA shop TO app;
    GRANT SELECT ON shop.customers TO app;
    SELECT FROM consent.protect('shop.customers', 'id');
    SELECT FROM consent.set_mask('shop.customers', 'name', 'partial(1,0)');
};
$publisher->safe_psql('postgres', $schema);
$subscriber->safe_psql('postgres', $schema);

# Data and consent, on the publisher only.
$publisher->safe_psql(
	'postgres', q{
    INSERT INTO shop.customers VALUES
        (1, 'alice@example.com', 'Alice Archer', '1985-04-12', 'gold'),
        (2, 'bob@example.org',   'Bob Baker',    '1990-11-30', 'silver'),
        (3, 'carol@example.net', 'Carol Clark',  '1978-07-04', 'bronze'),
        (4, 'dave@example.com',  'Dave Dunn',    '2001-02-28', 'gold');
    SELECT FROM consent.allow_purpose('app', 'personalize');
    SELECT FROM consent.allow_purpose('app', 'marketing');
    SELECT FROM consent.grant(1, 'user.contact.email', 'personalize');
    SELECT FROM consent.grant(2, 'user', 'personalize');
    SELECT FROM consent.grant(3, 'user.name', 'marketing');
    SELECT FROM consent.grant(3, 'user.loyalty', 'marketing');
    SELECT FROM consent.grant(4, 'user', 'marketing');
    SELECT FROM consent.withdraw(4, 'user.contact', 'marketing.communications');
    CREATE PUBLICATION consent_data
        FOR TABLE consent.ledger, consent.subject_state, consent.purpose_roles, shop.customers;
    CREATE PUBLICATION consent_purposes FOR TABLE consent.purposes WHERE (NOT shipped)
        WITH (publish = 'insert');
});

my $connstr = $publisher->connstr . ' dbname=postgres';
$subscriber->safe_psql('postgres',
	"CREATE SUBSCRIPTION consent_sub CONNECTION '$connstr' PUBLICATION consent_data, consent_purposes
     WITH (two_phase = true)");
$subscriber->wait_for_subscription_sync($publisher, 'consent_sub');
# prepared transactions are applied as such once the tables are in sync
$subscriber->poll_query_until('postgres',
	q{SELECT subtwophasestate = 'e' FROM pg_subscription WHERE subname = 'consent_sub'})
  or die 'two-phase commit not enabled on the subscription';

# Runs $sql as app on $node in a new connection, under $purpose if defined;
# returns (exit code, stdout, stderr).
sub app_psql
{
	my ($node, $sql, $purpose) = @_;
	my $prefix = "\\set VERBOSITY verbose\n";
	$prefix .= "SET consent.purpose = '$purpose';\n" if defined $purpose;
	return $node->psql('postgres', $prefix . $sql, extra_params => [ '-U', 'app' ]);
}

my $read = 'SELECT id, email, name, birthdate, tier FROM shop.customers ORDER BY id';

# Reads as app under each purpose on both nodes and checks that the
# subscriber returns what the publisher returns and that this is $expected.
sub same_on_both
{
	my ($label, %expected) = @_;
	for my $purpose (sort keys %expected)
	{
		my $p = $purpose eq 'none' ? undef : $purpose;
		my ($rp, $on_publisher, $ep) = app_psql($publisher, $read, $p);
		my ($rs, $on_subscriber, $es) = app_psql($subscriber, $read, $p);
		is($rp, 0, "$label, $purpose: the read works on the publisher") or diag($ep);
		is($rs, 0, "$label, $purpose: the read works on the subscriber") or diag($es);
		is($on_publisher, $expected{$purpose}, "$label, $purpose: the publisher masks as expected");
		is($on_subscriber, $on_publisher, "$label, $purpose: the subscriber returns exactly what the publisher returns");
	}
}

# The consent data of a node, in one string.
my $consent_data = q{
    SELECT (SELECT string_agg(concat_ws(' ', id, subject, category, purpose, action, valid_until, recorded_at,
                                        recorded_by), E'\n' ORDER BY id) FROM consent.ledger)
        || E'\n--\n' ||
           (SELECT string_agg(concat_ws(' ', subject, category, purpose, event_id, action, recorded_at,
                                        withdrawn_at, withdrawn_id), E'\n' ORDER BY subject, category, purpose)
            FROM consent.subject_state)
        || E'\n--\n' ||
           (SELECT string_agg(role::text || ' ' || purpose, E'\n' ORDER BY role::text, purpose)
            FROM consent.purpose_roles)
        || E'\n--\n' ||
           (SELECT string_agg(key || ' ' || basis || ' ' || shipped, E'\n' ORDER BY key) FROM consent.purposes)
};
sub same_consent_data
{
	my ($label) = @_;
	my $on_publisher = $publisher->safe_psql('postgres', $consent_data);
	like($on_publisher, qr/^1 1 user\.contact\.email personalize grant/, "$label: the publisher's ledger");
	is($subscriber->safe_psql('postgres', $consent_data),
		$on_publisher, "$label: ledger, subject_state, purpose_roles and purposes are the same on the subscriber");
}

my %initial = (
	personalize => "1|alice\@example.com|A***|1985-01-01|[redacted]\n"
	  . "2|bob\@example.org|Bob Baker|1990-11-30|silver\n"
	  . "3|c***\@example.net|C***|1978-01-01|[redacted]\n"
	  . "4|d***\@example.com|D***|2001-01-01|[redacted]",
	marketing => "1|a***\@example.com|A***|1985-01-01|[redacted]\n"
	  . "2|b***\@example.org|B***|1990-01-01|[redacted]\n"
	  . "3|c***\@example.net|Carol Clark|1978-01-01|bronze\n"
	  . "4|dave\@example.com|Dave Dunn|2001-02-28|gold",
	none => "1|a***\@example.com|A***|1985-01-01|[redacted]\n"
	  . "2|b***\@example.org|B***|1990-01-01|[redacted]\n"
	  . "3|c***\@example.net|C***|1978-01-01|[redacted]\n"
	  . "4|d***\@example.com|D***|2001-01-01|[redacted]",);

same_consent_data('after the initial copy');
same_on_both('after the initial copy', %initial);
is($subscriber->safe_psql('postgres', 'SELECT count(*) FROM consent.purposes WHERE shipped'),
	$publisher->safe_psql('postgres', 'SELECT count(*) FROM consent.purposes WHERE shipped'),
	'the shipped purposes are not copied twice');

# consent.granted() answers alike (superuser; now and at a time).
my $granted_sql = q{
    SELECT string_agg(id || ':' || consent.granted(id, 'user.contact.email', 'personalize')::text
                      || '/' || consent.granted(id, 'user.loyalty', 'marketing', clock_timestamp())::text, ' '
                      ORDER BY id)
    FROM shop.customers};
is($publisher->safe_psql('postgres', $granted_sql),
	'1:true/false 2:true/false 3:false/true 4:false/true', 'publisher: consent.granted()');
is($subscriber->safe_psql('postgres', $granted_sql),
	$publisher->safe_psql('postgres', $granted_sql), 'subscriber: consent.granted() answers alike');

# The subscriber's ledger stays append-only for its own sessions.
my ($ret, $out, $err) =
  $subscriber->psql('postgres', "\\set VERBOSITY verbose\nUPDATE consent.ledger SET action = 'grant'");
like($err, qr/ERROR:  42501: the consent ledger is append-only: UPDATE is not allowed/,
	'subscriber: the replicated ledger is append-only for local sessions');

# --- changes on the publisher ------------------------------------------------

# Sessions of the subscriber that stay open across the changes.
my $sub_personalize =
  $subscriber->background_psql('postgres', extra_params => [ '-U', 'app' ], on_error_stop => 0);
my $sub_marketing = $subscriber->background_psql('postgres', extra_params => [ '-U', 'app' ]);
my $sub_dba = $subscriber->background_psql('postgres');
$sub_personalize->query_safe("SET consent.purpose = 'personalize'");
$sub_marketing->query_safe("SET consent.purpose = 'marketing'");
is($sub_personalize->query_safe($read), $initial{personalize}, 'open subscriber session (personalize) reads');
is($sub_marketing->query_safe($read), $initial{marketing}, 'open subscriber session (marketing) reads');
is($sub_dba->query_safe($granted_sql), '1:true/false 2:true/false 3:false/true 4:false/true',
	'open subscriber superuser session: granted()');

# A withdrawal and a grant.
$publisher->safe_psql(
	'postgres', q{
    SELECT FROM consent.withdraw(1, 'user.contact.email', 'personalize');
    SELECT FROM consent.grant(3, 'user.contact', 'personalize');
    SELECT FROM consent.withdraw(4, 'user', 'marketing');
    SELECT FROM consent.grant(1, 'user.loyalty', 'marketing');
});
$publisher->wait_for_catchup('consent_sub');

my %changed = (
	personalize => "1|a***\@example.com|A***|1985-01-01|[redacted]\n"
	  . "2|bob\@example.org|Bob Baker|1990-11-30|silver\n"
	  . "3|carol\@example.net|C***|1978-01-01|[redacted]\n"
	  . "4|d***\@example.com|D***|2001-01-01|[redacted]",
	marketing => "1|a***\@example.com|A***|1985-01-01|gold\n"
	  . "2|b***\@example.org|B***|1990-01-01|[redacted]\n"
	  . "3|c***\@example.net|Carol Clark|1978-01-01|bronze\n"
	  . "4|d***\@example.com|D***|2001-01-01|[redacted]",
	none => $initial{none},);
same_consent_data('after a grant and a withdrawal');
same_on_both('after a grant and a withdrawal', %changed);
is($subscriber->safe_psql('postgres', $granted_sql),
	'1:false/true 2:true/false 3:true/true 4:false/false', 'subscriber, new session: granted() follows');

# The open subscriber sessions, at their next statement.
my $stale = $sub_personalize->query_safe($read);
unlike($stale, qr/alice\@example\.com/, 'open subscriber session: a replicated withdrawal masks at the next statement');
like($stale, qr/carol\@example\.net/, 'open subscriber session: a replicated grant reveals at the next statement');
is($stale, $changed{personalize}, 'open subscriber session (personalize): exactly what the publisher shows');
$stale = $sub_marketing->query_safe($read);
unlike($stale, qr/dave\@example\.com|Dave Dunn/,
	'open subscriber session: a replicated withdrawal of an ancestor category masks');
is($stale, $changed{marketing}, 'open subscriber session (marketing): exactly what the publisher shows');
is($sub_dba->query_safe($granted_sql), '1:false/true 2:true/false 3:true/true 4:false/false',
	'open subscriber superuser session: granted() follows');

# --- purposes: defined, allowed, revoked on the publisher --------------------

$publisher->safe_psql(
	'postgres', q{
    SELECT FROM consent.define_purpose('partner_sharing', label => 'Sharing with partners');
    SELECT FROM consent.allow_purpose('app', 'partner_sharing');
    SELECT FROM consent.grant(2, 'user.contact.email', 'partner_sharing');
    SELECT FROM consent.revoke_purpose('app', 'marketing');
});
$publisher->wait_for_catchup('consent_sub');
same_consent_data('after define_purpose, allow_purpose and revoke_purpose');

my $partner = "1|a***\@example.com|A***|1985-01-01|[redacted]\n"
  . "2|bob\@example.org|B***|1990-01-01|[redacted]\n"
  . "3|c***\@example.net|C***|1978-01-01|[redacted]\n"
  . "4|d***\@example.com|D***|2001-01-01|[redacted]";
same_on_both('a purpose defined on the publisher', partner_sharing => $partner, personalize => $changed{personalize});
($ret, $out, $err) = app_psql($subscriber, 'SELECT 1', 'marketing');
like($err, qr/ERROR:  42501: role "app" is not allowed to act under purpose "marketing"/,
	'subscriber, new session: the replicated revoke_purpose is in effect');

# The open sessions: marketing was revoked, partner_sharing is new.
$stale = $sub_marketing->query_safe($read);
is($stale, $initial{none}, 'open subscriber session: a replicated revoke_purpose masks everything');
$sub_personalize->query_safe('RESET consent.purpose');
$out = $sub_personalize->query("SET consent.purpose = 'partner_sharing'");
is($sub_personalize->{stderr}, '', 'open subscriber session: a purpose defined on the publisher can be set');
$sub_personalize->{stderr} = '';
is($sub_personalize->query("SET consent.purpose = 'partner_sharing'; $read"),
	$partner, 'open subscriber session: under the new purpose, the same output as the publisher');
$sub_personalize->{stderr} = '';

# --- two-phase commit ---------------------------------------------------------

# A withdrawal prepared on the publisher is prepared on the subscriber by the
# apply worker, which later commits it there itself (no COMMIT PREPARED
# statement runs on the subscriber).  A subscriber session that starts after
# the PREPARE, and whose cursor's sort decided subject 2 (revealed) before the
# commit, must not return its e-mail afterwards: its next FETCH fails.
$publisher->safe_psql(
	'postgres', q{
    BEGIN;
    SELECT FROM consent.withdraw(2, 'user.contact.email', 'partner_sharing');
    PREPARE TRANSACTION 'withdraw2'});
$publisher->wait_for_catchup('consent_sub');
is($subscriber->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
	'1', 'the subscriber holds the prepared withdrawal');
my $cursor = $subscriber->background_psql('postgres', extra_params => [ '-U', 'app' ], on_error_stop => 0);
$cursor->query_safe("SET consent.purpose = 'partner_sharing'");
$cursor->query_safe('BEGIN');
$cursor->query_safe('DECLARE c CURSOR FOR SELECT id, email FROM shop.customers ORDER BY id + 0 DESC');
is($cursor->query_safe('FETCH 2 FROM c'), "4|d***\@example.com\n3|c***\@example.net",
	'a subscriber cursor (sorted) returns its first rows while the withdrawal is prepared');
$publisher->safe_psql('postgres', q{COMMIT PREPARED 'withdraw2'});
$publisher->wait_for_catchup('consent_sub');
is($subscriber->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
	'0', 'the apply worker committed it');
$out = $cursor->query('FETCH 1 FROM c');
unlike($out, qr/bob\@example\.org/, 'the cursor does not return the withdrawn e-mail');
like($cursor->{stderr}, qr/cannot return rows decided under earlier consent/,
	'its FETCH fails: the subject it decided changed');
$cursor->{stderr} = '';
$cursor->query_safe('ROLLBACK');
is($cursor->query_safe('SELECT email FROM shop.customers WHERE id = 2'),
	"b***\@example.org", 'the next statement masks it');
$cursor->quit;

$_->quit for ($sub_personalize, $sub_marketing, $sub_dba);
$subscriber->stop;
$publisher->stop;
done_testing();
