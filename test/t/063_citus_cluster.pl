# Copyright: pg_consent contributors
#
# pg_consent on a Citus cluster, against a single server with the same
# data: a coordinator and two workers (citus,pg_consent on each) and a
# single server (pg_consent only), given the same tables, catalog calls
# and consent, in the same order.  Every query runs on the coordinator and
# on the single server in the same session context (superuser; a masked
# role without purpose, with SET purpose, with SET LOCAL purpose, with
# another role's purpose) and must return the same output, and no raw
# value that the single server masks may appear in the cluster's output
# (rows or messages).
#
# The tables: customers (distributed, protected before it is distributed),
# orders (distributed and co-located, protected after), countries (a
# reference table), signups (a local table on the coordinator) and archive
# (distributed, the target of INSERT ... SELECT).  The queries: router and
# multi-shard reads, predicates and GROUP BY on tagged columns (computed on
# the workers), co-located joins, joins with the reference and the local
# table, whole-row references, aggregates, INSERT ... SELECT, COPY table TO
# and COPY (query) TO, a prepared statement across a change of purpose and
# a SECURITY DEFINER function owned by the superuser.
#
# count(DISTINCT tagged_column), which Citus computes on the coordinator
# over the bare column, is among the compared queries: the claim marker
# makes the workers decide that column in the session's context.
#
# Then: consent recorded on the coordinator and on a worker applies on
# every node from the next statement; every node holds the same ledger
# and catalog; a shard read directly on a worker is masked; a claim of a
# role the connected user cannot act as is refused.
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

# ---- the servers ---------------------------------------------------------

my $single = PostgreSQL::Test::Cluster->new('single');
$single->init;
$single->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_consent'");
$single->start;

my @nodes = citus_cluster([qw(coordinator worker1 worker2)]);
my ($coord, @workers) = @nodes;

# ---- one script, both setups ---------------------------------------------

# Statements run on both; [citus => ...] ones on the coordinator only.
my @setup = (
	'CREATE EXTENSION pg_consent',
	'CREATE ROLE app LOGIN',
	'CREATE ROLE analyst LOGIN',
	q{CREATE TABLE customers (id bigint PRIMARY KEY, name consent.name, email consent.email,
	                         born consent.birthdate, address consent.address, city text)},
	q{CREATE TABLE orders (order_id bigint, customer_id bigint, shipping consent.address, total numeric,
	                      PRIMARY KEY (customer_id, order_id))},
	q{CREATE TABLE countries (code text PRIMARY KEY, contact consent.email, owner_id bigint)},
	q{CREATE TABLE signups (id bigint PRIMARY KEY, email consent.email)},
	q{CREATE TABLE archive (id bigint PRIMARY KEY, name consent.name, email consent.email)},
	# protected before it is distributed
	q{SELECT consent.protect('customers', 'id')},
	q{SELECT consent.set_mask('customers', 'born', 'null')},
	[ citus => q{SELECT create_distributed_table('customers', 'id')} ],
	[ citus => q{SELECT create_distributed_table('orders', 'customer_id', colocate_with => 'customers')} ],
	[ citus => q{SELECT create_distributed_table('archive', 'id', colocate_with => 'customers')} ],
	[ citus => q{SELECT create_reference_table('countries')} ],
	# protected after
	q{SELECT consent.protect('orders', 'customer_id')},
	q{SELECT consent.protect('countries', 'owner_id')},
	q{SELECT consent.protect('signups', 'id')},
	q{SELECT consent.protect('archive', 'id')},
	q{SELECT consent.set_mask('orders', 'shipping', 'partial(2,0)')},
	q{INSERT INTO customers
	  SELECT g, 'Näme' || g || ' Ørsted', 'user' || g || '@mail' || (g % 7) || '.de',
	         date '1950-01-02' + g * 97, 'Street ' || g || 'x', 'c' || (g % 5)
	    FROM generate_series(1, 200) g},
	q{INSERT INTO orders SELECT g, (g % 200) + 1, 'Ship ' || g || 'y', g * 1.5 FROM generate_series(1, 300) g},
	q{INSERT INTO countries VALUES ('DE', 'de-owner@land.de', 1), ('FR', 'fr-owner@land.fr', 2),
	                               ('IT', 'it-owner@land.it', 3), ('PL', 'pl-owner@land.pl', 4)},
	q{INSERT INTO signups SELECT g, 'signup' || g || '@news.de' FROM generate_series(1, 50) g},
	q{GRANT SELECT ON customers, orders, countries, signups TO app, analyst},
	q{GRANT SELECT, INSERT ON archive TO app},
	q{SELECT consent.define_purpose('support')},
	q{SELECT consent.allow_purpose('app', 'marketing')},
	q{SELECT consent.allow_purpose('app', 'support')},
	q{SELECT consent.allow_purpose('analyst', 'analytics')},
	# consent at the survey's rates (e-mail 57 %, name 41 %, birth date
	# 36 %, address 35 %), a parent category for support, withdrawals
	q{SELECT count(consent.grant(g, 'user.contact.email', 'marketing')) FROM generate_series(1, 200) g
	   WHERE abs(hashtext('e' || g)) % 100 < 57},
	q{SELECT count(consent.grant(g, 'user.name', 'marketing')) FROM generate_series(1, 200) g
	   WHERE abs(hashtext('n' || g)) % 100 < 41},
	q{SELECT count(consent.grant(g, 'user.demographic.date_of_birth', 'marketing')) FROM generate_series(1, 200) g
	   WHERE abs(hashtext('b' || g)) % 100 < 36},
	q{SELECT count(consent.grant(g, 'user.contact.address', 'analytics')) FROM generate_series(1, 200) g
	   WHERE abs(hashtext('a' || g)) % 100 < 35},
	q{SELECT count(consent.grant(g, 'user.contact', 'support')) FROM generate_series(1, 200) g WHERE g % 10 = 0},
	q{SELECT count(consent.withdraw(g, 'user.contact.email', 'marketing')) FROM generate_series(1, 200) g
	   WHERE g % 13 = 0},
	q{CREATE FUNCTION owner_email(i bigint) RETURNS text LANGUAGE sql SECURITY DEFINER
	  AS 'SELECT email FROM customers WHERE id = i'},
	q{GRANT EXECUTE ON FUNCTION owner_email(bigint) TO app},
	# Citus connects to the workers as the superuser inside it
	q{CREATE FUNCTION owner_distinct_emails() RETURNS text LANGUAGE sql SECURITY DEFINER
	  AS 'SELECT count(DISTINCT x.email) || '' '' || count(DISTINCT x.name) FROM (SELECT * FROM customers) x'},
	q{GRANT EXECUTE ON FUNCTION owner_distinct_emails() TO app},);

for my $s (@setup)
{
	my ($only, $sql) = ref $s ? @$s : ('', $s);
	$coord->safe_psql('postgres', "SET client_min_messages = warning; $sql");
	$single->safe_psql('postgres', "SET client_min_messages = warning; $sql") unless $only;
}

# ---- catalog and ledger on every node ------------------------------------

my $catalog = q{SELECT string_agg(x, ';' ORDER BY x) FROM (
    SELECT 'p:' || relation::regclass::text || ':' || subject_column FROM consent.protected_tables
    UNION ALL SELECT 'm:' || relation::regclass::text || '.' || column_name || ':' || mask FROM consent.column_masks
    UNION ALL SELECT 'r:' || role::text || ':' || purpose FROM consent.purpose_roles
    UNION ALL SELECT 'u:' || key FROM consent.purposes) c(x)};
# (an erasure's pseudonym is each node's own unless consent.pseudonym_key
# is set alike on every node)
my $ledger = q{SELECT count(*) || ' events, ' || md5(string_agg(s || category || purpose || action, ','
               ORDER BY s, category, purpose, recorded_at, action)) FROM consent.ledger,
               LATERAL (SELECT CASE WHEN subject LIKE 'erased:%' THEN 'erased' ELSE subject END) x(s)};
my $coord_catalog = $coord->safe_psql('postgres', $catalog);
like($coord_catalog, qr/p:customers:id;p:orders:customer_id/, 'the coordinator holds the protections');
is($coord_catalog, $single->safe_psql('postgres', $catalog), 'coordinator catalog = single server catalog');
my $coord_ledger = $coord->safe_psql('postgres', $ledger);
is($coord_ledger, $single->safe_psql('postgres', $ledger), "coordinator ledger = single server ledger ($coord_ledger)");
# the local table's protection stays on the coordinator (the workers do not
# have the table)
(my $cluster_catalog = $coord_catalog) =~ s/p:signups:id;//;
for my $i (0 .. $#workers)
{
	my $w = $workers[$i];
	is($w->safe_psql('postgres', $catalog), $cluster_catalog,
		"worker" . ($i + 1) . ": protect (before and after distribution), set_mask, purposes, allow_purpose reached it");
	is($w->safe_psql('postgres', $ledger), $coord_ledger, "worker" . ($i + 1) . ": every consent event reached it");
}

# ---- the queries -----------------------------------------------------------

my @queries = (
	'SELECT * FROM customers ORDER BY id',
	'SELECT id, name, email, born, address FROM customers WHERE id = 7',
	'SELECT id, email FROM customers WHERE id IN (2, 10, 26, 40) ORDER BY id',
	q{SELECT id FROM customers WHERE email LIKE 'user1%' ORDER BY id},
	q{SELECT count(*) FROM customers WHERE name LIKE '%***%' OR name IS NULL OR name ~ '^[A-Z]\.'},
	'SELECT email, count(*) FROM customers GROUP BY email ORDER BY 2 DESC, 1 LIMIT 10',
	'SELECT city, count(*), min(born), max(address), count(email) FILTER (WHERE email LIKE \'%***%\') FROM customers GROUP BY city ORDER BY city',
	'SELECT count(*) FROM (SELECT DISTINCT email FROM customers) d',
	'SELECT count(DISTINCT email), count(DISTINCT name), count(DISTINCT born) FROM customers',
	'SELECT city, count(DISTINCT email) FROM customers GROUP BY city ORDER BY city',
	'SELECT count(DISTINCT s.email), count(DISTINCT c.email) FROM customers c JOIN signups s ON s.id = c.id',
	'SELECT count(DISTINCT x.email) FROM (SELECT * FROM customers WHERE id > 3) x',
	'SELECT city, count(*) FROM (SELECT DISTINCT city, name FROM customers) d GROUP BY city ORDER BY city',
	'SELECT c.id, c.email, o.order_id, o.shipping FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY o.order_id',
	'SELECT o.shipping, count(*) FROM orders o GROUP BY o.shipping ORDER BY 2 DESC, 1 LIMIT 5',
	'SELECT c.id, c.name, k.code, k.contact FROM customers c JOIN countries k ON k.owner_id = c.id ORDER BY c.id',
	'SELECT k FROM countries k ORDER BY code',
	'SELECT c.id, c.email, s.email FROM customers c JOIN signups s ON s.id = c.id ORDER BY c.id',
	'SELECT c FROM customers c WHERE id < 4 ORDER BY id',
	'SELECT id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id AND o.shipping LIKE \'Ship%\') FROM customers c WHERE id < 30 ORDER BY id',
	'SELECT s.id, s.email FROM signups s WHERE s.id IN (SELECT customer_id FROM orders) ORDER BY s.id',
	'COPY customers TO STDOUT',
	'COPY (SELECT id, email, born FROM customers WHERE id < 60 ORDER BY id) TO STDOUT',
	'SELECT owner_email(20), owner_email(21), owner_email(26)',
	'SELECT owner_distinct_emails()',);

my @sessions = (
	[ 'superuser',                    '',        '%s' ],
	[ 'app, no purpose',              'app',     '%s' ],
	[ 'app, SET marketing',           'app',     "SET consent.purpose = 'marketing';\n%s" ],
	[ 'app, SET LOCAL support',       'app',     "BEGIN;\nSET LOCAL consent.purpose = 'support';\n%s;\nCOMMIT;" ],
	[ 'analyst, SET analytics',       'analyst', "SET consent.purpose = 'analytics';\n%s" ],);

# Every raw tagged value (the superuser's view on the single server).
my @raw = split /\n/, $single->safe_psql(
	'postgres', q{
    SELECT name FROM customers UNION SELECT email FROM customers UNION SELECT born::text FROM customers
    UNION SELECT address FROM customers UNION SELECT shipping FROM orders UNION SELECT contact FROM countries
    UNION SELECT email FROM signups});

# Runs $sql as $role; returns its output: stdout, then the first line of
# each error (Citus adds where it ran the command; the single server does
# not), and stderr whole (for the leak scan).
sub run
{
	my ($node, $role, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', ($role ? "SET ROLE $role;\n" : '') . "$sql;",
		stdout => \$out, stderr => \$err, on_error_stop => 0, extra_params => [ '-A', '-t' ]);
	my @errors = map { s/^psql:<stdin>:\d+: //r } grep { /ERROR:/ } split /\n/, $err;
	return (join("\n", $out, @errors), $err);
}

sub sorted { join "\n", sort split /\n/, $_[0] }

my $compared = 0;
for my $s (@sessions)
{
	my ($label, $role, $template) = @$s;
	for my $q (@queries)
	{
		my $sql = sprintf($template, $q);
		my ($got, $got_err)      = run($coord,  $role, $sql);
		my ($want, $want_err)    = run($single, $role, $sql);
		# COPY of a distributed table comes shard by shard
		($got, $want) = (sorted($got), sorted($want)) if $q =~ /^COPY customers/;
		is($got, $want, "$label: $q") or diag("stderr: $got_err");
		my @leaks = grep { my $v = $_; index("$got\n$got_err", $v) >= 0 && index("$want\n$want_err", $v) < 0 } @raw;
		is(scalar(@leaks), 0, "$label: no value masked on the single server appears: $q")
		  or diag("leaked: @leaks[0 .. ($#leaks < 4 ? $#leaks : 4)]");
		$compared++;
	}
}
ok($compared == @queries * @sessions, "$compared query outputs compared");

# The masked result is not trivially all-masked or all-raw.
my ($marketing) = run($coord, 'app',
	"SET consent.purpose = 'marketing';\nSELECT count(*) FILTER (WHERE email NOT LIKE '%***%'), count(*) FROM customers");
like($marketing, qr/^(\d+)\|200$/, 'marketing: 200 customers');
my ($shown) = $marketing =~ /^(\d+)\|/;
ok($shown > 60 && $shown < 140, "marketing: some e-mails revealed, most not ($shown of 200)");

# ---- where the masks run ---------------------------------------------------

my $plan = $coord->safe_psql('postgres',
	"SET ROLE app; SET consent.purpose = 'marketing'; EXPLAIN (VERBOSE, COSTS OFF) SELECT email FROM customers WHERE id = 7");
like($plan, qr/Query: SELECT consent\._mask_remote\(email, '\{app,marketing,NULL,f\}'::text\[\]\)/,
	'the coordinator sends the column with the session\'s claim');
like($plan, qr/consent\._mask_claimed\(email, id,/, 'the worker masks it where it reads the shard');

# ---- INSERT ... SELECT: a masked cell is not stored ------------------------

for my $case ([ 'superuser', '', 1 ], [ 'app, marketing', 'app', 6 ])
{
	my ($label, $role, $from) = @$case;
	my $sql = ($role ? "SET consent.purpose = 'marketing';\n" : '')
	  . "INSERT INTO archive SELECT id, name, email FROM customers WHERE id BETWEEN $from AND $from + 4";
	my ($got)  = run($coord,  $role, $sql);
	my ($want) = run($single, $role, $sql);
	is($got, $want, "INSERT ... SELECT, $label: same outcome ($want)");
}
is(
	$coord->safe_psql('postgres', 'SELECT string_agg(id || name || email, \',\' ORDER BY id) FROM archive'),
	$single->safe_psql('postgres', 'SELECT string_agg(id || name || email, \',\' ORDER BY id) FROM archive'),
	'INSERT ... SELECT stored the same rows');

# ---- a prepared statement across a change of purpose ----------------------

my $prepared = "PREPARE p AS SELECT id, email FROM customers WHERE id IN (2, 3, 4) ORDER BY id;
EXECUTE p; SET consent.purpose = 'marketing'; EXECUTE p; EXECUTE p; RESET consent.purpose; EXECUTE p;
SET consent.purpose = 'marketing'; EXECUTE p";
is((run($coord, 'app', $prepared))[0], (run($single, 'app', $prepared))[0],
	'a prepared statement follows the purpose (plans with claims are dropped when it changes)');

# ---- consent changes reach every node --------------------------------------

# subjects whose cells the changes below turn: an e-mail shown, an e-mail
# masked, a name masked (under marketing, on the single server)
my %pick;
for my $line (split /\n/, (run($single, 'app',
	"SET consent.purpose = 'marketing';\nSELECT id, name, email FROM customers WHERE id <= 40 ORDER BY id"))[0])
{
	my ($id, $name, $email) = split /\|/, $line;
	next unless defined $email;
	$pick{email_shown}  //= $id if $email !~ /\*\*\*/;
	$pick{email_masked} //= $id if $email =~ /\*\*\*/;
	$pick{name_masked}  //= $id if $name =~ /^[[:upper:]]\.|^N\./ && $id != ($pick{email_masked} // 0);
}
ok(3 == grep({ defined } @pick{qw(email_shown email_masked name_masked)}), 'subjects to change: ' . join(', ', map { "$_=$pick{$_}" } sort keys %pick));
my $ids = join ',', @pick{qw(email_shown email_masked name_masked)};
my $probe = "SET consent.purpose = 'marketing';\nSELECT id, name, email FROM customers WHERE id IN ($ids) ORDER BY id";
for my $change (
	[ 'a withdrawal on the coordinator', $coord,      "SELECT consent.withdraw($pick{email_shown}, 'user.contact.email', 'marketing')" ],
	[ 'a grant on the coordinator',      $coord,      "SELECT consent.grant($pick{name_masked}, 'user.name', 'marketing')" ],
	[ 'a grant on a worker',             $workers[0], "SELECT consent.grant($pick{email_masked}, 'user.contact.email', 'marketing')" ],
	[ 'a withdrawal on a worker',        $workers[1], "SELECT consent.withdraw($pick{name_masked}, 'user.name', 'marketing')" ])
{
	my ($label, $node, $sql) = @$change;
	my ($before) = run($coord, 'app', $probe);
	$node->safe_psql('postgres', "SET client_min_messages = warning; $sql");
	$single->safe_psql('postgres', "SET client_min_messages = warning; $sql");
	my ($after)  = run($coord,  'app', $probe);
	my ($single_after) = run($single, 'app', $probe);
	isnt($after, $before, "$label changes what the next statement shows");
	is($after, $single_after, "$label: the coordinator shows what the single server shows");
	my $l = $coord->safe_psql('postgres', $ledger);
	is($_->safe_psql('postgres', $ledger), $l, "$label: recorded on every node") for @workers;
}

# ---- the audit: every node counts what it reads; the cluster's picture --------

$_->safe_psql('postgres', 'SELECT consent.disclosures_reset()') for ($single, @nodes);
my $audited = "SET consent.purpose = 'marketing';\nSELECT count(*) FROM customers WHERE email LIKE 'user%'";
is((run($coord, 'app', $audited))[0], (run($single, 'app', $audited))[0], 'audited query: same result');
my $cluster_counts = $coord->safe_psql('postgres',
	q{SELECT role || '|' || purpose || '|' || relation || '|' || column_name || '|' || sum(revealed) || '|' || sum(masked)
	    FROM consent.cluster_disclosures() GROUP BY role, purpose, relation, column_name ORDER BY 1});
my $single_counts = $single->safe_psql('postgres',
	q{SELECT role || '|' || purpose || '|' || relation || '|' || column_name || '|' || revealed || '|' || masked
	    FROM consent.disclosures ORDER BY 1});
like($single_counts, qr/^app\|marketing\|public\.customers\|email\|\d+\|\d+$/, "single server counted: $single_counts");
is($cluster_counts, $single_counts,
	'consent.cluster_disclosures(): the workers counted the cells under the distributed table and the claimed role, as one server counts them');
my $nodes_counting = $coord->safe_psql('postgres', 'SELECT count(DISTINCT node) FROM consent.cluster_disclosures()');
is($nodes_counting, '2', 'both workers counted cells (the coordinator read none)');

# ---- what would stay on one node is refused -------------------------------------

$coord->safe_psql('postgres', q{CREATE TABLE bulk_events (subject bigint, category text, purpose text, action text)});
my ($bulk_rc, $bulk_out, $bulk_err) = $coord->psql('postgres',
	q{INSERT INTO bulk_events VALUES (5, 'user.name', 'marketing', 'grant'); SELECT consent.record_many('bulk_events')});
like($bulk_err, qr/consent\.record_many\(\) is not supported on a Citus cluster/,
	'record_many() is refused on a cluster (its events would stay on one node)');
is($coord->safe_psql('postgres', $ledger), $workers[0]->safe_psql('postgres', $ledger), 'and nothing was recorded');

# ---- erasure: the cells (through Citus) and every node's ledger ----------------

my $erase_id = $pick{email_shown};
$coord->safe_psql('postgres', "SELECT consent.erase_subject(${erase_id}::bigint)");
$single->safe_psql('postgres', "SELECT consent.erase_subject(${erase_id}::bigint)");
is($coord->safe_psql('postgres', "SELECT name IS NULL AND email IS NULL FROM customers WHERE id = $erase_id"),
	't', 'erase_subject nulled the subject\'s cells in the distributed table');
for my $node (@nodes)
{
	is($node->safe_psql('postgres', "SELECT count(*) FROM consent.ledger WHERE subject = '$erase_id'"),
		'0', $node->name . ': no ledger event names the erased subject');
}
is($coord->safe_psql('postgres', $ledger), $single->safe_psql('postgres', $ledger), 'coordinator ledger = single server ledger after the erasure');
is($_->safe_psql('postgres', $ledger), $coord->safe_psql('postgres', $ledger), $_->name . ': same ledger after the erasure')
  for @workers;

# ---- on a worker ---------------------------------------------------------------

my $w = $workers[0];
my $shard = $w->safe_psql('postgres',
	q{SET citus.override_table_visibility = off;
	  SELECT c.relname FROM pg_class c JOIN pg_dist_shard s ON c.relname = 'customers_' || s.shardid
	   WHERE s.logicalrelid = 'customers'::regclass LIMIT 1});
like($shard, qr/^customers_\d+$/, "worker1 holds shard $shard");
my ($direct, $direct_err) =
  run($w, 'app', "SET citus.override_table_visibility = off;\nSELECT id, email FROM $shard ORDER BY id");
my $shard_ids = join ',', map { (split /\|/)[0] } grep { /\|/ } split /\n/, $direct;
ok(length $shard_ids, 'the shard read directly returns rows') or diag($direct_err);
my ($single_view) = run($single, 'app', "SELECT id, email FROM customers WHERE id IN ($shard_ids) ORDER BY id");
is($direct, $single_view, 'a shard read directly on a worker is masked as its distributed table is');

# the shards' tagged columns keep no planner statistics (pg_stats would
# show their most common values to any role that may read the shard)
$w->safe_psql('postgres', "SET citus.override_table_visibility = off; ANALYZE $shard");
is($w->safe_psql('postgres', qq{SELECT string_agg(attname || '=' || attstattarget, ',' ORDER BY attname) FROM pg_attribute
	WHERE attrelid = '$shard'::regclass AND attname IN ('email', 'name', 'city')}),
	'city=-1,email=0,name=0', "the shard's tagged columns have statistics target 0");
is($w->safe_psql('postgres', qq{SET citus.override_table_visibility = off;
	SELECT count(*) FROM pg_stats WHERE tablename = '$shard' AND attname IN ('email', 'name', 'born', 'address')}),
	'0', 'after ANALYZE of the shard, pg_stats holds nothing of its tagged columns');

my (undef, $forged) = run($w, 'app',
	"SET citus.override_table_visibility = off;\nSELECT consent._mask_remote(email, '{analyst,analytics,NULL,f}') FROM $shard");
like($forged, qr/permission denied to decide consent as role "analyst"/,
	'a claim of a role the connected user cannot act as is refused');
my (undef, $no_purpose) = run($w, 'app',
	"SET citus.override_table_visibility = off;\nSELECT consent._mask_remote(email, '{app,unknown_purpose,NULL,f}') FROM $shard");
like($no_purpose, qr/purpose "unknown_purpose" of a consent claim is not defined/, 'a claim of an unknown purpose is refused');

# ---- a worker added later -------------------------------------------------------

my $w3 = citus_node('worker3');
push @nodes, $w3;
$coord->safe_psql('postgres', sprintf("SELECT citus_add_node('%s', %d)", $w3->host, $w3->port));
is($w3->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'pg_consent'"),
	$coord->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'pg_consent'"),
	'Citus created pg_consent on the node added later');
is($w3->safe_psql('postgres', 'SELECT count(*) FROM consent.ledger'), '0', 'which starts without consent events');
my $copied = $coord->safe_psql('postgres',
	sprintf("SELECT consent.citus_sync_node('%s', %d)", $w3->host, $w3->port));
is($w3->safe_psql('postgres', $ledger), $coord->safe_psql('postgres', $ledger),
	"consent.citus_sync_node() copied the ledger ($copied events)");
is($w3->safe_psql('postgres', $catalog), $workers[0]->safe_psql('postgres', $catalog),
	'and the catalog: custom purposes, role grants, the protection of Citus tables, masks');
my ($again_rc, $again_out, $again_err) =
  $coord->psql('postgres', sprintf("SELECT consent.citus_sync_node('%s', %d)", $w3->host, $w3->port));
like($again_err, qr/the node already holds consent events/, 'a second copy is refused (55000)');

# move a shard of customers to the new node (Citus copies the reference
# tables there first): its rows are masked there
$coord->safe_psql('postgres', "SELECT replicate_reference_tables('block_writes')");
my ($shardid, $from_host, $from_port) = split /\|/, $coord->safe_psql('postgres',
	q{SELECT shardid, nodename, nodeport FROM citus_shards WHERE table_name = 'customers'::regclass ORDER BY shardid LIMIT 1});
$coord->safe_psql('postgres', sprintf(
	"SELECT citus_move_shard_placement(%d, '%s', %d, '%s', %d, shard_transfer_mode => 'block_writes')",
	$shardid, $from_host, $from_port, $w3->host, $w3->port));
is($coord->safe_psql('postgres', "SELECT nodeport FROM citus_shards WHERE shardid = $shardid"), $w3->port,
	"shard $shardid moved to the new node");
for my $s (@sessions[ 1 .. 3 ])
{
	my ($label, $role, $template) = @$s;
	my $sql = sprintf($template, 'SELECT id, name, email, born, address FROM customers ORDER BY id');
	is((run($coord, $role, $sql))[0], (run($single, $role, $sql))[0], "after the move, $label: same rows as one server");
}
my $change = "SELECT consent.withdraw($pick{email_masked}, 'user.contact.email', 'marketing')";
$coord->safe_psql('postgres', "SET client_min_messages = warning; $change");
$single->safe_psql('postgres', "SET client_min_messages = warning; $change");
is($w3->safe_psql('postgres', $ledger), $coord->safe_psql('postgres', $ledger), 'a later withdrawal reaches the new node');
is((run($coord, 'app', $probe))[0], (run($single, 'app', $probe))[0], 'and applies there');

$_->stop for reverse @nodes;
$single->stop;
done_testing();
