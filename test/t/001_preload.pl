
# Copyright: pg_consent contributors
#
# pg_consent needs shared_preload_libraries (SPEC.md section 1):
#  - without it CREATE EXTENSION fails with SQLSTATE 55000, the message
#    "pg_consent must be loaded via shared_preload_libraries" and a hint
#    naming shared_preload_libraries = 'pg_consent', and leaves nothing;
#  - with it CREATE EXTENSION succeeds;
#  - DROP EXTENSION leaves nothing behind in the database: every catalog
#    compared below is as before CREATE EXTENSION, except the cluster-wide
#    role consent_auditor, which stays (other databases may use it) and
#    owns nothing and holds no privilege any more;
#  - CREATE EXTENSION works again after DROP, twice.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('preload');
$node->init;
$node->start;

# One line per object of the catalogs an extension can add to, by name (not
# by OID where a name exists), sorted.  Shared catalogs: roles and the
# dependencies on them from this database.
my $catalog_snapshot = q{
SELECT line FROM (
    SELECT 'namespace ' || nspname FROM pg_namespace
    UNION ALL SELECT 'class ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    UNION ALL SELECT 'type ' || n.nspname || '.' || t.typname
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    UNION ALL SELECT 'proc ' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    UNION ALL SELECT 'attribute ' || attrelid || '.' || attname FROM pg_attribute
    UNION ALL SELECT 'constraint ' || conname || ' on ' || conrelid || '/' || contypid FROM pg_constraint
    UNION ALL SELECT 'index ' || indexrelid FROM pg_index
    UNION ALL SELECT 'trigger ' || tgname || ' on ' || tgrelid FROM pg_trigger
    UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger
    UNION ALL SELECT 'policy ' || polname || ' on ' || polrelid FROM pg_policy
    UNION ALL SELECT 'rule ' || rulename || ' on ' || ev_class FROM pg_rewrite
    UNION ALL SELECT 'cast ' || castsource || '->' || casttarget FROM pg_cast
    UNION ALL SELECT 'operator ' || oid::regoperator::text FROM pg_operator
    UNION ALL SELECT 'opclass ' || opcname || ' ' || opcmethod FROM pg_opclass
    UNION ALL SELECT 'opfamily ' || opfname || ' ' || opfmethod FROM pg_opfamily
    UNION ALL SELECT 'collation ' || collname FROM pg_collation
    UNION ALL SELECT 'conversion ' || conname FROM pg_conversion
    UNION ALL SELECT 'language ' || lanname FROM pg_language
    UNION ALL SELECT 'am ' || amname FROM pg_am
    UNION ALL SELECT 'extension ' || extname FROM pg_extension
    UNION ALL SELECT 'fdw ' || fdwname FROM pg_foreign_data_wrapper
    UNION ALL SELECT 'server ' || srvname FROM pg_foreign_server
    UNION ALL SELECT 'publication ' || pubname FROM pg_publication
    UNION ALL SELECT 'ts config ' || cfgname FROM pg_ts_config
    UNION ALL SELECT 'ts dict ' || dictname FROM pg_ts_dict
    UNION ALL SELECT 'statistics ' || stxname FROM pg_statistic_ext
    UNION ALL SELECT 'sequence ' || seqrelid FROM pg_sequence
    UNION ALL SELECT 'default acl ' || defaclrole || '/' || defaclnamespace || '/' || defaclobjtype::text FROM pg_default_acl
    UNION ALL SELECT 'init privs ' || classoid || '/' || objoid || '/' || objsubid FROM pg_init_privs
    UNION ALL SELECT 'description ' || classoid || '/' || objoid || '/' || objsubid FROM pg_description
    UNION ALL SELECT 'depend ' || classid || '/' || objid || '/' || objsubid || ' -> ' || refclassid || '/' || refobjid
                     || '/' || refobjsubid || ' ' || deptype::text FROM pg_depend
    UNION ALL SELECT 'role ' || rolname FROM pg_roles
    UNION ALL SELECT 'role setting ' || setdatabase || '/' || setrole FROM pg_db_role_setting
    UNION ALL SELECT 'shdepend ' || classid || '/' || objid || ' -> ' || refobjid::regrole::text || ' ' || deptype::text
        FROM pg_shdepend WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
) s(line) ORDER BY line COLLATE "C"
};

sub snapshot
{
	my %lines = map { $_ => 1 } split /\n/, $node->safe_psql('postgres', $catalog_snapshot);
	return \%lines;
}

# The lines of a snapshot that name objects (OIDs change when objects are
# created again).
sub named
{
	my ($lines) = @_;
	return { map { $_ => 1 } grep { /^(?:namespace|class|type|proc|operator|policy|role|extension) / && !/^\w+ pg_toast\./ }
		  keys %$lines };
}

# Lines in $a that are not in $b.
sub minus
{
	my ($a, $b) = @_;
	return [ sort grep { !$b->{$_} } keys %$a ];
}

my $before = snapshot();
ok(scalar(keys %$before) > 1000, 'catalog snapshot covers the catalogs');

# --- without shared_preload_libraries ---------------------------------------

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), '', 'no preload configured');

my ($ret, $stdout, $stderr) =
  $node->psql('postgres', "\\set VERBOSITY verbose\nCREATE EXTENSION pg_consent;");
isnt($ret, 0, 'CREATE EXTENSION without the preload fails');
like($stderr, qr/ERROR:  55000: pg_consent must be loaded via shared_preload_libraries$/m,
	'error: SQLSTATE 55000 and the message');
like($stderr, qr/^HINT:  .*shared_preload_libraries = 'pg_consent'/m,
	"hint names shared_preload_libraries = 'pg_consent'");
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is still up');

($ret, $stdout, $stderr) = $node->psql('postgres', 'CREATE EXTENSION pg_consent;');
like($stderr, qr/ERROR:  pg_consent must be loaded via shared_preload_libraries\n/,
	'default verbosity: exactly that message');

my $after_failure = snapshot();
is_deeply(minus($after_failure, $before), [], 'the failed CREATE EXTENSION added nothing');
is_deeply(minus($before, $after_failure), [], 'the failed CREATE EXTENSION removed nothing');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_roles WHERE rolname = 'consent_auditor'"),
	'0', 'not even the role consent_auditor');

# --- with shared_preload_libraries -----------------------------------------

$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_consent'");
$node->restart;
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), 'pg_consent', 'preload configured');

$before = snapshot();

# Creates the extension and checks that it works; returns the snapshot.
sub create_and_use
{
	my ($round) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION pg_consent;');
	is($rc, 0, "$round: CREATE EXTENSION succeeds") or diag($err);
	is( $node->safe_psql(
			'postgres', q{
        SELECT extversion = consent.version() FROM pg_extension WHERE extname = 'pg_consent'}),
		't',
		"$round: consent.version() is the installed version");
	$node->safe_psql(
		'postgres', q{
        CREATE TABLE preload_check (id bigint PRIMARY KEY, email consent.email);
        INSERT INTO preload_check VALUES (1, 'jane@example.com');
        SELECT FROM consent.protect('preload_check', 'id');
        CREATE ROLE preload_app;
        GRANT SELECT ON preload_check TO preload_app});
	is( $node->safe_psql(
			'postgres', q{
        SET ROLE preload_app;
        SELECT email FROM preload_check}),
		'j***@example.com',
		"$round: masking works");
	$node->safe_psql('postgres', 'DROP TABLE preload_check; DROP ROLE preload_app');
	return snapshot();
}

# Drops the extension and checks that only consent_auditor is left.
sub drop_and_compare
{
	my ($round) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', 'DROP EXTENSION pg_consent;');
	is($rc, 0, "$round: DROP EXTENSION succeeds") or diag($err);
	my $after = snapshot();
	my $left = minus($after, $before);
	is_deeply($left, ['role consent_auditor'],
		"$round: DROP EXTENSION leaves nothing behind but the role consent_auditor")
	  or diag("left behind:\n" . join("\n", @$left));
	my $gone = minus($before, $after);
	is_deeply($gone, [], "$round: DROP EXTENSION removed nothing that was there before")
	  or diag("removed:\n" . join("\n", @$gone));
	is( $node->safe_psql(
			'postgres', q{
        SELECT count(*) FROM pg_shdepend WHERE refclassid = 'pg_authid'::regclass
                                           AND refobjid = 'consent_auditor'::regrole}),
		'0',
		"$round: consent_auditor owns nothing and holds no privilege in any database");
	is($node->safe_psql('postgres', q{SELECT to_regnamespace('consent') IS NULL}),
		't', "$round: no schema consent");
}

my $created = create_and_use('first');
ok(scalar(@{ minus($created, $before) }) > 100, 'first: CREATE EXTENSION created objects');
($ret, $stdout, $stderr) = $node->psql('postgres', "\\set VERBOSITY verbose\nCREATE EXTENSION pg_consent;");
like($stderr, qr/ERROR:  42710: extension "pg_consent" already exists/, 'a second CREATE EXTENSION fails cleanly');
drop_and_compare('first');

# The role stays: the install script must cope with it existing.
my $recreated = create_and_use('second');
is_deeply(minus(named($recreated), named($created)), [], 'second: the same objects as the first time');
is_deeply(minus(named($created), named($recreated)), [], 'second: no object missing');
drop_and_compare('second');

create_and_use('third');
drop_and_compare('third');

# A database that never had the extension can still create it, and one
# database dropping it does not affect another.
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other',    'CREATE EXTENSION pg_consent');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_consent');
$node->safe_psql('postgres', 'DROP EXTENSION pg_consent');
is($node->safe_psql('other', q{SELECT count(*) > 0 FROM consent.categories}),
	't', 'the extension in another database is untouched');
is($node->safe_psql('other', q{SELECT has_table_privilege('consent_auditor', 'consent.ledger', 'SELECT')}),
	't', 'consent_auditor keeps its privileges in the other database');

$node->stop;
done_testing();
