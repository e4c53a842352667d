
# Copyright: pg_consent contributors
#
# Citus shard moves with pg_consent preloaded on every node (a coordinator
# and two workers on this machine, shared_preload_libraries =
# 'citus,pg_consent', wal_level = logical).
#
# A shard move in the default mode (shard_transfer_mode => 'auto') copies
# the shard through logical replication: the source worker runs a walsender
# with pgoutput for the target's subscription.  Every backend, walsenders
# included, has 10 relcache invalidation callback slots for PostgreSQL and
# all its libraries; a library that takes too many leaves the walsender
# none, it dies with "FATAL: out of relcache_callback_list slots", and the
# move waits for a subscription that never catches up (it hung).
#
# Checked:
#  - a move with shard_transfer_mode => 'auto' of a shard of a distributed
#    table with a tagged column (consent.address) returns within 120 s (a
#    statement_timeout and the psql timeout stop a hang), through logical
#    replication (the source worker logged the CREATE_REPLICATION_SLOT and
#    START_REPLICATION commands of Citus's slot, log_replication_commands);
#  - the shard is on the target afterwards (citus_shards, pg_dist_placement),
#    and its rows, read as superuser from the shard table on the target,
#    are exactly the raw rows inserted (no masked value copied), the row
#    count through the coordinator is unchanged, reading them through the
#    coordinator returns them raw or fails closed (42501, today: see
#    docs/scaling.md), and a row inserted afterwards lands on the target;
#  - the same for a move with shard_transfer_mode => 'block_writes' (a copy
#    without logical replication), the control;
#  - a plain logical replication subscription between the workers (pgoutput
#    walsender on worker 1, apply worker on worker 2, both with
#    citus,pg_consent) copies and streams a table with a tagged column;
#  - no node's log contains "out of relcache_callback_list slots" or "out
#    of syscache_callback_list slots" (the check itself is checked against
#    a made-up log line), and no postmaster restarted.
#
# Skipped when Citus is not installed for this PostgreSQL
# (test/harness/citus.sh builds and installs it).
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConsentCitus;
use Time::HiRes qw(usleep);

skip_without_citus();

# The log lines of a backend that found no free callback slot.
sub callback_slot_errors
{
	my ($log) = @_;
	return grep { /out of (?:relcache|syscache)_callback_list slots/ } split /\n/, $log;
}
is(scalar(callback_slot_errors(
			"2026-01-01 00:00:00.000 UTC [4242] FATAL:  out of relcache_callback_list slots\n"
			  . "2026-01-01 00:00:00.000 UTC [4243] FATAL:  out of syscache_callback_list slots\n"
			  . "2026-01-01 00:00:00.000 UTC [4244] LOG:  checkpoint complete\n")),
	2, 'the log check recognises the callback slot errors');

# ---- the cluster ---------------------------------------------------------

# wal_level = logical and replication connections allowed (a move copies a
# shard through logical replication), with room for its slots and senders
my @nodes = citus_cluster(
	[qw(coordinator worker1 worker2)],
	init => { allows_streaming => 'logical' },
	conf => "max_replication_slots = 16\nmax_wal_senders = 16\nlog_replication_commands = on\n");
my ($coord, $worker1, $worker2) = @nodes;
my @workers = ($worker1, $worker2);
is($coord->safe_psql('postgres', 'SELECT count(*) FROM citus_get_active_worker_nodes()'),
	'2', 'the coordinator sees two workers');

# pg_consent after citus; Citus propagates CREATE EXTENSION to the workers,
# create it where it did not.
$coord->safe_psql('postgres', 'CREATE EXTENSION pg_consent');
for my $w (@workers)
{
	next
	  if $w->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'pg_consent'") eq '1';
	$w->safe_psql('postgres', 'CREATE EXTENSION pg_consent');
}

# Waits up to $seconds for $sql to return true on $node (no die: a check
# that times out fails, and the log checks at the end still run).
sub wait_for
{
	my ($node, $sql, $seconds) = @_;
	for (1 .. $seconds * 4)
	{
		return 1 if $node->safe_psql('postgres', $sql) eq 't';
		usleep(250_000);
	}
	return 0;
}

my $started = join ',', map { $_->safe_psql('postgres', 'SELECT pg_postmaster_start_time()') } @nodes;

# ---- the distributed table -----------------------------------------------

# 300 orders of 60 customers; logical replication needs a replica identity.
$coord->safe_psql(
	'postgres', q{
    CREATE TABLE orders (order_id int, customer_id bigint, shipping consent.address,
                         PRIMARY KEY (customer_id, order_id));
    SELECT FROM create_distributed_table('orders', 'customer_id');
    INSERT INTO orders SELECT g, g % 60 + 1, g || ' Raw Street, Springfield' FROM generate_series(1, 300) g;
});
my $total = $coord->safe_psql('postgres', 'SELECT count(*) FROM orders');
is($total, '300', 'the distributed table holds 300 rows');

my %node_by_port = map { $_->port => $_ } @workers;

# The node holding the one placement of $shardid (citus_shards).
sub placement
{
	my ($shardid) = @_;
	my $port = $coord->safe_psql('postgres', "SELECT nodeport FROM citus_shards WHERE shardid = $shardid");
	return $node_by_port{$port};
}

# The raw rows of $shardid, as inserted: "order_id|customer_id|shipping",
# from the coordinator's metadata (no tagged column read there).
sub expected_rows
{
	my ($shardid) = @_;
	my @ids = split /\n/,
	  $coord->safe_psql('postgres',
		"SELECT order_id || '|' || customer_id FROM orders WHERE get_shard_id_for_distribution_column('orders', customer_id) = $shardid ORDER BY 1"
	  );
	return join "\n", sort map { my ($o) = split /\|/; "$_|$o Raw Street, Springfield" } @ids;
}

# The rows of the shard table of $shardid on $node, read as superuser.
sub shard_rows
{
	my ($node, $shardid) = @_;
	my ($rc, $rows, $err) = $node->psql('postgres',
		"SELECT order_id || '|' || customer_id || '|' || shipping FROM orders_$shardid");
	return $err if $rc != 0;
	return join "\n", sort split /\n/, $rows;
}

my @shards_on_w1 = split /\n/,
  $coord->safe_psql('postgres',
	sprintf("SELECT shardid FROM citus_shards WHERE table_name = 'orders'::regclass AND nodeport = %d ORDER BY shardid",
		$worker1->port));
cmp_ok(scalar(@shards_on_w1), '>=', 2, 'worker 1 holds at least two shards of orders')
  or BAIL_OUT('no two shards to move');

# ---- a plain logical replication subscription between the workers ---------

$worker1->safe_psql(
	'postgres', q{
    CREATE TABLE plain_rep (id int PRIMARY KEY, shipping consent.address);
    INSERT INTO plain_rep VALUES (1, '1 Plain Road');
    SET citus.enable_ddl_propagation = off;  -- a publication of worker 1 alone
    CREATE PUBLICATION plain_pub FOR TABLE plain_rep;
});
$worker2->safe_psql('postgres', 'CREATE TABLE plain_rep (id int PRIMARY KEY, shipping consent.address)');
$worker2->safe_psql('postgres',
	sprintf("CREATE SUBSCRIPTION plain_sub CONNECTION '%s dbname=postgres' PUBLICATION plain_pub",
		$worker1->connstr));
ok(wait_for($worker2, "SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')", 60),
	'plain subscription: the initial sync ends within 60 s');
is($worker2->safe_psql('postgres', 'SELECT id || shipping FROM plain_rep'),
	'11 Plain Road', 'plain subscription: the initial copy reached worker 2');
ok(wait_for($worker1, "SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'plain_sub' AND state = 'streaming'", 60),
	'plain subscription: the pgoutput walsender on worker 1 streams');

# ---- the moves -----------------------------------------------------------

# Moves $shardid from worker 1 to worker 2 in $mode; returns (psql exit
# code, stderr, whether psql was stopped by the timeout, seconds taken).
sub move
{
	my ($shardid, $mode) = @_;
	my ($out, $err, $timed_out) = ('', '', 0);
	my $t0 = time;
	my $rc = $coord->psql(
		'postgres',
		sprintf(
			"SET statement_timeout = '120s';\nSELECT citus_move_shard_placement(%d, '%s', %d, '%s', %d, shard_transfer_mode => '%s');",
			$shardid, $worker1->host, $worker1->port, $worker2->host, $worker2->port, $mode),
		stdout    => \$out,
		stderr    => \$err,
		timeout   => 150,
		timed_out => \$timed_out);
	return ($rc, $err, $timed_out, time - $t0);
}

for my $case ([ $shards_on_w1[0], 'auto' ], [ $shards_on_w1[1], 'block_writes' ])
{
	my ($shardid, $mode) = @$case;
	my $expected = expected_rows($shardid);
	ok($expected ne '', "$mode: shard $shardid holds rows");
	is(shard_rows($worker1, $shardid), $expected, "$mode: before the move, worker 1 reads shard $shardid raw");
	my $w1_log_offset = -s $worker1->logfile;

	my ($rc, $err, $timed_out, $seconds) = move($shardid, $mode);
	ok(!$timed_out && $rc == 0, "$mode: citus_move_shard_placement of shard $shardid returned (${seconds} s)")
	  or diag("psql exit code $rc, timed out: $timed_out, stderr: $err");

	is(placement($shardid) && placement($shardid)->name, $worker2->name, "$mode: shard $shardid is on worker 2 (citus_shards)");
	is($coord->safe_psql('postgres',
			"SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = $shardid"),
		$worker2->port, "$mode: pg_dist_placement names worker 2");
	is(shard_rows($worker2, $shardid), $expected,
		"$mode: the moved shard holds exactly the raw rows on worker 2 (read as superuser)");
	is($coord->safe_psql('postgres', 'SELECT count(*) FROM orders'), $total, "$mode: the row count is unchanged");
	# Through the coordinator, a read of the tagged column fails closed
	# today (Citus ships pg_consent's mask calls to the workers, which
	# refuse them: docs/scaling.md); it must never return other rows.
	my ($crc, $cout, $cerr) = $coord->psql('postgres',
		"SELECT order_id || '|' || customer_id || '|' || shipping FROM orders WHERE get_shard_id_for_distribution_column('orders', customer_id) = $shardid"
	);
	ok(($crc == 0 && join("\n", sort split /\n/, $cout) eq $expected)
		  || ($crc != 0 && $cerr =~ /called by the masking rewrite only/),
		"$mode: through the coordinator the superuser reads the raw rows or fails closed (42501)")
	  or diag("psql exit code $crc, stderr: $cerr");

	my $w1_log = substr(slurp_file($worker1->logfile), $w1_log_offset);
	if ($mode eq 'auto')
	{
		like($w1_log, qr/received replication command: CREATE_REPLICATION_SLOT "?citus_shard_move_slot_\S+"? LOGICAL "?pgoutput/,
			'auto: the move created a pgoutput slot on worker 1 (logical replication)');
		like($w1_log, qr/received replication command: START_REPLICATION SLOT "?citus_shard_move_slot_/,
			'auto: a walsender on worker 1 streamed the shard');
	}
	else
	{
		unlike($w1_log, qr/received replication command: (?:CREATE_REPLICATION_SLOT|START_REPLICATION SLOT) "?citus_shard_move_slot_/,
			'block_writes: the move used no logical replication');
	}

	# a row of a customer of the moved shard, inserted after the move
	my $customer = $coord->safe_psql('postgres',
		"SELECT customer_id FROM orders WHERE get_shard_id_for_distribution_column('orders', customer_id) = $shardid LIMIT 1"
	);
	my $order = $mode eq 'auto' ? 1001 : 1002;
	$coord->safe_psql('postgres', "INSERT INTO orders VALUES ($order, $customer, '$order Raw Street, Springfield')");
	$total++;
	is($worker2->safe_psql('postgres', "SELECT shipping FROM orders_$shardid WHERE order_id = $order"),
		"$order Raw Street, Springfield", "$mode: a row inserted after the move lands on worker 2");
}

# ---- the plain subscription still streams --------------------------------

$worker1->safe_psql('postgres', "INSERT INTO plain_rep VALUES (2, '2 Plain Road')");
wait_for($worker2, 'SELECT count(*) = 2 FROM plain_rep', 60);
is($worker2->safe_psql('postgres', 'SELECT string_agg(id || shipping, \',\' ORDER BY id) FROM plain_rep'),
	'11 Plain Road,22 Plain Road', 'plain subscription: a change made after the moves was streamed');

# ---- the logs --------------------------------------------------------------

is(join(',', map { $_->safe_psql('postgres', 'SELECT pg_postmaster_start_time()') } @nodes),
	$started, 'no node restarted');
for my $node (@nodes)
{
	my @errors = callback_slot_errors(slurp_file($node->logfile));
	is(scalar(@errors), 0, $node->name . ': no backend ran out of callback slots')
	  or diag(join "\n", @errors);
}

$_->stop for reverse @nodes;
done_testing();
