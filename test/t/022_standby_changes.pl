# Copyright: pg_consent contributors
#
# A hot standby under continuous consent changes (docs/scaling.md, "Hot
# standbys"): the primary commits grants and withdrawals all the time (and
# aborts some), and the standby's replay is paused at arbitrary WAL
# positions — sometimes between a transaction's pg_consent WAL record and
# its commit record.  At each pause every decision the standby serves (the
# masked e-mail, and consent.granted()) must equal what the replayed ledger
# says, for every subject, in a new session and in a session that stayed
# open; the standby's shared consent state is updated per subject (it is
# built once, not again per change).
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

my $primary = consent_node('primary', 'max_connections = 40', allows_streaming => 1);

# Two writer clients, each with its own 100 subjects (client 0: 1000-1099,
# client 1: 2000-2099): a pair is never changed by two transactions at once,
# so the ledger's order of events is the commit order.
$primary->safe_psql('postgres',
	protected_customers_sql('SELECT generate_series(1000, 1099) UNION ALL SELECT generate_series(2000, 2099)')
	  . ledger_says_sql() . q{
    SELECT count(consent.grant(id, 'user.contact.email', 'personalize')) FROM customers WHERE id % 3 = 0;
});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby, 'replay');

my $check = q{SET ROLE app; SET consent.purpose = 'personalize';
    SELECT count(*) FILTER (WHERE (email = 'e' || id || '@example.com') IS DISTINCT FROM ledger_says(id)) || '/' ||
           count(*) FILTER (WHERE consent.granted(id, 'user.contact.email', 'personalize') IS DISTINCT FROM ledger_says(id)) || '/' ||
           count(*) FILTER (WHERE email = 'e' || id || '@example.com')
    FROM customers};

my $first = $standby->safe_psql('postgres', $check);
like($first, qr{^0/0/\d+$}, "the standby decides as its ledger says before any change ($first)");

# the writers: 4 of 5 transactions change two subjects (grant or withdraw
# each), 1 of 5 changes one and rolls back
my $dir = PostgreSQL::Test::Utils::tempdir;
open my $fh, '>', "$dir/change.sql" or die;
print $fh q{\set s 1000 + :client_id * 1000 + random(0, 99)
\set t 1000 + :client_id * 1000 + random(0, 99)
\set a random(0, 1)
\set b random(0, 1)
BEGIN;
SELECT CASE WHEN :a = 0 THEN consent.withdraw(:s, 'user.contact.email', 'personalize') ELSE consent.grant(:s, 'user.contact.email', 'personalize') END;
SELECT CASE WHEN :b = 0 THEN consent.withdraw(:t, 'user.contact.email', 'personalize') ELSE consent.grant(:t, 'user.contact.email', 'personalize') END;
COMMIT;
};
close $fh;
open $fh, '>', "$dir/abort.sql" or die;
print $fh q{\set s 1000 + :client_id * 1000 + random(0, 99)
BEGIN;
SELECT consent.grant(:s, 'user.contact.email', 'personalize');
ROLLBACK;
};
close $fh;

my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '2', '-j', '2', '-T', '60', '-R', '200',
		'-f', "$dir/change.sql\@4", '-f', "$dir/abort.sql\@1",
		'-h', $primary->host, '-p', $primary->port, 'postgres'
	],
	'>', \$out, '2>', \$err);

# a standby session that stays open across every pause
my ($in_s, $out_s, $err_s) = ('', '', '');
my $open = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', $standby->host, '-p', $standby->port, 'postgres' ],
	'<', \$in_s, '>', \$out_s, '2>', \$err_s);

sub open_session_check
{
	my $marker = 'done' . int(rand(1_000_000));
	$out_s = '';
	$in_s .= "$check;\n\\echo $marker\n";
	my $deadline = time + 60;
	while ($out_s !~ /$marker/ && time < $deadline)
	{
		$open->pump_nb;
		usleep(10_000);
	}
	my ($line) = $out_s =~ /^(\d+\/\d+\/\d+)$/m;
	return $line // "no answer: $err_s";
}

my $ok_rounds = 0;
my %revealed;
my $rounds = 25;
for my $round (1 .. $rounds)
{
	$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
	usleep(50_000 + int(rand(250_000)));
	$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
	$standby->poll_query_until('postgres', "SELECT pg_get_wal_replay_pause_state() = 'paused'")
	  or die 'replay did not pause';
	my $new = $standby->safe_psql('postgres', $check);
	my $kept = open_session_check();
	my ($new_bad) = $new =~ m{^(\d+/\d+)/};
	my ($kept_bad) = $kept =~ m{^(\d+/\d+)/};
	$revealed{ (split m{/}, $new)[2] // '' } = 1;
	if (($new_bad // '') eq '0/0' && ($kept_bad // '') eq '0/0')
	{
		$ok_rounds++;
	}
	else
	{
		diag("round $round: new session $new, open session $kept");
	}
}
is($ok_rounds, $rounds, "every standby decision equals the replayed ledger at $rounds pause points");
cmp_ok(scalar(keys %revealed), '>', 3, 'the pause points saw different states (' . join(',', sort keys %revealed) . ' revealed)');

$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
$bench->kill_kill;
$bench->finish;
my $changes = $primary->safe_psql('postgres', 'SELECT count(*) FROM consent.ledger');
cmp_ok($changes, '>', 500, "the primary recorded $changes events meanwhile");
$primary->wait_for_catchup($standby, 'replay');
like($standby->safe_psql('postgres', $check), qr{^0/0/\d+$}, 'after catching up the standby decides as the ledger says');
is($standby->safe_psql('postgres', $check), $primary->safe_psql('postgres', $check), 'the standby and the primary reveal the same');

# per-subject replay: the standby built its shared state once
my $builds = $standby->safe_psql('postgres', 'SELECT builds FROM consent.shared_state()');
is($builds, '1', 'the standby built its shared consent state once, then applied each replayed change');
is($standby->safe_psql('postgres', 'SELECT status FROM consent.shared_state()'), 'ready', 'the standby state is ready');

$in_s .= "\\q\n";
$open->finish;
done_testing();
