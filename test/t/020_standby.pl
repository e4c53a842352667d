# Copyright: pg_consent contributors
#
# pg_consent on a hot standby (SPEC.md section 8, docs/scaling.md):
#  - a streaming replica of a primary with pg_consent masks exactly like the
#    primary: the same output, string for string, for the same role and
#    purpose, for queries, predicates, views and COPY ... TO;
#  - SET consent.purpose is checked on the standby as on the primary (22023,
#    42501), and catalog changes on the primary (revoke_purpose) reach the
#    standby's sessions through the replayed invalidations;
#  - the read path writes nothing: masked reads work in READ ONLY
#    transactions, assign no transaction id on the primary, and work on the
#    standby;
#  - consent recorded on the primary takes effect on the standby once
#    replayed: in new sessions, and in a session that stayed open across the
#    change (its next statement), for withdrawals and for grants;
#  - consent.granted() (now and at a past time) answers on the standby as on
#    the primary.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

my $primary = consent_node('primary', '', allows_streaming => 1);

$primary->safe_psql(
	'postgres', q{
    CREATE EXTENSION pg_consent;
    CREATE ROLE app LOGIN;
    CREATE ROLE other_app LOGIN;
    CREATE TABLE customers (id bigint PRIMARY KEY, email consent.email, name consent.name,
                            birthdate consent.birthdate, city text);
    INSERT INTO customers VALUES
        (1, 'alice@example.com', 'Alice Archer', '1985-04-12', 'Aachen'),
        (2, 'bob@example.org',   'Bob Baker',    '1990-11-30', 'Berlin'),
        (3, 'carol@example.net', 'Carol Clark',  '1978-07-04', 'Celle'),
        (4, 'dave@example.com',  'Dave Dunn',    '2001-02-28', 'Dresden');
    CREATE VIEW customer_view AS SELECT id, email, name FROM customers;
    GRANT SELECT ON customers, customer_view TO app, other_app;
    SELECT FROM consent.protect('customers', 'id');
    SELECT FROM consent.allow_purpose('app', 'personalize');
    SELECT FROM consent.allow_purpose('app', 'marketing');
    SELECT FROM consent.grant(1, 'user.contact.email', 'personalize');
    SELECT FROM consent.grant(2, 'user', 'personalize');
    SELECT FROM consent.grant(3, 'user.name', 'personalize');
    SELECT FROM consent.grant(3, 'user.demographic.date_of_birth', 'marketing');
});

# The standby, from a base backup (pg_basebackup), streaming from the primary.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby, 'replay');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is($standby->safe_psql('postgres', 'SHOW shared_preload_libraries'), 'pg_consent',
	'the standby preloads pg_consent (copied with the configuration)');

# Runs $sql on $node as the role app (its own connection), after
# SET consent.purpose = $purpose when $purpose is defined; returns
# (exit code, stdout, stderr).
sub app_psql
{
	my ($node, $sql, $purpose, $role) = @_;
	my $prefix = "\\set VERBOSITY verbose\n";
	$prefix .= "SET consent.purpose = '$purpose';\n" if defined $purpose;
	my ($ret, $out, $err) =
	  $node->psql('postgres', $prefix . $sql, extra_params => [ '-U', $role // 'app' ]);
	return ($ret, $out, $err);
}

my $read = 'SELECT id, email, name, birthdate, city FROM customers ORDER BY id';

# --- the standby masks exactly like the primary ------------------------------

my %expected = (
	personalize => "1|alice\@example.com|A. A.|1985-01-01|Aachen\n"
	  . "2|bob\@example.org|Bob Baker|1990-11-30|Berlin\n"
	  . "3|c***\@example.net|Carol Clark|1978-01-01|Celle\n"
	  . "4|d***\@example.com|D. D.|2001-01-01|Dresden",
	marketing => "1|a***\@example.com|A. A.|1985-01-01|Aachen\n"
	  . "2|b***\@example.org|B. B.|1990-01-01|Berlin\n"
	  . "3|c***\@example.net|C. C.|1978-07-04|Celle\n"
	  . "4|d***\@example.com|D. D.|2001-01-01|Dresden",
	none => "1|a***\@example.com|A. A.|1985-01-01|Aachen\n"
	  . "2|b***\@example.org|B. B.|1990-01-01|Berlin\n"
	  . "3|c***\@example.net|C. C.|1978-01-01|Celle\n"
	  . "4|d***\@example.com|D. D.|2001-01-01|Dresden",);

for my $purpose (qw(personalize marketing none))
{
	my $p = $purpose eq 'none' ? undef : $purpose;
	my ($rp, $on_primary, $ep) = app_psql($primary, $read, $p);
	my ($rs, $on_standby, $es) = app_psql($standby, $read, $p);
	is($rp, 0, "$purpose: the read works on the primary") or diag($ep);
	is($rs, 0, "$purpose: the read works on the standby") or diag($es);
	is($on_primary, $expected{$purpose}, "$purpose: the primary masks as expected");
	is($on_standby, $on_primary, "$purpose: the standby returns exactly what the primary returns");
}

# Other read paths, compared string for string.
my %paths = (
	'predicate on a masked cell' => q{SELECT id FROM customers WHERE email = 'dave@example.com'},
	'predicate on a revealed cell' => q{SELECT id FROM customers WHERE email = 'alice@example.com'},
	'masked form in a predicate' => q{SELECT id FROM customers WHERE email LIKE '%***%' ORDER BY id},
	'view' => 'SELECT id, email, name FROM customer_view ORDER BY id',
	'whole row' => 'SELECT row_to_json(c) FROM customers c ORDER BY id',
	'aggregate and sort' => 'SELECT string_agg(name, \',\' ORDER BY name) FROM customers',
	'COPY TO' => 'COPY customers TO STDOUT',
	'prepared statement' => "PREPARE q AS SELECT email FROM customers WHERE id = \$1;\nEXECUTE q(1);\nEXECUTE q(4)",
	'cursor' => "BEGIN;\nDECLARE c CURSOR FOR SELECT email FROM customers ORDER BY id;\nFETCH 2 FROM c;\nCOMMIT",
	'granted() for the current purpose' =>
	  q{SELECT id, consent.granted(id, 'user.contact.email') FROM customers ORDER BY id},);
for my $path (sort keys %paths)
{
	my ($rp, $on_primary, $ep) = app_psql($primary, $paths{$path}, 'personalize');
	my ($rs, $on_standby, $es) = app_psql($standby, $paths{$path}, 'personalize');
	is($rp, 0, "$path: works on the primary") or diag($ep);
	is($rs, 0, "$path: works on the standby") or diag($es);
	isnt($on_primary, '', "$path: returns something") unless $path eq 'predicate on a masked cell';
	unlike($on_primary, qr/dave\@example|Dave Dunn|carol\@/, "$path: the primary reveals nothing not granted");
	is($on_standby, $on_primary, "$path: the standby returns exactly what the primary returns");
}
is((app_psql($primary, $paths{'predicate on a masked cell'}, 'personalize'))[1],
	'', 'a predicate cannot probe a masked value');

# SET consent.purpose is checked on the standby as on the primary.
for my $node ($primary, $standby)
{
	my $where = $node == $primary ? 'primary' : 'standby';
	my ($ret, $out, $err) = app_psql($node, 'SELECT 1', 'no_such_purpose');
	like($err, qr/ERROR:  22023: unknown purpose "no_such_purpose"/, "$where: unknown purpose fails with 22023");
	($ret, $out, $err) = app_psql($node, 'SELECT 1', 'analytics');
	like($err, qr/ERROR:  42501: role "app" is not allowed to act under purpose "analytics"/,
		"$where: a purpose not allowed to the role fails with 42501");
	($ret, $out, $err) = app_psql($node, $read, 'personalize', 'other_app');
	like($err, qr/ERROR:  42501: role "other_app" is not allowed/, "$where: other_app may not use personalize");
}

# --- no writes on the read path ----------------------------------------------

# A masked read in a READ ONLY transaction, as the first statements of a
# session (taxonomy and consent cache loads included).
my $read_only = "BEGIN READ ONLY;\nSET LOCAL consent.purpose = 'personalize';\n$read;\n"
  . "SELECT 'xid:' || coalesce(pg_current_xact_id_if_assigned()::text, 'none');\nCOMMIT";
for my $node ($primary, $standby)
{
	my $where = $node == $primary ? 'primary' : 'standby';
	my ($ret, $out, $err) = app_psql($node, $read_only);
	is($ret, 0, "$where: a masked read works in a READ ONLY transaction") or diag($err);
	is($out, "$expected{personalize}\nxid:none",
		"$where: READ ONLY transaction: masked as expected, no transaction id assigned");
}
# The same as a superuser calling consent.granted() and consent.granted(at).
my $granted_sql = q{
    SELECT string_agg(id || ':' || consent.granted(id, 'user.contact.email', 'personalize')::text
                      || '/' || consent.granted(id, 'user.name', 'personalize', clock_timestamp())::text, ' '
                      ORDER BY id)
    FROM customers};
my $granted_expected = '1:true/false 2:true/true 3:false/true 4:false/false';
for my $node ($primary, $standby)
{
	my $where = $node == $primary ? 'primary' : 'standby';
	is( $node->safe_psql(
			'postgres',
			"BEGIN READ ONLY;\n$granted_sql;\n"
			  . "SELECT 'xid:' || coalesce(pg_current_xact_id_if_assigned()::text, 'none');\nCOMMIT"),
		"$granted_expected\nxid:none",
		"$where: consent.granted() now and at a time, read only, no transaction id");
}

# Audit statistics, where they exist (SPEC.md section 7: they work on a
# read-only standby).  The counters live in each node's shared memory: the
# standby counts the reads made on the standby.
SKIP:
{
	skip 'consent.disclosures is not built yet', 3
	  unless $primary->safe_psql('postgres', q{SELECT to_regclass('consent.disclosures') IS NOT NULL}) eq 't';
	my $counters = q{
        SELECT coalesce(sum(revealed), 0) > 0, coalesce(sum(masked), 0) > 0
        FROM consent.disclosures
        WHERE role = 'app' AND purpose = 'personalize' AND relation = 'public.customers' AND column_name = 'email'};
	my ($ret, $out, $err) = $standby->psql('postgres', $counters);
	is($ret, 0, 'standby: consent.disclosures can be read') or diag($err);
	is($out, 't|t', 'standby: consent.disclosures counted revealed and masked e-mails read on the standby');
	$standby->safe_psql('postgres', 'SELECT consent.disclosures_reset()');
	is($standby->safe_psql('postgres', 'SELECT count(*) FROM consent.disclosures'),
		'0', 'standby: consent.disclosures_reset() works on the standby');
}

# --- consent changes on the primary reach the standby ------------------------

# Sessions that stay open across the change: one per node, as app under
# personalize, and a superuser session on the standby.
my $standby_app = $standby->background_psql('postgres', extra_params => [ '-U', 'app' ]);
my $primary_app = $primary->background_psql('postgres', extra_params => [ '-U', 'app' ]);
my $standby_dba = $standby->background_psql('postgres');
$_->query_safe("SET consent.purpose = 'personalize'") for ($standby_app, $primary_app);
is($standby_app->query_safe($read), $expected{personalize}, 'open standby session: reads before the change');
is($primary_app->query_safe($read), $expected{personalize}, 'open primary session: reads before the change');
is($standby_dba->query_safe($granted_sql), $granted_expected,
	'open standby superuser session: granted() before the change');

# Withdraw subject 1's e-mail, grant subject 4 everything, withdraw
# subject 2's name.
$primary->safe_psql(
	'postgres', q{
    SELECT FROM consent.withdraw(1, 'user.contact.email', 'personalize');
    SELECT FROM consent.grant(4, 'user', 'personalize');
    SELECT FROM consent.withdraw(2, 'user.name', 'personalize');
});
$primary->wait_for_catchup($standby, 'replay');

my $after = "1|a***\@example.com|A. A.|1985-01-01|Aachen\n"
  . "2|bob\@example.org|B. B.|1990-11-30|Berlin\n"
  . "3|c***\@example.net|Carol Clark|1978-01-01|Celle\n"
  . "4|dave\@example.com|Dave Dunn|2001-02-28|Dresden";
my $granted_after = '1:false/false 2:true/false 3:false/true 4:true/true';
is((app_psql($primary, $read, 'personalize'))[1], $after, 'primary, new session: the changes are in effect');
is($primary_app->query_safe($read), $after, 'primary, open session: the changes are in effect at its next statement');
is((app_psql($standby, $read, 'personalize'))[1], $after, 'standby, new session: the replayed changes are in effect');
is($standby->safe_psql('postgres', $granted_sql), $granted_after, 'standby, new session: granted() follows the replay');

# The open standby session must not keep revealing what was withdrawn.
my $stale = $standby_app->query_safe($read);
unlike($stale, qr/alice\@example\.com|Bob Baker/,
	'standby, open session: a replayed withdrawal masks from the next statement');
like($stale, qr/dave\@example\.com/, 'standby, open session: a replayed grant reveals from the next statement');
is($stale, $after, 'standby, open session: exactly what the primary shows');
is($standby_dba->query_safe($granted_sql), $granted_after,
	'standby, open superuser session: granted() follows the replay');
# Also in a new transaction of a prepared statement.
$standby_app->query_safe('PREPARE one AS SELECT email FROM customers WHERE id = $1');
is($standby_app->query_safe('EXECUTE one(1)'), 'a***@example.com',
	'standby, open session: a prepared statement masks the withdrawn e-mail');

# Catalog changes reach the open standby session through the replayed
# invalidations: revoke personalize from app, then allow it again.
$primary->safe_psql('postgres', q{SELECT FROM consent.revoke_purpose('app', 'personalize')});
$primary->wait_for_catchup($standby, 'replay');
is($standby_app->query_safe($read), $expected{none},
	'standby, open session: a replayed revoke_purpose masks everything (purpose no longer allowed)');
$primary->safe_psql('postgres', q{SELECT FROM consent.allow_purpose('app', 'personalize')});
$primary->wait_for_catchup($standby, 'replay');
is($standby_app->query_safe("SET consent.purpose = 'personalize'; $read"), $after,
	'standby, open session: allowed again, the same decisions as the primary');

# A second round after the catalog change, for a session whose taxonomy was
# just reloaded: withdraw subject 3's name (revealed until now).
$primary->safe_psql('postgres', q{SELECT FROM consent.withdraw(3, 'user.name', 'personalize')});
$primary->wait_for_catchup($standby, 'replay');
is((app_psql($standby, 'SELECT name FROM customers WHERE id = 3', 'personalize'))[1],
	'C. C.', 'standby, new session: the second replayed withdrawal masks');
is($standby_app->query_safe('SELECT name FROM customers WHERE id = 3'),
	'C. C.', 'standby, open session: the second replayed withdrawal masks too');

# Parallel query on the standby: the workers mask in their leader's
# context, after replayed changes too; the same cells as a serial plan on
# the standby and on the primary.
$primary->safe_psql(
	'postgres', q{
    CREATE TABLE par_customers (id bigint PRIMARY KEY, email consent.email);
    INSERT INTO par_customers SELECT g, 'p' || g || '@example.com' FROM generate_series(100001, 130000) g;
    ANALYZE par_customers;
    GRANT SELECT ON par_customers TO app;
    SELECT FROM consent.protect('par_customers', 'id');
    SELECT count(consent.grant(id, 'user.contact.email', 'personalize')) FROM par_customers WHERE id % 3 = 0;
});
$primary->wait_for_catchup($standby, 'replay');
my $par_settings = "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;\n"
  . "SET parallel_leader_participation = off;\n";
my $par_read = "SELECT count(*) FILTER (WHERE email NOT LIKE '%*%') || ':' || sum(hashtext(email::text)::bigint) FROM par_customers;";
sub par_compare
{
	my ($label) = @_;
	my $serial = (app_psql($primary, "SET max_parallel_workers_per_gather = 0;\n$par_read", 'personalize'))[1];
	my $plan = (app_psql($standby,
		"${par_settings}SET max_parallel_workers_per_gather = 2;\n"
		  . "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $par_read", 'personalize'))[1];
	like($plan, qr/Workers Launched: [1-9].*ConsentContext/s, "standby, $label: the masked aggregate runs in parallel workers");
	is((app_psql($standby, "${par_settings}SET max_parallel_workers_per_gather = 2;\n$par_read", 'personalize'))[1],
		$serial, "standby, $label: parallel workers mask as the primary's serial plan");
	is((app_psql($standby, "SET max_parallel_workers_per_gather = 0;\n$par_read", 'personalize'))[1],
		$serial, "standby, $label: the standby's serial plan too");
	return $serial;
}
my $par_before = par_compare('parallel query');
$primary->safe_psql('postgres',
	q{SELECT count(consent.withdraw(id, 'user.contact.email', 'personalize')) FROM par_customers WHERE id % 9 = 0});
$primary->wait_for_catchup($standby, 'replay');
isnt(par_compare('parallel query after replayed withdrawals'), $par_before, 'the replayed withdrawals changed the cells');

$_->quit for ($standby_app, $primary_app, $standby_dba);
$standby->stop;
$primary->stop;
done_testing();
