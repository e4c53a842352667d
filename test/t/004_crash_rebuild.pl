# Copyright: pg_consent contributors
#
# The shared consent state is derived data (docs/architecture.md, "The
# shared consent state"): a backend killed with SIGKILL in the middle of a
# burst of consent changes makes the postmaster reinitialize shared memory;
# the state is rebuilt from consent.subject_state by the first statement
# that needs it (the others wait), so no decision served after the restart
# is wrong.  Every decision is checked against consent.granted() and
# against the ledger itself, for 400 subjects, in several sessions at once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = consent_node('crash', "max_connections = 40\nrestart_after_crash = on");

$node->safe_psql('postgres',
	protected_customers_sql('SELECT generate_series(1, 400)', name => 1) . ledger_says_sql() . q{
    SELECT count(consent.grant(id, 'user.contact.email', 'personalize')) FROM customers WHERE id % 2 = 0;
});

my $check = q{SET ROLE app; SET consent.purpose = 'personalize';
    SELECT count(*) FILTER (WHERE (email = 'e' || id || '@example.com') IS DISTINCT FROM ledger_says(id, 'user.contact.email')
                               OR (name = 'Name ' || id) IS DISTINCT FROM ledger_says(id, 'user.name')) || '/' ||
           count(*) FILTER (WHERE consent.granted(id, 'user.contact.email', 'personalize') IS DISTINCT FROM ledger_says(id, 'user.contact.email')
                               OR consent.granted(id, 'user.name', 'personalize') IS DISTINCT FROM ledger_says(id, 'user.name')) || '/' ||
           count(*) FILTER (WHERE email = 'e' || id || '@example.com' OR name = 'Name ' || id)
    FROM customers};

like($node->safe_psql('postgres', $check), qr{^0/0/200$}, 'before the crash: 200 subjects revealed, as the ledger says');
is($node->safe_psql('postgres', 'SELECT status FROM consent.shared_state()'), 'ready', 'the shared state is built');

# the burst: 4 clients, each on its own subjects, two changes per transaction
my $dir = PostgreSQL::Test::Utils::tempdir;
open my $fh, '>', "$dir/change.sql" or die;
print $fh q{\set s 1 + :client_id * 100 + random(0, 99)
\set t 1 + :client_id * 100 + random(0, 99)
\set a random(0, 1)
BEGIN;
SELECT CASE WHEN :a = 0 THEN consent.withdraw(:s, 'user.contact.email', 'personalize') ELSE consent.grant(:s, 'user.contact.email', 'personalize') END;
SELECT CASE WHEN :a = 1 THEN consent.withdraw(:t, 'user.name', 'personalize') ELSE consent.grant(:t, 'user.name', 'personalize') END;
COMMIT;
};
close $fh;

for my $crash (1 .. 2)
{
	my ($out, $err) = ('', '');
	local $ENV{PGAPPNAME} = 'burst';
	my $bench = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '4', '-j', '2', '-T', '30', '-f', "$dir/change.sql",
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	usleep(1_500_000);
	my $pid = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE application_name = 'burst' AND state <> 'idle' ORDER BY pid LIMIT 1});
	$pid = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE application_name = 'burst' ORDER BY pid LIMIT 1}) if $pid eq '';
	ok($pid =~ /^\d+$/, "crash $crash: a pgbench backend is running ($pid)") or diag("pgbench: $out $err");
	kill 'KILL', $pid;
	$bench->finish;    # its clients lose their connections
	$node->poll_query_until('postgres', 'SELECT true') or die 'the server did not come back';
	my $kills = () = slurp_file($node->logfile) =~ /terminated by signal 9/g;
	is($kills, $crash, "crash $crash: the postmaster saw the killed backend and restarted");

	# several sessions decide at once right after the restart: one builds,
	# the others wait for it
	my @runs;
	for my $i (1 .. 4)
	{
		my ($o, $e) = ('', '');
		my $h = IPC::Run::start(
			[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port, '-c', $check, 'postgres' ],
			'>', \$o, '2>', \$e);
		push @runs, [ $h, \$o, \$e ];
	}
	my $all_ok = 1;
	for my $r (@runs)
	{
		$r->[0]->finish;
		my $o = ${ $r->[1] };
		chomp $o;
		if ($o !~ m{^0/0/\d+$})
		{
			$all_ok = 0;
			diag("crash $crash: a session answered '$o' ${ $r->[2] }");
		}
	}
	ok($all_ok, "crash $crash: every decision of 4 concurrent sessions after the restart equals the ledger and granted()");
	my ($status, $builds) = split /\|/,
	  $node->safe_psql('postgres', 'SELECT status, builds FROM consent.shared_state()');
	is($status, 'ready', "crash $crash: the shared state is ready again");
	is($builds, '1', "crash $crash: it was built once after the restart");
}

my $events = $node->safe_psql('postgres', 'SELECT count(*) FROM consent.ledger');
cmp_ok($events, '>', 400, "the bursts recorded events ($events)");
# subject_state agrees with the ledger after both crashes
is( $node->safe_psql(
		'postgres', q{
    SELECT count(*) FROM customers
     WHERE consent.granted(id, 'user.contact.email', 'personalize') IS DISTINCT FROM ledger_says(id, 'user.contact.email')}),
	'0',
	'granted() equals the ledger as superuser too');

# a withdrawal after the restart reaches the next statement of a new session
$node->safe_psql('postgres', q{SELECT consent.grant(7, 'user.contact.email', 'personalize')});
like($node->safe_psql('postgres', q{SET ROLE app; SET consent.purpose = 'personalize'; SELECT email FROM customers WHERE id = 7}),
	qr/^e7\@example\.com$/, 'a grant after the restart reveals');
$node->safe_psql('postgres', q{SELECT consent.withdraw(7, 'user.contact.email', 'personalize')});
unlike($node->safe_psql('postgres', q{SET ROLE app; SET consent.purpose = 'personalize'; SELECT email FROM customers WHERE id = 7}),
	qr/^e7\@example\.com$/, 'a withdrawal after the restart masks');

done_testing();
