
# Copyright: pg_consent contributors
#
# A portal read in parts through the extended query protocol (Execute with
# a row limit, as drivers do for a fetch size): every Execute is a
# statement of its own (PostgreSQL gives it its own statement_timestamp),
# so a withdrawal or a grant committed by another session between two
# Executes applies to the rows of the next one (SPEC.md section 5: "from
# the next statement of every other session"), as it does between two
# FETCHes of a cursor (test/isolation/specs/consent_cursor.spec).  psql
# cannot send a row limit, so this test speaks the protocol (version 3.0)
# over the server's Unix socket.
use strict;
use warnings;

use IO::Socket::UNIX;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

my $node = consent_node('protocol');

$node->safe_psql(
	'postgres', q{
    CREATE EXTENSION pg_consent;
    CREATE ROLE proto_app LOGIN;
    CREATE TABLE customers (id bigint PRIMARY KEY, email consent.email);
    INSERT INTO customers SELECT i, 'user' || i || '@example.com' FROM generate_series(1, 6) i;
    GRANT SELECT ON customers TO proto_app;
    SELECT FROM consent.protect('customers', 'id');
    SELECT FROM consent.allow_purpose('proto_app', 'personalize');
    SELECT count(consent.grant(i, 'user.contact.email', 'personalize')) FROM generate_series(1, 5) i;
});

# ---- a minimal protocol client -------------------------------------------

sub read_exactly
{
	my ($sock, $n) = @_;
	my $buf = '';
	while (length($buf) < $n)
	{
		my $got = sysread($sock, $buf, $n - length($buf), length($buf));
		die "connection closed\n" unless $got;
	}
	return $buf;
}

# The next message: (type, body).
sub read_message
{
	my ($sock) = @_;
	my ($type, $len) = unpack('a N', read_exactly($sock, 5));
	return ($type, read_exactly($sock, $len - 4));
}

sub send_message
{
	my ($sock, $type, $body) = @_;
	syswrite($sock, $type . pack('N', length($body) + 4) . $body) or die "write: $!\n";
}

# Reads messages up to one of the types in $stop; returns the data rows
# (as "id|email"), the type that stopped it and the error text if any.
sub read_until
{
	my ($sock, $stop) = @_;
	my (@rows, $error);
	while (1)
	{
		my ($type, $body) = read_message($sock);
		if ($type eq 'D')
		{
			my $n = unpack('n', $body);
			my $at = 2;
			my @cols;
			for (1 .. $n)
			{
				my $len = unpack('l>', substr($body, $at, 4));
				$at += 4;
				push @cols, $len < 0 ? '' : substr($body, $at, $len);
				$at += $len if $len > 0;
			}
			push @rows, join('|', @cols);
		}
		elsif ($type eq 'E')
		{
			my %f = map { substr($_, 0, 1) => substr($_, 1) } grep { length } split /\0/, $body;
			$error = "$f{C}: $f{M}";
		}
		return (\@rows, $type, $error) if index($stop, $type) >= 0;
	}
}

# A session with the given user, database and settings in the startup
# packet (trust authentication, as the test cluster is set up).
sub connect_as
{
	my (%settings) = @_;
	my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $node->host . '/.s.PGSQL.' . $node->port)
	  or die "connect: $!\n";
	my $params = join('', map { "$_\0$settings{$_}\0" } ('user', 'database', sort grep { !/^(user|database)$/ } keys %settings));
	my $startup = pack('N', 196608) . $params . "\0";
	syswrite($sock, pack('N', length($startup) + 4) . $startup) or die "write: $!\n";
	my (undef, $type, $error) = read_until($sock, 'ZE');
	die "startup failed: $error\n" if $type eq 'E';
	return $sock;
}

sub simple_query
{
	my ($sock, $sql) = @_;
	send_message($sock, 'Q', "$sql\0");
	my ($rows, undef, $error) = read_until($sock, 'Z');
	return ($rows, $error);
}

# Execute of the open portal "p", at most $limit rows (0: all), then Flush:
# returns the rows and whether the portal was suspended.
sub execute
{
	my ($sock, $limit) = @_;
	send_message($sock, 'E', "p\0" . pack('N', $limit));
	send_message($sock, 'H', '');
	my ($rows, $type, $error) = read_until($sock, 'sCE');
	die "execute failed: $error\n" if $type eq 'E';
	return ($rows, $type eq 's');
}

# ---- the portal ---------------------------------------------------------

my $app = connect_as(
	user => 'proto_app',
	database => 'postgres',
	'consent.purpose' => 'personalize');
my ($rows, $error) = simple_query($app, 'BEGIN');
is($error, undef, 'BEGIN');
send_message($app, 'P', "\0SELECT id, email FROM customers ORDER BY id\0" . pack('n', 0));
send_message($app, 'B', "p\0\0" . pack('n n n', 0, 0, 0));
send_message($app, 'H', '');
my (undef, $type) = read_until($app, '2E');
is($type, '2', 'Parse and Bind of the portal');

my $suspended;
($rows, $suspended) = execute($app, 2);
is_deeply($rows, [ '1|user1@example.com', '2|user2@example.com' ], 'first Execute: granted addresses in full');
ok($suspended, 'the portal is suspended after two rows');

# Another session withdraws 3 and grants 6, and commits.
$node->safe_psql(
	'postgres', q{
    SELECT FROM consent.withdraw(3, 'user.contact.email', 'personalize');
    SELECT FROM consent.grant(6, 'user.contact.email', 'personalize');
});

($rows, $suspended) = execute($app, 2);
is_deeply($rows, [ '3|u***@example.com', '4|user4@example.com' ],
	'second Execute: the withdrawal committed meanwhile masks 3');

$node->safe_psql('postgres', q{SELECT FROM consent.withdraw(5, 'user.contact.email', 'personalize')});

($rows, $suspended) = execute($app, 0);
is_deeply($rows, [ '5|u***@example.com', '6|user6@example.com' ],
	'third Execute: 5 withdrawn meanwhile is masked, 6 granted before is revealed');
ok(!$suspended, 'the portal is complete');

send_message($app, 'S', '');
read_until($app, 'Z');
($rows, $error) = simple_query($app, 'COMMIT');
is($error, undef, 'COMMIT');

# The same in one transaction opened by the protocol's implicit
# transaction block (no BEGIN: the portal lives until Sync).
send_message($app, 'P', "\0SELECT id, email FROM customers ORDER BY id\0" . pack('n', 0));
send_message($app, 'B', "p\0\0" . pack('n n n', 0, 0, 0));
send_message($app, 'H', '');
read_until($app, '2E');
($rows, $suspended) = execute($app, 3);
is_deeply($rows, [ '1|user1@example.com', '2|user2@example.com', '3|u***@example.com' ],
	'implicit block: first Execute');
$node->safe_psql(
	'postgres', q{
    SELECT FROM consent.withdraw(4, 'user.contact.email', 'personalize');
    SELECT FROM consent.grant(5, 'user.contact.email', 'personalize');
});
($rows, $suspended) = execute($app, 0);
is_deeply($rows, [ '4|u***@example.com', '5|user5@example.com', '6|user6@example.com' ],
	'implicit block: the next Execute sees the withdrawal of 4 and the grant of 5');
send_message($app, 'S', '');
read_until($app, 'Z');

send_message($app, 'X', '');
close($app);
$node->stop;
done_testing();
