
# Copyright: pg_consent contributors
#
# pg_consent's planner and executor hooks meeting plans and nodes that other
# extensions make, without Citus (test/t/060_citus.pl has Citus): a
# ConsentMask node or the mask calls next to, under and above
# postgres_fdw's foreign scans (a loopback server on the same cluster: a
# protected local table joined with a foreign table, a foreign table whose
# columns have tagged types, a join pushed down to the remote side, an
# Append of a ConsentMask node and asynchronous foreign scans, a ConsentMask
# node rescanned under a nested loop driven by a foreign scan, writes
# through a foreign table), tablefunc's crosstab() over a protected table
# (its source query runs through SPI), and auto_explain explaining every
# one of those plans (another extension's executor hooks reading the
# ConsentMask node).
#
# Checked for each: the session's backend survives (same pid before and
# after, the postmaster did not restart), the rows equal the masked rows
# (raw for a superuser), and no value masked for the session reaches the
# client.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('foreign');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_consent'");
$node->start;

my ($host, $port) = ($node->host, $node->port);
$node->safe_psql(
	'postgres', qq{
    CREATE EXTENSION pg_consent;
    CREATE EXTENSION postgres_fdw;
    CREATE EXTENSION tablefunc;
    CREATE ROLE app LOGIN;
    CREATE TABLE customers (id bigint PRIMARY KEY, name consent.name, email consent.email);
    INSERT INTO customers VALUES (1, 'Alice Archer', 'alice\@example.com'),
                                 (2, 'Bob Baker', 'bob\@example.org'),
                                 (3, 'Carol Clark', 'carol\@example.net');
    SELECT FROM consent.protect('customers', 'id');
    CREATE TABLE orders (order_id int, customer_id bigint);
    CREATE INDEX ON orders (customer_id);
    INSERT INTO orders VALUES (10, 1), (11, 2), (12, 3), (13, 1);
    CREATE TABLE archive (id bigint, name consent.name, email consent.email);
    SELECT FROM consent.allow_purpose('app', 'marketing');
    SELECT FROM consent.grant(1, 'user.contact.email', 'marketing');
    SELECT FROM consent.grant(2, 'user.name', 'marketing');

    CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw
        OPTIONS (host '$host', port '$port', dbname 'postgres', async_capable 'true',
                 fdw_startup_cost '1000', use_remote_estimate 'true');
    CREATE USER MAPPING FOR CURRENT_USER SERVER loopback;
    CREATE USER MAPPING FOR app SERVER loopback OPTIONS (user 'app', password_required 'false');
    GRANT USAGE ON FOREIGN SERVER loopback TO app;
    -- the remote protected table, declared with its tagged types ...
    CREATE FOREIGN TABLE f_customers (id bigint, name consent.name, email consent.email)
        SERVER loopback OPTIONS (table_name 'customers');
    -- ... and with plain text (the remote side masks)
    CREATE FOREIGN TABLE f_customers_text (id bigint, name text, email text)
        SERVER loopback OPTIONS (table_name 'customers');
    CREATE FOREIGN TABLE f_orders (order_id int, customer_id bigint)
        SERVER loopback OPTIONS (table_name 'orders');
    GRANT SELECT ON customers, orders, f_customers, f_customers_text, f_orders TO app;
    GRANT INSERT ON archive TO app;
    GRANT UPDATE ON f_customers, customers TO app;
});

my %raw = (
	1 => 'Alice Archer|alice@example.com',
	2 => 'Bob Baker|bob@example.org',
	3 => 'Carol Clark|carol@example.net',);
# customers as app sees it under marketing (consent: 1's e-mail, 2's name)
my %marketing = (
	1 => 'A. A.|alice@example.com',
	2 => 'Bob Baker|b***@example.org',
	3 => 'C. C.|c***@example.net',);
# every tagged cell masked: app without a purpose, a foreign table's tagged
# columns (no subject), and the remote side of a loopback session (no purpose)
my %masked = (
	1 => 'A. A.|a***@example.com',
	2 => 'B. B.|b***@example.org',
	3 => 'C. C.|c***@example.net',);
my @orders = ([ 10, 1 ], [ 11, 2 ], [ 12, 3 ], [ 13, 1 ]);
my @all_raw = map { split /\|/ } values %raw;

sub joined
{
	my ($view) = @_;
	return join "\n", map { "$_->[0]|$view->{$_->[1]}" } @orders;
}

sub rows
{
	my ($view) = @_;
	return join "\n", map { "$_|$view->{$_}" } sort keys %$view;
}

my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

# Runs $sql in one session between two readings of its backend pid and the
# markers BEGIN and END: (psql exit code, output between the markers,
# stderr, whether the backend is the same at the end).
sub session
{
	my ($prelude, $sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql(
		'postgres',
		"SELECT 'pid=' || pg_backend_pid();\n$prelude\n\\echo BEGIN\n$sql\n\\echo END\nSELECT 'pid=' || pg_backend_pid();\n",
		stdout        => \$out,
		stderr        => \$err,
		on_error_stop => 0);
	my @pids = $out =~ /^pid=(\d+)$/mg;
	my ($body) = $out =~ /^BEGIN\n(.*?)^END$/ms;
	$body //= '';
	$body =~ s/\n$//;
	return ($rc, $body, $err, @pids == 2 && $pids[0] eq $pids[1]);
}

# One case: $expected is the exact output, a regex the error must match, or
# undef (any output without an error: the caller checks it).
sub check
{
	my ($name, $prelude, $sql, $expected, $revealed) = @_;
	my ($rc, $out, $err, $same) = session($prelude, $sql);
	ok($rc != 2 && $same, "$name: the backend survives") or diag("psql exit code $rc, stderr: $err");
	is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
		$started, "$name: the postmaster did not restart");
	if (!defined $expected)
	{
		is($err, '', "$name: no error");
	}
	elsif (ref $expected eq 'Regexp')
	{
		like($err, $expected, "$name: fails as expected");
	}
	else
	{
		is($out, $expected, "$name: the rows") or diag("stderr: $err");
	}
	if (defined $revealed)
	{
		my %shown = map { $_ => 1 } @$revealed;
		my @hidden = grep { !$shown{$_} } @all_raw;
		my $leaked = grep { my $v = $_; index($out, $v) >= 0 || index($err, $v) >= 0 } @hidden;
		is($leaked, 0, "$name: no masked value reaches the client");
	}
	return $out;
}

my $app_marketing = "SET ROLE app;\nSET consent.purpose = 'marketing';";
my $app_none      = "SET ROLE app;";
my @marketing_revealed = ('alice@example.com', 'Bob Baker');

# ---- postgres_fdw ---------------------------------------------------------

my $local_join =
  'SELECT o.order_id, c.name, c.email FROM f_orders o JOIN customers c ON c.id = o.customer_id ORDER BY 1;';
check('protected local table joined with a foreign table, masked role',
	$app_marketing, $local_join, joined(\%marketing), \@marketing_revealed);
check('protected local table joined with a foreign table, masked role, no purpose',
	$app_none, $local_join, joined(\%masked), []);
check('protected local table joined with a foreign table, SET LOCAL purpose',
	"SET ROLE app;\nBEGIN;\nSET LOCAL consent.purpose = 'marketing';",
	$local_join . "\nCOMMIT;", joined(\%marketing), \@marketing_revealed);
check('protected local table joined with a foreign table, superuser', '', $local_join, joined(\%raw));

# the ConsentMask node as the inner side of a nested loop, rescanned with a
# new parameter for every row of the foreign scan
my $lateral =
  'SELECT o.order_id, c.* FROM f_orders o CROSS JOIN LATERAL (SELECT * FROM customers c WHERE c.id = o.customer_id OFFSET 0) c ORDER BY 1;';
my %marketing_with_id = map { $_ => "$_|$marketing{$_}" } keys %marketing;
my $nl = "SET enable_hashjoin = off;\nSET enable_mergejoin = off;\nSET enable_material = off;";
my $plan = check('plan of a ConsentMask node under a nested loop over a foreign scan',
	"$app_marketing\n$nl", "EXPLAIN (COSTS OFF) $lateral", undef);
like($plan, qr/Nested Loop.*Foreign Scan on f_orders.*ConsentMask/s,
	'the ConsentMask node is the inner side of a nested loop over a foreign scan');
check('ConsentMask node rescanned under a nested loop over a foreign scan',
	"$app_marketing\n$nl", $lateral, joined(\%marketing_with_id), \@marketing_revealed);

my $foreign_join =
  'SELECT o.order_id, c.name, c.email FROM orders o JOIN f_customers c ON c.id = o.customer_id ORDER BY 1;';
check('foreign table with tagged columns joined with a local table, masked role',
	$app_marketing, $foreign_join, joined(\%masked), []);

my $pushed =
  'SELECT o.order_id, c.name, c.email FROM f_orders o JOIN f_customers c ON c.id = o.customer_id ORDER BY 1;';
$plan = check('plan of a join of two foreign tables',
	$app_marketing, "EXPLAIN (VERBOSE, COSTS OFF) $pushed", undef);
like($plan, qr/Relations: \(public\.f_orders o\) INNER JOIN \(public\.f_customers c\)/,
	'the join of two foreign tables is pushed down (a foreign scan without a relation of its own)');
like($plan, qr/Output: o\.order_id, consent\._mask\(c\.name/, 'the masks are computed above the pushed-down join');
check('join pushed down to the remote side, masked role', $app_marketing, $pushed, joined(\%masked), []);
check('join pushed down to the remote side, superuser', '', $pushed, joined(\%raw));

check('foreign table of text columns over the protected table (the remote side masks)',
	$app_marketing, 'SELECT * FROM f_customers_text ORDER BY id;', rows(\%masked), []);
check('a predicate on a tagged column of a foreign table sees the masked value',
	$app_marketing, "SELECT id FROM f_customers WHERE email LIKE 'a***%' ORDER BY id;", '1', []);

my $union =
  'SELECT * FROM (SELECT * FROM customers UNION ALL SELECT * FROM f_customers) u ORDER BY id, name::text COLLATE "C", email::text COLLATE "C";';
$plan = check('plan of an Append of a ConsentMask node and a foreign scan',
	$app_marketing, "EXPLAIN (COSTS OFF) $union", undef);
like($plan, qr/Append.*(ConsentMask.*Async Foreign Scan|Async Foreign Scan.*ConsentMask)/s,
	'an Append runs a ConsentMask node beside an asynchronous foreign scan');
check('Append of a ConsentMask node and an asynchronous foreign scan', $app_marketing, $union,
	join("\n", map { my $id = $_; sort("$id|$marketing{$id}", "$id|$masked{$id}") } sort keys %raw),
	\@marketing_revealed);

check('a masked value is not written back through a foreign table',
	$app_marketing, 'UPDATE f_customers SET name = name WHERE id = 1;',
	qr/cannot store a value derived from a masked cell/, []);
check('a masked value read through a foreign table is not stored locally',
	$app_marketing, 'INSERT INTO archive SELECT * FROM f_customers;',
	qr/cannot store a value derived from a masked cell/, []);

# the server option that lets postgres_fdw ship the extension's functions:
# the mask calls still run here (they are not immutable)
$node->safe_psql('postgres', "ALTER SERVER loopback OPTIONS (ADD extensions 'pg_consent')");
$plan = check('plan with pg_consent a shippable extension', $app_marketing,
	"EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM f_customers WHERE email LIKE 'a%';", undef);
unlike($plan, qr/Remote SQL:.*_mask/, 'the mask calls are not sent to the remote side');
check('foreign table with pg_consent a shippable extension', $app_marketing,
	"SELECT * FROM f_customers WHERE email LIKE 'a%' ORDER BY id;", "1|$masked{1}", []);
$node->safe_psql('postgres', "ALTER SERVER loopback OPTIONS (DROP extensions)");

# ---- tablefunc -------------------------------------------------------------

my $crosstab =
  q{SELECT * FROM crosstab('SELECT id, ''email'', email FROM customers ORDER BY 1') AS ct(id bigint, email consent.email);};
check('crosstab over a protected table, masked role', $app_marketing, $crosstab,
	join("\n", map { "$_|" . (split /\|/, $marketing{$_})[1] } 1 .. 3), \@marketing_revealed);
check('crosstab over a protected table, superuser', '', $crosstab,
	join("\n", map { "$_|" . (split /\|/, $raw{$_})[1] } 1 .. 3));
my $crosstab2 = q{SELECT * FROM crosstab(
    'SELECT id, k, v FROM (SELECT id, ''name'' k, name::text v FROM customers
                           UNION ALL SELECT id, ''email'', email::text FROM customers) s ORDER BY 1, 2',
    'SELECT unnest(ARRAY[''email'', ''name''])') AS ct(id bigint, email text, name text);};
check('crosstab with categories over a protected table, masked role', $app_marketing, $crosstab2,
	join("\n", map { my ($n, $e) = split /\|/, $marketing{$_}; "$_|$e|$n" } 1 .. 3), \@marketing_revealed);
check('crosstab over a foreign table with tagged columns, masked role', $app_marketing,
	q{SELECT * FROM crosstab('SELECT id, ''name'', name FROM f_customers ORDER BY 1') AS ct(id bigint, name consent.name);},
	join("\n", map { "$_|" . (split /\|/, $masked{$_})[0] } 1 .. 3), []);

# ---- auto_explain over all of it -------------------------------------------

my $auto_explain = q{LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_analyze = on;
SET auto_explain.log_verbose = on;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = 'log';};
check('auto_explain: protected local table joined with a foreign table',
	"$auto_explain\n$app_marketing", $local_join, joined(\%marketing), \@marketing_revealed);
check('auto_explain: ConsentMask node under a nested loop over a foreign scan',
	"$auto_explain\n$app_marketing\n$nl", $lateral, joined(\%marketing_with_id), \@marketing_revealed);
check('auto_explain: Append of a ConsentMask node and a foreign scan',
	"$auto_explain\n$app_marketing", $union,
	join("\n", map { my $id = $_; sort("$id|$marketing{$id}", "$id|$masked{$id}") } sort keys %raw),
	\@marketing_revealed);
check('auto_explain: crosstab over a protected table', "$auto_explain\n$app_marketing", $crosstab,
	join("\n", map { "$_|" . (split /\|/, $marketing{$_})[1] } 1 .. 3), \@marketing_revealed);
# the plans auto_explain logged (EXPLAIN ANALYZE VERBOSE) show no cell value
my $log   = slurp_file($node->logfile);
my $plans = join '', $log =~ /duration: [0-9.]+ ms  plan:\n((?:\t.*\n)*)/g;
like($plans, qr/Custom Scan \(ConsentMask\)/, 'auto_explain explained ConsentMask nodes');
like($plans, qr/Async Foreign Scan/,          'auto_explain explained asynchronous foreign scans');
is(scalar(grep { index($plans, $_) >= 0 } @all_raw), 0, 'the plans auto_explain logged show no cell value');

ok(!($log =~ /terminated by signal/), 'no server process crashed');
$node->stop;
done_testing();
