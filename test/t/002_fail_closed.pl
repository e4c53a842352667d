
# Copyright: pg_consent contributors
#
# Fail closed (SPEC.md section 1): when the library is not active in a
# backend (the server was restarted without shared_preload_libraries),
# reading a protected table is an error (SQLSTATE 55000, "pg_consent is not
# active in this backend..."), never the value: for the table owner, for an
# application role, through views and functions, and for COPY.  Superusers
# (and BYPASSRLS roles) bypass, as they do row-level security and masking:
# documented.  With the preload back, reading works again and masks.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;
our $TODO;

my $node = consent_node('fail_closed');

$node->safe_psql(
	'postgres', q{
    CREATE EXTENSION pg_consent;
    CREATE ROLE app_owner;
    CREATE ROLE app_reader;
    CREATE ROLE app_bypass BYPASSRLS;
    CREATE SCHEMA shop AUTHORIZATION app_owner;
    GRANT USAGE ON SCHEMA shop TO app_reader, app_bypass;
    SET ROLE app_owner;
    CREATE TABLE shop.customers (id bigint PRIMARY KEY, email consent.email, name consent.name);
    INSERT INTO shop.customers VALUES (1, 'alice@example.com', 'Alice Archer'),
                                      (2, 'bob@example.org', 'Bob Baker');
    GRANT SELECT ON shop.customers TO app_reader, app_bypass;
    -- a view owned by the table owner, and one with security_invoker
    CREATE VIEW shop.owner_view AS SELECT id, email FROM shop.customers;
    CREATE VIEW shop.invoker_view WITH (security_invoker) AS SELECT id, email FROM shop.customers;
    GRANT SELECT ON shop.owner_view, shop.invoker_view TO app_reader;
    RESET ROLE;
    -- a view and a SECURITY DEFINER function owned by a superuser (the DBA
    -- who runs the migrations)
    CREATE VIEW shop.dba_view AS SELECT id, email FROM shop.customers;
    GRANT SELECT ON shop.dba_view TO app_reader;
    CREATE FUNCTION shop.dba_emails() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog AS $$ SELECT email::text FROM shop.customers ORDER BY id $$;
    GRANT EXECUTE ON FUNCTION shop.dba_emails() TO app_reader;
    SELECT FROM consent.protect('shop.customers', 'id');
    SELECT FROM consent.allow_purpose('app_owner', 'personalize');
    SELECT FROM consent.allow_purpose('app_reader', 'personalize');
    SELECT FROM consent.grant(1, 'user.contact.email', 'personalize');
});

# Runs $sql as $role (SET ROLE; undef = the superuser) under the purpose
# 'personalize'; returns (exit code, stdout, stderr) of psql.
sub run_as
{
	my ($role, $sql) = @_;
	my $prefix = "\\set VERBOSITY verbose\n";
	$prefix .= "SET ROLE $role;\n" if defined $role;
	$prefix .= "SET consent.purpose = 'personalize';\n" if defined $role && $role ne 'app_bypass';
	my ($ret, $stdout, $stderr) = $node->psql('postgres', $prefix . $sql);
	return ($ret, $stdout, $stderr);
}

# The read paths an ordinary role has to the protected table.
my %paths = (
	'owner, table' => [ 'app_owner', 'SELECT id, email, name FROM shop.customers ORDER BY id' ],
	'owner, COPY' => [ 'app_owner', 'COPY shop.customers TO STDOUT' ],
	'owner, COPY (query)' => [ 'app_owner', 'COPY (SELECT id, email FROM shop.customers ORDER BY id) TO STDOUT' ],
	'owner, count' => [ 'app_owner', 'SELECT count(*) FROM shop.customers' ],
	'owner, predicate' =>
	  [ 'app_owner', q{SELECT id FROM shop.customers WHERE email = 'bob@example.org'} ],
	'reader, table' => [ 'app_reader', 'SELECT id, email, name FROM shop.customers ORDER BY id' ],
	'reader, owner view' => [ 'app_reader', 'SELECT id, email FROM shop.owner_view ORDER BY id' ],
	'reader, security_invoker view' =>
	  [ 'app_reader', 'SELECT id, email FROM shop.invoker_view ORDER BY id' ],
	'reader, superuser-owned view' => [ 'app_reader', 'SELECT id, email FROM shop.dba_view ORDER BY id' ],
	'reader, superuser SECURITY DEFINER function' => [ 'app_reader', 'SELECT shop.dba_emails()' ],);

# --- with the preload: masking ---------------------------------------------

my ($ret, $stdout, $stderr) =
  run_as('app_owner', 'SELECT id, email, name FROM shop.customers ORDER BY id');
is($stdout, "1|alice\@example.com|A. A.\n2|b***\@example.org|B. B.", 'preload: owner reads, masked by consent')
  or diag($stderr);
for my $path (sort keys %paths)
{
	my ($role, $sql) = @{ $paths{$path} };
	($ret, $stdout, $stderr) = run_as($role, $sql);
	is($ret, 0, "preload: $path works") or diag($stderr);
	unlike($stdout, qr/bob\@example\.org|Bob Baker|Alice Archer/, "preload: $path masks what was not granted");
}

# --- restart without the preload -------------------------------------------

$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), '', 'restarted without the preload');

# Known limit (docs/masking.md): PostgreSQL skips row-level security for a
# superuser who owns a view or a SECURITY DEFINER function, so the
# fail-closed policy does not run on those two paths.
my %known_limit = map { $_ => 1 }
  ('reader, superuser-owned view', 'reader, superuser SECURITY DEFINER function');
for my $path (sort keys %paths)
{
	my ($role, $sql) = @{ $paths{$path} };
	($ret, $stdout, $stderr) = run_as($role, $sql);
	local $TODO = $known_limit{$path}
	  ? 'superuser-owned views and SECURITY DEFINER functions bypass the fail-closed policy' : undef;
	isnt($ret, 0, "no preload: $path fails");
	like(
		$stderr,
		qr/ERROR:  55000: pg_consent is not active in this backend: protected tables cannot be read/,
		"no preload: $path fails with 55000 and the message");
	unlike($stdout, qr/example\.(?:com|org)|Archer|Baker|\*\*\*/, "no preload: $path reveals nothing");
}

# A fresh connection of the owner, without SET consent.purpose.
($ret, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSET ROLE app_owner;\nSELECT * FROM shop.customers;");
like($stderr, qr/ERROR:  55000: pg_consent is not active in this backend/, 'no preload, no purpose: fails too');

# Superusers bypass (as they bypass row-level security and masking).
($ret, $stdout, $stderr) = run_as(undef, 'SELECT id, email FROM shop.customers ORDER BY id');
is($stdout, "1|alice\@example.com\n2|bob\@example.org", 'no preload: a superuser still reads (bypass)')
  or diag($stderr);
# So do BYPASSRLS roles, which see every value with the preload too.
($ret, $stdout, $stderr) = run_as('app_bypass', 'SELECT id, email FROM shop.customers ORDER BY id');
is($stdout, "1|alice\@example.com\n2|bob\@example.org", 'no preload: a BYPASSRLS role reads (bypass)')
  or diag($stderr);

# Writes by the owner are refused as well (the policy guards them too).
($ret, $stdout, $stderr) = run_as('app_owner',
	q{INSERT INTO shop.customers VALUES (3, 'carol@example.net', 'Carol Clark') RETURNING email});
like($stderr, qr/ERROR:  55000: pg_consent is not active/, 'no preload: INSERT ... RETURNING fails');

# --- restart with the preload: masking again ---------------------------------

$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_consent'");
$node->restart;
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), 'pg_consent', 'restarted with the preload');

($ret, $stdout, $stderr) =
  run_as('app_owner', 'SELECT id, email, name FROM shop.customers ORDER BY id');
is($stdout, "1|alice\@example.com|A. A.\n2|b***\@example.org|B. B.", 'preload again: owner reads, masked')
  or diag($stderr);
($ret, $stdout, $stderr) = run_as('app_reader', 'SELECT id, email FROM shop.dba_view ORDER BY id');
is($stdout, "1|alice\@example.com\n2|b***\@example.org", 'preload again: reader through a view, masked')
  or diag($stderr);
($ret, $stdout, $stderr) =
  $node->psql('postgres', "SET ROLE app_reader;\nSELECT id, email FROM shop.customers ORDER BY id;");
is($stdout, "1|a***\@example.com\n2|b***\@example.org", 'preload again: no purpose, everything masked')
  or diag($stderr);
($ret, $stdout, $stderr) = run_as(undef, 'SELECT id, email FROM shop.customers ORDER BY id');
is($stdout, "1|alice\@example.com\n2|bob\@example.org", 'preload again: a superuser reads everything');

$node->stop;
done_testing();
