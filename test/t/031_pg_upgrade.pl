
# Copyright: pg_consent contributors
#
# A major upgrade with pg_upgrade (PostgreSQL 15 -> 18) keeps consent:
#  - an old cluster (the installed PostgreSQL 15) with
#    shared_preload_libraries = 'pg_consent' and a pseudonym key holds
#    protected tables with bigint, uuid and text subjects and a partitioned
#    one (one column dropped), a ledger of grants (with valid_until, source,
#    evidence; one already expired), withdrawals and special categories,
#    user-defined categories (a domain in consent, one in another schema, a
#    special one) and purposes (one with a legal basis other than consent),
#    purpose_roles (and a role whose default purpose is a role setting),
#    column masks (the hash mask with consent.pseudonym_key among them),
#    a require_consent policy, a second database with the extension, and
#    disclosure counters from the reads below;
#  - recorded before the upgrade, by a superuser: the consent catalog
#    (categories, purposes, purpose_roles, protected_tables, column_masks),
#    the ledger (COPY ordered by id), subject_state, the ledger's id
#    sequence, the OIDs the catalog holds (types, relations, roles), the
#    domains of the categories, the row-level security policies, the raw
#    table data, consent.coverage, consent.processing_records, the columns
#    with planner statistics, consent.granted() for a grid of (subject,
#    category, purpose) now and as of a past event; by the application
#    roles, under no purpose and under each purpose they were allowed: the
#    masked output of SELECT (also a predicate on a masked column and a
#    partition read directly) and COPY, and granted() for the current purpose;
#  - pg_upgrade of the new installation, --check and then the real run
#    (copy mode), into a cluster initdb'ed by the new installation with the
#    same settings in postgresql.conf (pg_upgrade carries no configuration);
#  - after the upgrade, ALTER EXTENSION pg_consent UPDATE in each database;
#    every record above is identical, byte for byte; the extension has the
#    default version of the new installation; the fail-closed policy
#    (consent_library_active, restrictive) is still on every protected table
#    and partition, and the require_consent policy too; no tagged column has
#    planner statistics;
#  - consent.disclosures: the counters live in shared memory, which
#    pg_upgrade does not carry: the test asserts that the old cluster had
#    counters, that the upgraded cluster starts with none (0 entries), and
#    that the same reads count exactly the same cells again, per database,
#    role, purpose, relation, column and category, under the same OIDs;
#  - the ledger continues: a grant after the upgrade gets a higher id than
#    every event before it; a withdrawal after the upgrade masks at once,
#    in a session that was already running and had read the value.
# Debian's PostgreSQL 15.20 stores an attribute option pg_attver on every
# column, which pg_upgrade to 18.6 cannot restore, with or without
# pg_consent; the test removes it from the old catalog before the upgrade
# when the new server refuses it (see below), and says so in a diag line.
#
# The two installations:
#   old  $PG_UPGRADE_OLD_CONFIG, else /usr/lib/postgresql/15/bin/pg_config;
#   new  $PG_UPGRADE_NEW_CONFIG, else what test/harness/pg-build.sh 18
#        prints, when PostgreSQL 18 is installed or was built already (the
#        test never starts a build); neither: skip_all.
# pg_consent must be installed into both (skip_all otherwise), e.g. for the
# build in the cache, from a copy of the tree:
#   make PG_CONFIG=/var/cache/pg_consent/postgresql-18.6/bin/pg_config
#   make PG_CONFIG=/var/cache/pg_consent/postgresql-18.6/bin/pg_config install
#
# Run by hand as an ordinary user (PostgreSQL refuses root; as root, run it
# as the user pgconsent from a copy of test/t it owns, as tap.sh does), from
# test/t, with the TAP modules of either installation (both handle nodes of
# another installation, and every node of this test names its own); about
# 15 s:
#   new=/var/cache/pg_consent/postgresql-18.6
#   cd test/t && PG_UPGRADE_NEW_CONFIG=$new/bin/pg_config \
#     PERL5LIB=$new/lib/pgxs/src/test/perl \
#     PG_REGRESS=$new/lib/pgxs/src/test/regress/pg_regress \
#     TESTDATADIR=$PWD/tmp_check TESTLOGDIR=$PWD/tmp_check/log \
#     prove -v 031_pg_upgrade.pl
# (PERL5LIB and PG_REGRESS of /usr/lib/postgresql/15/lib/pgxs work too.)
# Through test/harness/tap.sh as root, PG_UPGRADE_NEW_CONFIG must be passed
# on: it runs the tests with env -i in a copy of test/t, where there is no
# ../harness/pg-build.sh to ask.
use strict;
use warnings;

use Cwd qw(abs_path getcwd);
use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

# --- the two installations --------------------------------------------------------

# Runs a command; returns (exit code, stdout, stderr), stdout chomped.
sub run_cmd
{
	my ($cmd, %env) = @_;
	local @ENV{ keys %env } = values %env;
	my ($out, $err) = ('', '');
	my $ok = eval { IPC::Run::run($cmd, '<', \undef, '>', \$out, '2>', \$err); 1 };
	return (127, '', $@) unless $ok;
	chomp $out;
	return ($? >> 8, $out, $err);
}

# The new installation from test/harness/pg-build.sh, only when one exists
# (PG18_CONFIG, the Debian package, or a finished build in a build cache,
# which is passed to the script as PG18_CONFIG): it must not start a build.
sub new_config_from_pg_build
{
	my $script = dirname(abs_path(__FILE__)) . '/../harness/pg-build.sh';
	return (undef, "PG_UPGRADE_NEW_CONFIG is not set and there is no $script") unless -x $script;
	my @candidates = grep { defined && -x } ($ENV{PG18_CONFIG}, '/usr/lib/postgresql/18/bin/pg_config');
	for my $cache (grep { defined } ($ENV{CONSENT_BUILD_CACHE}, '/var/cache/pg_consent',
			$ENV{HOME} ? "$ENV{HOME}/.cache/pg_consent" : undef))
	{
		push @candidates, map { "$_/bin/pg_config" }
		  grep { -f "$_/.pg_consent-built" && -x "$_/bin/pg_config" } reverse sort glob("$cache/postgresql-18.*");
	}
	for my $candidate (@candidates)
	{
		my ($rc, $out, $err) = run_cmd([ $script, '18' ], PG18_CONFIG => $candidate);
		return ($out, "test/harness/pg-build.sh 18") if $rc == 0 && -x $out;
		note("pg-build.sh 18 with PG18_CONFIG=$candidate: exit $rc: $err");
	}
	return (undef,
		    "PG_UPGRADE_NEW_CONFIG is not set and PostgreSQL 18 is neither installed nor built "
		  . "(test/harness/pg-build.sh 18 builds it; this test does not)");
}

my $old_config = $ENV{PG_UPGRADE_OLD_CONFIG} || '/usr/lib/postgresql/15/bin/pg_config';
my ($new_config, $new_from) = ($ENV{PG_UPGRADE_NEW_CONFIG}, 'PG_UPGRADE_NEW_CONFIG');
($new_config, $new_from) = new_config_from_pg_build() unless $new_config;
plan skip_all => "no new PostgreSQL installation for pg_upgrade: $new_from" unless $new_config;

my %inst;
for my $which ([ old => $old_config ], [ new => $new_config ])
{
	my ($name, $pg_config) = @$which;
	plan skip_all => "the $name installation's pg_config ($pg_config) is not executable" unless -x $pg_config;
	my %i = (pg_config => $pg_config);
	for my $item (qw(version bindir pkglibdir sharedir pgxs))
	{
		my ($rc, $out) = run_cmd([ $pg_config, "--$item" ]);
		plan skip_all => "$pg_config --$item failed" if $rc != 0;
		$i{$item} = $out;
	}
	($i{major}) = $i{version} =~ /^PostgreSQL (\d+)/;
	plan skip_all => "cannot tell the major version of $pg_config ($i{version})" unless $i{major};
	# PostgreSQL::Test::Cluster wants the directory holding bin/ and lib/
	$i{install_path} = dirname($i{bindir});
	plan skip_all => "$i{install_path}/bin/pg_config is missing (PostgreSQL::Test::Cluster needs bin/ and lib/ side by side)"
	  unless -x "$i{install_path}/bin/pg_config";
	for my $file ("$i{pkglibdir}/pg_consent.so", "$i{sharedir}/extension/pg_consent.control")
	{
		plan skip_all => "pg_consent is not installed into the $name installation ($i{version}): "
		  . "$file is missing (make PG_CONFIG=$pg_config install)"
		  unless -f $file;
	}
	($i{default_version}) =
	  slurp_file("$i{sharedir}/extension/pg_consent.control") =~ /^default_version\s*=\s*'([^']*)'/m;
	$inst{$name} = \%i;
}
plan skip_all => "the new installation ($inst{new}{version}) is not of a later major version than the old one ($inst{old}{version})"
  unless $inst{new}{major} > $inst{old}{major};
plan skip_all => "$inst{new}{bindir}/pg_upgrade is missing" unless -x "$inst{new}{bindir}/pg_upgrade";
note("old: $inst{old}{version} ($old_config); new: $inst{new}{version} ($new_config, from $new_from)");

# Cluster->init of both module versions runs $PG_REGRESS --config-auth
$ENV{PG_REGRESS} ||= dirname(dirname(dirname($inst{new}{pgxs}))) . '/src/test/regress/pg_regress';

# What postgresql.conf must say in both clusters (pg_upgrade carries no
# configuration): the preload, the key of the hash mask, and the settings
# the compared output depends on.
my $conf = q{
shared_preload_libraries = 'pg_consent'
consent.pseudonym_key = 'pg-upgrade-test-key'
timezone = 'UTC'
datestyle = 'ISO, MDY'
log_statement = none
autovacuum = off
};

my $old = PostgreSQL::Test::Cluster->new('old15', install_path => $inst{old}{install_path});
# data checksums: initdb enables them by default since 18, pg_upgrade wants
# the same setting on both sides
$old->init(extra => [ '--encoding=UTF8', '--locale=C', '--data-checksums' ]);
$old->append_conf('postgresql.conf', $conf);
$old->start;
like($old->safe_psql('postgres', 'SELECT version()'), qr/^PostgreSQL $inst{old}{major}\./,
	"the old cluster runs PostgreSQL $inst{old}{major}");

# --- the old cluster --------------------------------------------------------------

$old->safe_psql('postgres', 'CREATE DATABASE upg');
$old->safe_psql('postgres', 'CREATE DATABASE upg_other');
$old->safe_psql(
	'upg', q{
    CREATE EXTENSION pg_consent;
    CREATE ROLE up_app LOGIN;
    CREATE ROLE up_analyst LOGIN;
    CREATE ROLE up_recorder LOGIN;
    CREATE ROLE up_auditor LOGIN IN ROLE consent_auditor;
    CREATE SCHEMA shop;
    -- user-defined categories (a domain in consent, one in shop, a special
    -- one) and purposes (one with another legal basis)
    SELECT consent.define_category('user.contact.loyalty', 'text', 'loyalty', 'partial(1,1)', false, 'Loyalty card');
    SELECT consent.define_category('user.behavior.vip', 'text', 'shop.vip_note', 'redact', false, 'VIP note');
    SELECT consent.define_category('user.biometric.face', 'bytea', 'face', 'hash', true, 'Face template');
    SELECT consent.define_purpose('loyalty_program', 'consent', '{}', 'Loyalty program');
    SELECT consent.define_purpose('loyalty_program.newsletter');
    SELECT consent.define_purpose('fraud', 'legitimate_interest', '{user.contact.email,user.device}', 'Fraud prevention');

    CREATE TABLE shop.customers (
        id bigint PRIMARY KEY, name consent.name, email consent.email, phone consent.phone,
        born consent.birthdate, ip consent.ip_address, legacy consent.email, loyalty consent.loyalty,
        vip shop.vip_note, face consent.face, purchases consent.purchase_history, note text);
    INSERT INTO shop.customers VALUES
        (1, 'Alice Rawmark', 'alice.rawmark@example.com', '+49 30 7770001', '1987-06-05', '203.0.113.77',
         'old.alice@example.com', 'LOYRAW-0001', 'VIP rawmark note one', '\xdeadbeef01', '{"item": "rawmark-book"}', 'plain note 1'),
        (2, 'Bob Rawmark', 'bob.rawmark@example.org', '+49 30 7770002', '1990-02-03', '198.51.100.78',
         'old.bob@example.org', 'LOYRAW-0002', 'VIP rawmark note two', '\xdeadbeef02', '{"item": "rawmark-lamp"}', 'plain note 2'),
        (3, 'Zoë Ødegård-Rawmark', 'zoe.rawmark@example.no', '+47 22 7770003', '2001-12-31', '2001:db8:77::1',
         NULL, 'LOYRAW-0003', 'VIP rawmark note three', '\xdeadbeef03', '[{"item": "rawmark-skis"}]', 'plain note 3'),
        (4, 'Dana Rawmark', 'dana.rawmark@example.com', '+49 30 7770004', '1979-09-09', '192.0.2.44',
         NULL, 'LOYRAW-0004', NULL, NULL, NULL, 'plain note 4'),
        (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'only nulls');
    -- a dropped (tagged) column: pg_upgrade recreates it and drops it again
    ALTER TABLE shop.customers DROP COLUMN legacy;
    CREATE TABLE shop.orders (order_id uuid PRIMARY KEY, customer uuid NOT NULL, shipping consent.address, amount numeric);
    CREATE INDEX ON shop.orders (customer);
    INSERT INTO shop.orders VALUES
        ('a0000000-0000-0000-0000-000000000001', '11111111-1111-1111-1111-111111111111', 'Rawmark Street 1, Berlin', 10.5),
        ('a0000000-0000-0000-0000-000000000002', '22222222-2222-2222-2222-222222222222', 'Rawmark Road 2, Oslo', 20);
    CREATE TABLE shop.accounts (handle text PRIMARY KEY, email consent.email);
    INSERT INTO shop.accounts VALUES (E'o''hara "quoted"\nhandle', 'ohara.rawmark@example.com'),
                                     ('plain-handle', 'plain.rawmark@example.com');
    CREATE TABLE shop.events (id bigint NOT NULL, at date NOT NULL, ip consent.ip_address, query consent.search_history)
        PARTITION BY RANGE (at);
    CREATE TABLE shop.events_2024 PARTITION OF shop.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    CREATE TABLE shop.events_2025 PARTITION OF shop.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE INDEX ON shop.events (id);
    INSERT INTO shop.events VALUES (1, '2024-05-01', '192.0.2.177', 'rawmark shoes'), (2, '2024-06-01', '192.0.2.178', 'rawmark hats'),
                                   (10, '2025-02-01', '198.51.100.10', 'rawmark tents'), (1, '2025-03-01', '192.0.2.179', 'rawmark socks');
    SELECT consent.protect('shop.customers', 'id');
    SELECT consent.protect('shop.orders', 'customer');
    SELECT consent.protect('shop.accounts', 'handle');
    SELECT consent.protect('shop.events', 'id');
    SELECT consent.set_mask('shop.customers', 'phone', 'hash');
    SELECT consent.set_mask('shop.customers', 'email', 'partial(2,3)');
    SELECT consent.set_mask('shop.orders', 'shipping', 'partial(0,4)');
    SELECT consent.set_mask('shop.events', 'query', 'redact');
    SELECT consent.require_consent('shop.customers', 'loyalty_program');

    GRANT USAGE ON SCHEMA shop TO up_app, up_analyst;
    GRANT SELECT ON ALL TABLES IN SCHEMA shop TO up_app, up_analyst;
    SELECT consent.allow_purpose('up_app', 'loyalty_program');
    SELECT consent.allow_purpose('up_app', 'personalize');
    SELECT consent.allow_purpose('up_app', 'fraud');
    SELECT consent.allow_purpose('up_analyst', 'analytics');
    SELECT consent.allow_recording('up_recorder');
    ANALYZE;
});
# a role whose purpose comes from a role setting (pg_upgrade restores it
# with the roles, in a database without the extension)
$old->safe_psql('postgres', q{ALTER ROLE up_analyst SET consent.purpose = 'analytics'});

# consent events, recorded by the recorder: grants (with source, evidence,
# expiry), withdrawals, special categories, uuid and text subjects
$old->safe_psql(
	'upg', q{
    SELECT consent.grant(1, 'user', 'loyalty_program', source => 'web', evidence => '{"form": "v1"}');
    SELECT consent.grant(2, 'user.contact', 'personalize', valid_until => now() + interval '10 years',
                         source => 'app', evidence => '{"screen": "settings", "build": 3}');
    SELECT consent.grant(2, 'user.contact.loyalty', 'loyalty_program.newsletter');
    SELECT consent.withdraw(1, 'user.contact.email', 'loyalty_program');
    SELECT consent.grant(3, 'user.biometric.face', 'personalize', source => 'kiosk');
    SELECT consent.grant(3, 'user.name', 'personalize');
    SELECT consent.grant(3, 'user.contact', 'loyalty_program');
    SELECT consent.grant('11111111-1111-1111-1111-111111111111'::uuid, 'user.contact.address', 'personalize');
    SELECT consent.grant(E'o''hara "quoted"\nhandle', 'user.contact.email', 'personalize');
    SELECT consent.grant(1, 'user.device', 'personalize');
    SELECT consent.withdraw(2, 'user.contact.phone_number', 'personalize');
    SELECT consent.grant(1, 'user.behavior', 'analytics');
    SELECT consent.grant(10, 'user.device.ip_address', 'analytics');
    SELECT consent.grant(4, 'user.contact.email', 'personalize', valid_until => clock_timestamp() + interval '1 second');
}, extra_params => [ '-U', 'up_recorder' ]);
# the last grant expires before anything is recorded
$old->poll_query_until('upg', q{SELECT NOT consent.granted(4, 'user.contact.email', 'personalize')})
  or die 'the grant of subject 4 did not expire';

# a second database with the extension
$old->safe_psql(
	'upg_other', q{
    CREATE EXTENSION pg_consent;
    CREATE TABLE people (id bigint PRIMARY KEY, email consent.email);
    INSERT INTO people VALUES (1, 'other.rawmark@example.com'), (2, 'second.rawmark@example.com');
    SELECT consent.protect('people', 'id');
    GRANT SELECT ON people TO up_app;
    SELECT consent.allow_purpose('up_app', 'marketing');
    SELECT consent.grant(2, 'user.contact.email', 'marketing', source => 'other db');
});

# --- what is compared ---------------------------------------------------------

my @tables = (
	[ 'shop.customers', 'id' ],
	[ 'shop.orders',    'order_id' ],
	[ 'shop.accounts',  'handle' ],
	[ 'shop.events',    'id, at' ],);
my @subjects = ('1', '2', '3', '4', '5', '10', '11111111-1111-1111-1111-111111111111',
	'22222222-2222-2222-2222-222222222222', "o'hara \"quoted\"\nhandle", 'plain-handle');
my @categories = (
	'user',                  'user.contact',
	'user.contact.email',    'user.contact.phone_number',
	'user.contact.loyalty',  'user.contact.address',
	'user.name',             'user.biometric.face',
	'user.device.ip_address', 'user.behavior.vip',
	'user.behavior.search_history');
my @grid_purposes =
  ('loyalty_program', 'loyalty_program.newsletter', 'personalize', 'fraud', 'analytics', 'marketing', 'essential');

# A literal text array of the strings.
sub sql_array
{
	return 'ARRAY[' . join(', ', map { "E'" . (s/\\/\\\\/gr =~ s/'/''/gr =~ s/\n/\\n/gr) . "'" } @_) . ']';
}

# consent.granted() for every (subject, category, purpose) of the grid, now
# or at the time the SQL expression $at gives.
sub grid
{
	my ($at) = @_;
	my $at_arg = defined $at ? ", $at" : '';
	return sprintf(
		q{SELECT string_agg(format('%%s | %%s | %%s | %%s', s, c, p, coalesce(consent.granted(s, c, p%s)::text, 'null')),
                            E'\n' ORDER BY s, c, p)
          FROM unnest(%s) s, unnest(%s) c, unnest(%s) p},
		$at_arg, sql_array(@subjects), sql_array(@categories), sql_array(@grid_purposes));
}

# Everything a superuser reads back, by name.
sub superuser_view
{
	my ($node) = @_;
	my %out;
	for my $t (@tables)
	{
		my ($table, $order) = @$t;
		$out{"raw $table"} = $node->safe_psql('upg', "COPY (SELECT * FROM $table ORDER BY $order) TO STDOUT");
	}
	%out = (%out, consent_catalog_copy($node, 'upg'));
	$out{'consent.ledger of upg_other'} = $node->safe_psql('upg_other', 'COPY (SELECT * FROM consent.ledger ORDER BY id) TO STDOUT');
	$out{'consent.subject_state of upg_other'} =
	  $node->safe_psql('upg_other', 'COPY (SELECT * FROM consent.subject_state ORDER BY subject, category, purpose) TO STDOUT');
	$out{'ledger sequence'} = $node->safe_psql('upg', 'SELECT last_value, is_called FROM consent.ledger_id_seq');
	# pg_upgrade keeps the OIDs of types, relations, roles and databases:
	# the catalog holds them as regtype, regclass and regrole
	$out{'oids'} = $node->safe_psql(
		'upg', q{
        COPY (SELECT 'type', key, type::oid FROM consent.categories WHERE type IS NOT NULL
              UNION ALL SELECT 'relation', relation::text, relation::oid FROM consent.protected_tables
              UNION ALL SELECT 'mask', relation::text || '.' || column_name, relation::oid FROM consent.column_masks
              UNION ALL SELECT 'role', role::text || ' ' || purpose, role::oid FROM consent.purpose_roles
              UNION ALL SELECT 'database', datname, oid FROM pg_database WHERE datname LIKE 'upg%'
              ORDER BY 1, 2) TO STDOUT});
	$out{'domains of the categories'} = $node->safe_psql(
		'upg', q{
        COPY (SELECT c.key, t.typnamespace::regnamespace, t.typname, format_type(t.typbasetype, t.typtypmod),
                     obj_description(t.oid, 'pg_type')
              FROM consent.categories c JOIN pg_type t ON t.oid = c.type ORDER BY c.key) TO STDOUT});
	$out{'policies'} = $node->safe_psql(
		'upg', q{
        COPY (SELECT c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity, p.polname, p.polpermissive,
                     p.polcmd, pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
              FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid
              WHERE c.relnamespace = 'shop'::regnamespace ORDER BY 1, 4) TO STDOUT});
	$out{'consent.coverage'} = $node->safe_psql('upg',
		'COPY (SELECT * FROM consent.coverage ORDER BY schema_name, table_name, column_name) TO STDOUT');
	$out{'consent.processing_records'} =
	  $node->safe_psql('upg', 'COPY (SELECT * FROM consent.processing_records ORDER BY purpose) TO STDOUT');
	$out{'consent.processing_records as an auditor'} = $node->safe_psql('upg',
		'COPY (SELECT * FROM consent.processing_records ORDER BY purpose) TO STDOUT',
		extra_params => [ '-U', 'up_auditor' ]);
	$out{'columns with statistics'} = $node->safe_psql('upg',
		q{COPY (SELECT tablename, attname FROM pg_stats WHERE schemaname = 'shop' ORDER BY 1, 2) TO STDOUT});
	$out{'granted() now'} = $node->safe_psql('upg', grid());
	# time travel: as of the withdrawal (event 4) and just before it
	$out{'granted() as of event 4'} =
	  $node->safe_psql('upg', grid('(SELECT recorded_at FROM consent.ledger WHERE id = 4)'));
	$out{'granted() just before event 4'} = $node->safe_psql('upg',
		grid(q{(SELECT recorded_at - interval '1 microsecond' FROM consent.ledger WHERE id = 4)}));
	$out{'role settings'} = $node->safe_psql('postgres',
		q{SELECT string_agg(r.rolname || ' ' || array_to_string(s.setconfig, ','), E'\n' ORDER BY r.rolname)
          FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname LIKE 'up\_%'});
	return \%out;
}

# What the application roles see, under no purpose and under each purpose
# they were allowed, through SELECT and COPY.
my @app_queries = (
	'SELECT * FROM shop.customers ORDER BY id',
	'SELECT * FROM shop.orders ORDER BY order_id',
	'SELECT * FROM shop.accounts ORDER BY handle',
	'SELECT * FROM shop.events ORDER BY id, at',
	'SELECT * FROM shop.events_2025 ORDER BY id, at',
	q{SELECT id, email, phone FROM shop.customers WHERE email LIKE '%rawmark@example.%' OR phone LIKE 'h:%' ORDER BY id},
	'SELECT name, count(*) FROM shop.customers GROUP BY name ORDER BY name',
	'COPY shop.customers TO STDOUT',
	'COPY shop.accounts TO STDOUT',
	'COPY (SELECT * FROM shop.events ORDER BY id, at) TO STDOUT',
	q{SELECT consent.granted(1, 'user.contact.email'), consent.granted(2, 'user.contact.email'),
             consent.granted('11111111-1111-1111-1111-111111111111'::uuid, 'user.contact.address'),
             consent.granted(E'o''hara "quoted"\nhandle', 'user.contact.email'), consent.granted(10, 'user.device')});
my %app_purposes = (
	up_app     => [ '', 'loyalty_program', 'loyalty_program.newsletter', 'personalize', 'fraud' ],
	up_analyst => [ undef, '', 'analytics' ],    # undef: the role setting
);

sub app_view
{
	my ($node) = @_;
	my %out;
	for my $role (sort keys %app_purposes)
	{
		for my $purpose (@{ $app_purposes{$role} })
		{
			my $set = defined $purpose ? "SET consent.purpose = '$purpose';\n" : '';
			my $label = defined $purpose ? "purpose '$purpose'" : 'the role setting';
			for my $q (@app_queries)
			{
				$out{"$role, $label: $q"} = $node->safe_psql('upg', "${set}SHOW consent.purpose;\n$q",
					extra_params => [ '-U', $role ]);
			}
		}
	}
	$out{'upg_other: up_app, marketing'} = $node->safe_psql('upg_other',
		"SET consent.purpose = 'marketing';\nSELECT * FROM people ORDER BY id;\nCOPY people TO STDOUT",
		extra_params => [ '-U', 'up_app' ]);
	return \%out;
}

my $disclosures = q{
    COPY (SELECT database, role, purpose, relation, column_name, category, revealed, masked, dbid, roleid, relid, attnum
          FROM consent.disclosures ORDER BY database, role, purpose, relation, column_name) TO STDOUT};

# The counters count only the reads recorded below, in both clusters.
$old->safe_psql('upg', 'SELECT consent.disclosures_reset()');
my $before_app = app_view($old);
my $before_su = superuser_view($old);
my $before_disclosures = $old->safe_psql('upg', $disclosures);
my $max_event = $old->safe_psql('upg', 'SELECT max(id) FROM consent.ledger');

# the comparison is worth something: the old cluster holds what it should
is($old->safe_psql('upg', 'SELECT count(*) FROM consent.ledger'), '14', 'old: fourteen consent events');
is($old->safe_psql('upg', q{SELECT count(*) FROM consent.categories WHERE NOT shipped}),
	'3', 'old: three user-defined categories');
is($old->safe_psql('upg', q{SELECT count(*) FROM consent.purposes WHERE NOT shipped}),
	'3', 'old: three user-defined purposes');
like($before_su->{'raw shop.customers'}, qr/alice\.rawmark\@example\.com/, 'old: the superuser reads raw values');
like($before_su->{'domains of the categories'}, qr/^user\.behavior\.vip\tshop\tvip_note\ttext\t/m,
	'old: a category type in another schema');
like($before_su->{'policies'}, qr/^shop\.customers\tt\tt\tconsent_library_active\tf\t/m,
	'old: the fail-closed policy on a protected table');
like($before_su->{'policies'}, qr/^shop\.events_2024\tt\tt\tconsent_library_active\tf\t/m,
	'old: the fail-closed policy on a partition');
like($before_su->{'policies'}, qr/^shop\.customers\tt\tt\tconsent_require loyalty_program\tf\t/m,
	'old: the require_consent policy');
like($before_su->{'granted() now'}, qr/^2 \| user\.contact\.email \| personalize \| true$/m, 'old: a grant covers a child category');
like($before_su->{'granted() now'}, qr/^4 \| user\.contact\.email \| personalize \| false$/m, 'old: an expired grant');
like($before_su->{'granted() now'}, qr/^1 \| user\.biometric\.face \| loyalty_program \| false$/m,
	'old: a grant of "user" does not cover a special category');
like($before_su->{'granted() now'}, qr/^3 \| user\.biometric\.face \| personalize \| true$/m,
	'old: an explicit grant of a special category');
like($before_su->{'granted() as of event 4'}, qr/^1 \| user\.contact\.email \| loyalty_program \| false$/m,
	'old: as of the withdrawal: withdrawn');
like($before_su->{'granted() just before event 4'}, qr/^1 \| user\.contact\.email \| loyalty_program \| true$/m,
	'old: just before the withdrawal: granted');
unlike($before_su->{'columns with statistics'}, qr/\t(name|email|phone|born|ip|loyalty|vip|face|purchases|shipping|query)$/m,
	'old: no planner statistics on tagged columns');
like($before_su->{'columns with statistics'}, qr/^customers\tnote$/m, 'old: statistics on untagged columns');
my $app_personalize = $before_app->{q{up_app, purpose 'personalize': SELECT * FROM shop.customers ORDER BY id}};
like($app_personalize, qr/^2\|B\. R\.\|bob\.rawmark\@example\.org\|/m, 'old: masking reveals what was consented to');
like($app_personalize, qr/^1\|A\. R\.\|al\*\*\*com\|h:[0-9a-f]{16}\|/m, 'old: and masks the rest (hash mask)');
unlike($before_app->{q{up_app, purpose '': SELECT * FROM shop.customers ORDER BY id}},
	qr/rawmark\@|Rawmark|7770|1987-06-05|203\.0\.113\.77|LOYRAW|deadbeef/, 'old: no purpose: nothing raw');
is( $before_app->{q{up_app, purpose 'loyalty_program': SELECT * FROM shop.customers ORDER BY id}} =~ tr/\n//,
	2, 'old: require_consent hides the rows of subjects without a loyalty_program grant (2 rows + SHOW)');
like($before_app->{'up_analyst, the role setting: SELECT * FROM shop.events ORDER BY id, at'},
	qr/^analytics\n/, 'old: the role setting gives up_analyst its purpose');
like($before_disclosures, qr/^upg\tup_app\tpersonalize\tshop\.customers\temail\tuser\.contact\.email\t[1-9]/m,
	'old: disclosure counters after the reads');

# --- pg_upgrade ---------------------------------------------------------------

my $new = PostgreSQL::Test::Cluster->new('new18', install_path => $inst{new}{install_path});
$new->init(extra => [ '--encoding=UTF8', '--locale=C', '--data-checksums' ]);
$new->append_conf('postgresql.conf', $conf);

# A PostgreSQL incompatibility that has nothing to do with pg_consent:
# Debian's PostgreSQL 15.20 stores an attribute option pg_attver=<n> on every
# column it creates.  Its own pg_dump leaves the option out, but pg_upgrade
# dumps the old schema with the new pg_dump, which writes
# ALTER COLUMN ... SET (pg_attver=<n>), and a server that does not know the
# option (18.6) refuses it: pg_upgrade fails on any table, with or without
# pg_consent.  When the old cluster has such options and the new server
# refuses them, they are removed from the old catalog just before the
# upgrade (the old cluster is not started again).
my $attver = q{SELECT count(*) FROM pg_catalog.pg_attribute
               WHERE attrelid >= 16384 AND array_to_string(attoptions, ',') ~ '(^|,)pg_attver='};
my $old_attver = $old->safe_psql('upg', $attver);
$new->start;
my ($probe_rc, $probe_out, $probe_err) = $new->psql('postgres',
	'CREATE TEMP TABLE attver_probe (a int); ALTER TABLE attver_probe ALTER COLUMN a SET (pg_attver = 1)');
$new->stop;
if ($old_attver > 0 && $probe_rc != 0)
{
	diag("the old server ($inst{old}{version}) stores the attribute option pg_attver on $old_attver columns of "
		  . "database upg, which the new server refuses ($probe_err); removing it from the old catalog before "
		  . 'pg_upgrade (a PostgreSQL incompatibility, not pg_consent\'s)');
	for my $db (split /\n/, $old->safe_psql('postgres', 'SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1'))
	{
		$old->safe_psql(
			$db, q{
            UPDATE pg_catalog.pg_attribute
            SET attoptions = nullif(ARRAY(SELECT o FROM unnest(attoptions) o WHERE o !~ '^pg_attver='), '{}')
            WHERE attrelid >= 16384 AND array_to_string(attoptions, ',') ~ '(^|,)pg_attver='});
		is($old->safe_psql($db, $attver), '0', "old cluster, database $db: no pg_attver option left");
	}
}

$old->stop;
# pg_upgrade writes its scripts into the working directory: a directory of
# its own (the data directories are relative with the TAP modules of 15)
my $workdir = PostgreSQL::Test::Utils::tempdir;
my @upgrade = (
	"$inst{new}{bindir}/pg_upgrade", '--no-sync',
	'--old-bindir', $inst{old}{bindir}, '--new-bindir', $inst{new}{bindir},
	'--old-datadir', abs_path($old->data_dir), '--new-datadir', abs_path($new->data_dir),
	'--old-port', $old->port, '--new-port', $new->port,
	'--socketdir', $new->host, '--copy');

sub run_pg_upgrade
{
	my (@options) = @_;
	my $cwd = getcwd();
	chdir $workdir or die "chdir $workdir: $!";
	my @result = run_cmd([ @upgrade, @options ]);
	chdir $cwd or die "chdir $cwd: $!";
	return @result;
}

sub upgrade_logs
{
	my $dir = $new->data_dir . '/pg_upgrade_output.d';
	return '' unless -d $dir;
	my $text = '';
	for my $log (sort glob("$dir/*/log/*.log $dir/*/*.txt $dir/*.txt"))
	{
		my @lines = split /\n/, slurp_file($log);
		splice(@lines, 0, @lines - 40) if @lines > 40;
		$text .= "=== $log (the last 40 lines) ===\n" . join("\n", @lines) . "\n";
	}
	return $text;
}

my ($rc, $out, $err) = run_pg_upgrade('--check');
is($rc, 0, 'pg_upgrade --check succeeds') or diag("$out\n$err\n" . upgrade_logs());
like($out, qr/Clusters are compatible/, 'pg_upgrade --check: clusters are compatible');
($rc, $out, $err) = run_pg_upgrade();
is($rc, 0, 'pg_upgrade succeeds') or diag("$out\n$err\n" . upgrade_logs());
if ($rc != 0)
{
	diag('pg_upgrade failed: nothing to compare');
	done_testing();
	exit;
}
like($out, qr/Upgrade Complete/, 'pg_upgrade: upgrade complete');

$new->start;
like($new->safe_psql('postgres', 'SELECT version()'), qr/^PostgreSQL $inst{new}{major}\./,
	"the upgraded cluster runs PostgreSQL $inst{new}{major}");

# shared memory is not carried: no counter before any read
is($new->safe_psql('upg', 'SELECT count(*) FROM consent.disclosures'), '0',
	'consent.disclosures is empty after the upgrade (shared memory is not carried)');
is($new->safe_psql('upg', 'SELECT entries FROM consent.disclosures_info'), '0',
	'consent.disclosures_info: no entries after the upgrade');

for my $db ('upg', 'upg_other')
{
	$new->safe_psql($db, 'ALTER EXTENSION pg_consent UPDATE');
	is($new->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'pg_consent'}),
		$inst{new}{default_version}, "$db: the extension is at version $inst{new}{default_version} after ALTER EXTENSION UPDATE");
}
is($new->safe_psql('upg', 'SELECT consent.version()'), $inst{new}{default_version}, 'the new library is loaded');

# --- the comparison -------------------------------------------------------------

my $after_app = app_view($new);
my $after_su = superuser_view($new);
my $after_disclosures = $new->safe_psql('upg', $disclosures);

for my $what (sort keys %$before_su)
{
	is($after_su->{$what}, $before_su->{$what}, "after pg_upgrade, byte for byte: $what");
}
for my $what (sort keys %$before_app)
{
	is($after_app->{$what}, $before_app->{$what}, 'after pg_upgrade, masked as before: ' . ($what =~ s/\s+/ /gr));
}
is($after_disclosures, $before_disclosures,
	'consent.disclosures: the same reads count the same cells again, under the same OIDs');

# the fail-closed and require_consent policies are there (also compared above)
is( $new->safe_psql(
		'upg', q{
        SELECT string_agg(c.oid::regclass::text, ' ' ORDER BY c.oid::regclass::text)
        FROM pg_class c
        WHERE c.relnamespace = 'shop'::regnamespace AND c.relkind IN ('r', 'p')
          AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'consent_library_active'
                      AND NOT p.polpermissive
                      AND pg_get_expr(p.polqual, p.polrelid) LIKE '%consent.library_active()%')}),
	'shop.accounts shop.customers shop.events shop.events_2024 shop.events_2025 shop.orders',
	'the fail-closed policy is on every protected table and partition');
is($new->safe_psql('upg', q{SELECT count(*) FROM pg_policy WHERE polname = 'consent_require loyalty_program'}),
	'1', 'the require_consent policy is there');
is($new->safe_psql('upg', q{SELECT provolatile FROM pg_proc WHERE oid = 'consent.library_active()'::regprocedure}),
	'i', 'consent.library_active() is still IMMUTABLE');
is( $new->safe_psql(
		'upg', q{
        SELECT count(*) FROM pg_stats s JOIN consent.coverage cv
          ON cv.relation = format('%I.%I', s.schemaname, s.tablename)::regclass AND cv.column_name = s.attname}),
	'0', 'no planner statistics on tagged columns after the upgrade');

# --- consent recorded after the upgrade -------------------------------------------

my $new_id = $new->safe_psql('upg', q{SELECT consent.grant(5, 'user.contact.email', 'personalize')},
	extra_params => [ '-U', 'up_recorder' ]);
cmp_ok($new_id, '>', $max_event, "a grant after the upgrade gets a higher id ($new_id > $max_event)");
is( $new->safe_psql('upg', q{SELECT event_id || ' ' || action FROM consent.subject_state WHERE subject = '5'}),
	"$new_id grant", 'and its derived state');

# A withdrawal masks at once, also in a session that was already running.
my %bg = (in => '', out => '', err => '');
$bg{timer} = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
$bg{h} = IPC::Run::start(
	[ $new->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $new->connstr('upg'), '-U', 'up_app' ],
	'<', \$bg{in}, '>', \$bg{out}, '2>', \$bg{err}, $bg{timer});

sub bg_query
{
	my ($sql) = @_;
	$bg{out} = '';
	$bg{in} .= "$sql\n\\echo __done__\n";
	$bg{h}->pump until $bg{out} =~ /__done__\n/ || $bg{timer}->is_expired;
	die "background psql: timed out: $bg{err}" if $bg{timer}->is_expired;
	return $bg{out} =~ s/__done__\n//r =~ s/\n$//r;
}
my $read_bob = 'SELECT email FROM shop.customers WHERE id = 2;';
bg_query(q{SET consent.purpose = 'personalize';});
is(bg_query($read_bob), 'bob.rawmark@example.org', 'a running session reads a consented value');
my $withdrawal = $new->safe_psql('upg', q{SELECT consent.withdraw(2, 'user.contact.email', 'personalize')},
	extra_params => [ '-U', 'up_recorder' ]);
cmp_ok($withdrawal, '>', $new_id, 'the withdrawal gets the next id');
is(bg_query($read_bob), 'bo***org', 'the withdrawal after the upgrade masks at once in the running session');
is( $new->safe_psql('upg', "SET consent.purpose = 'personalize'; $read_bob", extra_params => [ '-U', 'up_app' ]),
	'bo***org', 'and in a new session');
$bg{in} .= "\\q\n";
$bg{h}->finish;

$new->stop;
done_testing();
