
# Copyright: pg_consent contributors
#
# pg_consent on a Citus cluster (a coordinator and two workers on this
# machine, every node with shared_preload_libraries = 'citus,pg_consent'):
# a protected table that is NOT distributed, joined on the coordinator with
# a distributed table.
#
# The defect this test was written for: Citus plans the local table as a
# subplan of its own (an intermediate result) through the planner hook, so
# the subplan gets a ConsentMask node; at execution Citus walks the
# subplan's plan looking for its own CustomScan (IsCitusCustomScan() reads
# the first element of every CustomScan's custom_private as a node), and
# ConsentMask's custom_private was a plain integer list: the backend died of
# signal 11, for a superuser as for a masked role, with or without a
# purpose.  The node's custom_private is now a list of nodes.
#
# Checked, for a superuser (no purpose, SET LOCAL purpose) and for a masked
# role (SET purpose, SET LOCAL purpose, no purpose):
#  - no crash: the session's backend is the same before and after, and no
#    node's postmaster restarted (pg_postmaster_start_time() unchanged);
#  - no raw value of a cell masked for that session reaches the client, in
#    rows or in messages;
#  - the join returns exactly the session's rows (the superuser: the raw
#    rows): the protected local table's masks run on the coordinator, in
#    the subplan Citus plans for it, and the rest Citus sends to the
#    workers carries the session's claim (docs/scaling.md, "Citus").
# Also: the same join with an unprotected local table returns its rows (the
# cluster works); EXPLAIN shows the ConsentMask node inside Citus's
# subplan (the shape that crashed); other query shapes that put a
# protected local table next to a distributed one; and a protected table
# stored by Citus's columnar access method (Citus's ColumnarScan custom
# scan under the mask calls) is masked as a heap table is.
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

skip_without_citus();

# ---- the cluster ---------------------------------------------------------

my @nodes = citus_cluster([qw(coordinator worker1 worker2)]);
my ($coord, @workers) = @nodes;
is($coord->safe_psql('postgres', 'SELECT count(*) FROM citus_get_active_worker_nodes()'),
	'2', 'the coordinator sees two workers');

# pg_consent after citus; Citus propagates CREATE EXTENSION to the workers,
# create it where it did not.
$coord->safe_psql('postgres', 'CREATE EXTENSION pg_consent');
for my $w (@workers)
{
	# (Citus refuses DDL on a worker, even CREATE EXTENSION IF NOT EXISTS)
	next
	  if $w->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'pg_consent'") eq '1';
	$w->safe_psql('postgres', 'CREATE EXTENSION pg_consent');
}

# The raw data.
my %raw = (
	1 => [ 'Alice Archer', 'alice@example.com' ],
	2 => [ 'Bob Baker',    'bob@example.org' ],
	3 => [ 'Carol Clark',  'carol@example.net' ],);
my @orders = ([ 10, 1 ], [ 11, 2 ], [ 12, 3 ], [ 13, 1 ]);

$coord->safe_psql(
	'postgres', q{
    CREATE ROLE app LOGIN;
    CREATE TABLE customers_local (id bigint PRIMARY KEY, name consent.name, email consent.email);
    INSERT INTO customers_local VALUES (1, 'Alice Archer', 'alice@example.com'),
                                       (2, 'Bob Baker', 'bob@example.org'),
                                       (3, 'Carol Clark', 'carol@example.net');
    SELECT FROM consent.protect('customers_local', 'id');
    CREATE TABLE plain_local (id bigint PRIMARY KEY, name text, email text);
    INSERT INTO plain_local SELECT id, name, email FROM customers_local;
    CREATE TABLE orders (order_id int, customer_id bigint);
    SELECT FROM create_distributed_table('orders', 'customer_id');
    INSERT INTO orders VALUES (10, 1), (11, 2), (12, 3), (13, 1);
    GRANT SELECT ON customers_local, plain_local, orders TO app;
    SELECT FROM consent.allow_purpose('app', 'marketing');
    SELECT FROM consent.grant(1, 'user.contact.email', 'marketing');
    SELECT FROM consent.grant(2, 'user.name', 'marketing');
});

my $join =
  'SELECT o.order_id, l.name, l.email FROM orders o JOIN customers_local l ON l.id = o.customer_id ORDER BY o.order_id';

# The postmasters' start times: a crashed backend restarts the cluster.
sub start_times
{
	# (after a crash, wait until the nodes accept connections again)
	$_->poll_query_until('postgres', 'SELECT true') for @nodes;
	return join ',',
	  map { $_->safe_psql('postgres', 'SELECT pg_postmaster_start_time()') } @nodes;
}
my $started = start_times();

# Runs $sql in one session between two readings of its backend pid and
# between the markers BEGIN and END; returns (psql exit code, the lines
# between the markers, stderr, whether the backend is the same at the end).
sub session
{
	my ($role, $sql) = @_;
	my $prelude = $role ? "SET ROLE $role;\n" : '';
	my ($out, $err) = ('', '');
	my $rc = $coord->psql(
		'postgres',
		"SELECT 'pid=' || pg_backend_pid();\n$prelude\\echo BEGIN\n$sql\n\\echo END\nSELECT 'pid=' || pg_backend_pid();\n",
		stdout        => \$out,
		stderr        => \$err,
		on_error_stop => 0);
	my @pids = $out =~ /^pid=(\d+)$/mg;
	my ($body) = $out =~ /^BEGIN\n(.*?)^END$/ms;
	$body //= '';
	my @lines = grep { $_ ne '' && !/^(SET|BEGIN|COMMIT)$/ } split /\n/, $body;
	return ($rc, \@lines, $err, @pids == 2 && $pids[0] eq $pids[1]);
}

# What the session sees of customers_local on its own (no Citus involved):
# id => "name|email".
sub local_view
{
	my ($role, $setup) = @_;
	my ($rc, $lines, $err, $same) =
	  session($role, "$setup\nSELECT id, name, email FROM customers_local ORDER BY id;\n");
	die "reading customers_local failed: $err" if $rc != 0;
	my %view;
	for (@$lines)
	{
		my ($id, $rest) = split /\|/, $_, 2;
		$view{$id} = $rest;
	}
	return \%view;
}

# ---- the control: an unprotected local table -----------------------------

for my $role ('', 'app')
{
	my ($rc, $lines, $err, $same) = session($role,
		'SELECT o.order_id, l.name, l.email FROM orders o JOIN plain_local l ON l.id = o.customer_id ORDER BY o.order_id;'
	);
	is(join("\n", @$lines),
		join("\n", map { "$_->[0]|" . join('|', @{ $raw{ $_->[1] } }) } @orders),
		'join of a distributed table with an unprotected local table works' . ($role ? " ($role)" : ''));
}

# ---- the shape that crashed ----------------------------------------------

my $plan = $coord->safe_psql('postgres', "SET ROLE app; EXPLAIN (COSTS OFF) $join");
like($plan, qr/Distributed Subplan.*\n\s*->\s+Custom Scan \(ConsentMask\) on customers_local/,
	'the protected local table is a subplan of Citus, masked by a ConsentMask node');
# a superuser's subplan reads the plain columns and counts them
$plan = $coord->safe_psql('postgres', "EXPLAIN (COSTS OFF) $join");
like($plan, qr/Distributed Subplan.*\n\s*->\s+Seq Scan on customers_local l\n\s*Filter: consent._read_unmasked/,
	'a superuser\'s subplan of the local table reads it unmasked, with the counting qual');

# ---- the join, per session -----------------------------------------------

# name => [role, statements around the join, the purpose it acts under]
my @cases = (
	[ 'superuser, no purpose', '', "%s;", '' ],
	[
		'superuser, SET LOCAL purpose', '',
		"BEGIN;\nSET LOCAL consent.purpose = 'marketing';\n%s;\nCOMMIT;", 'marketing'
	],
	[ 'masked role, SET purpose', 'app', "SET consent.purpose = 'marketing';\n%s;", 'marketing' ],
	[
		'masked role, SET LOCAL purpose', 'app',
		"BEGIN;\nSET LOCAL consent.purpose = 'marketing';\n%s;\nCOMMIT;", 'marketing'
	],
	[ 'masked role, no purpose', 'app', "%s;", '' ],);

for my $case (@cases)
{
	my ($name, $role, $template, $purpose) = @$case;
	my $setup = $purpose ? "SET consent.purpose = '$purpose';" : '';
	my $view  = local_view($role, $setup);

	# The raw values of the cells masked for this session.
	my @masked;
	for my $id (sort keys %raw)
	{
		my ($name_v, $email_v) = split /\|/, $view->{$id}, 2;
		push @masked, $raw{$id}[0] if $name_v ne $raw{$id}[0];
		push @masked, $raw{$id}[1] if $email_v ne $raw{$id}[1];
	}
	if ($role)
	{
		ok(@masked > 0, "$name: some cells of customers_local are masked for the session");
	}
	else
	{
		is(scalar(@masked), 0, "$name: the superuser reads customers_local raw");
	}
	my @expected = map { "$_->[0]|$view->{$_->[1]}" } @orders;

	my ($rc, $lines, $err, $same) = session($role, sprintf($template, $join));
	ok($rc != 2 && $same, "$name: the join does not kill the session's backend")
	  or diag("psql exit code $rc, stderr: $err");
	is(start_times(), $started, "$name: no node restarted");

	my $leaked = grep { my $v = $_; grep { index($_, $v) >= 0 } (@$lines, $err) } @masked;
	is($leaked, 0, "$name: no value masked for the session reaches the client");

	is(join("\n", @$lines), join("\n", @expected),
		"$name: the join returns " . ($role ? 'the masked rows' : 'the raw rows'))
	  or diag("stderr: $err");
}

# ---- other shapes with a protected local table next to a distributed one --

my @shapes = (
	'SELECT o.order_id FROM orders o JOIN customers_local l ON l.id = o.customer_id WHERE l.email LIKE \'%example%\' ORDER BY 1',
	'WITH c AS MATERIALIZED (SELECT * FROM customers_local) SELECT o.order_id, c.name FROM orders o JOIN c ON c.id = o.customer_id ORDER BY 1',
	'SELECT o.order_id, (SELECT l.email FROM customers_local l WHERE l.id = o.customer_id) FROM orders o ORDER BY 1',
	'SELECT count(*) FROM orders WHERE customer_id IN (SELECT id FROM customers_local WHERE name IS NOT NULL)',
	'SELECT o.order_id, l FROM orders o JOIN customers_local l ON l.id = o.customer_id ORDER BY 1',
	'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT o.order_id, l.email FROM orders o JOIN customers_local l ON l.id = o.customer_id',
);
my @all_raw = map { @$_ } values %raw;
for my $shape (@shapes)
{
	my ($rc, $lines, $err, $same) =
	  session('app', "SET consent.purpose = 'marketing';\n$shape;");
	my $label = substr($shape, 0, 70);
	ok($rc != 2 && $same, "masked role: no crash: $label")
	  or diag("psql exit code $rc, stderr: $err");
	# under marketing only alice's e-mail and Bob's name are revealed
	my @hidden = grep { $_ ne 'alice@example.com' && $_ ne 'Bob Baker' } @all_raw;
	my $leaked = grep { my $v = $_; grep { index($_, $v) >= 0 } (@$lines, $err) } @hidden;
	is($leaked, 0, "masked role: no masked value leaks: $label");
}
is(start_times(), $started, 'no node restarted after the other shapes');

# ---- Citus's columnar custom scan ----------------------------------------

$coord->safe_psql(
	'postgres', q{
    CREATE EXTENSION IF NOT EXISTS citus_columnar;
    CREATE TABLE customers_columnar (id bigint, name consent.name, email consent.email) USING columnar;
    INSERT INTO customers_columnar SELECT * FROM customers_local;
    SELECT FROM consent.protect('customers_columnar', 'id');
    GRANT SELECT ON customers_columnar TO app;
});
like(
	$coord->safe_psql('postgres', 'EXPLAIN (COSTS OFF) SELECT * FROM customers_columnar'),
	qr/ColumnarScan/, 'the columnar table is read by Citus\'s ColumnarScan');
for my $purpose ('', 'marketing')
{
	my $set = $purpose ? "SET consent.purpose = '$purpose';" : '';
	my ($rc1, $heap) = session('app', "$set\nSELECT * FROM customers_local ORDER BY id;");
	my ($rc2, $columnar, $err, $same) =
	  session('app', "$set\nSELECT * FROM customers_columnar ORDER BY id;");
	is(join("\n", @$columnar), join("\n", @$heap),
		'masked role, ' . ($purpose || 'no purpose') . ': a columnar table is masked as a heap table')
	  or diag($err);
	ok($same, 'masked role, ' . ($purpose || 'no purpose') . ': no crash reading the columnar table');
}
is(start_times(), $started, 'no node restarted at the end');

$_->stop for reverse @nodes;
done_testing();
