
# Copyright: pg_consent contributors
#
# Upgrades lose nothing: install the first release (1.0, frozen in
# src/versions/), add categories, purposes, a protected table and consent,
# run ALTER EXTENSION pg_consent UPDATE through every one-hop script, and
# check that the data, the ledger and the masked output are unchanged and
# that the upgraded extension has exactly the objects of a fresh install.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

my $node = consent_node('upgrade');

my $versions = $node->safe_psql('postgres',
	q{SELECT string_agg(version, ' ' ORDER BY string_to_array(version, '.')::int[]) FROM pg_available_extension_versions WHERE name = 'pg_consent'});
my $default = $node->safe_psql('postgres', q{SELECT default_version FROM pg_available_extensions WHERE name = 'pg_consent'});
like($versions, qr/^1\.0\b/, "the first release is installable ($versions)");
isnt($default, '1.0', "the current version ($default) is newer than the first release");

$node->safe_psql('postgres', 'CREATE DATABASE old_db');
$node->safe_psql('postgres', 'CREATE DATABASE fresh_db');
$node->safe_psql('old_db', q{CREATE EXTENSION pg_consent VERSION '1.0'});
is($node->safe_psql('old_db', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_consent'}), '1.0', 'installed 1.0');

$node->safe_psql(
	'old_db', q{
    CREATE ROLE upg_app LOGIN;
    SELECT consent.define_category('user.contact.messenger', 'text', 'messenger', 'partial(1,1)');
    SELECT consent.define_purpose('newsletter', 'consent', '{}', 'Newsletter');
    CREATE TABLE customers (id bigint PRIMARY KEY, email consent.email, handle consent.messenger, born consent.birthdate);
    INSERT INTO customers VALUES (1, 'alice@example.com', '@alice', '1980-02-03'),
                                 (2, 'bob@example.org', '@bobby', '1991-04-05');
    SELECT consent.protect('customers', 'id');
    SELECT consent.set_mask('customers', 'born', 'month');
    GRANT SELECT ON customers TO upg_app;
    SELECT consent.allow_purpose('upg_app', 'newsletter');
    SELECT consent.grant(1, 'user.contact', 'newsletter');
    SELECT consent.grant(2, 'user.contact.messenger', 'newsletter');
    SELECT consent.withdraw(2, 'user.contact.messenger', 'newsletter');
});

my $read = "SET consent.purpose = 'newsletter'; SELECT id, email, handle, born FROM customers ORDER BY id";
my $catalog = q{
    SELECT string_agg(x, E'\n' ORDER BY x) FROM (
        SELECT 'category ' || key || ' ' || coalesce(type::text, '-') || ' ' || default_mask FROM consent.categories
        UNION ALL SELECT 'purpose ' || key || ' ' || basis FROM consent.purposes
        UNION ALL SELECT 'role ' || role::text || ' ' || purpose FROM consent.purpose_roles
        UNION ALL SELECT 'protected ' || relation::text || ' ' || subject_column FROM consent.protected_tables
        UNION ALL SELECT 'mask ' || relation::text || '.' || column_name || ' ' || mask FROM consent.column_masks
        UNION ALL SELECT 'event ' || id || ' ' || subject || ' ' || category || ' ' || purpose || ' ' || action
                         || ' ' || recorded_at || ' ' || recorded_by FROM consent.ledger
        UNION ALL SELECT 'state ' || subject || ' ' || category || ' ' || purpose || ' ' || event_id || ' ' || action
                  FROM consent.subject_state) s(x)};
my $before_read = $node->safe_psql('old_db', $read, extra_params => [ '-U', 'upg_app' ]);
my $before_catalog = $node->safe_psql('old_db', $catalog);
my $before_raw = $node->safe_psql('old_db', 'SELECT * FROM customers ORDER BY id');
like($before_read, qr/^1\|alice\@example\.com\|\@alice\|/, 'before: subject 1 revealed under newsletter');
like($before_read, qr/\n2\|b\*\*\*\@example\.org\|\@\*\*\*y\|1991-04-01$/, 'before: subject 2 masked');

$node->safe_psql('old_db', 'ALTER EXTENSION pg_consent UPDATE');
is($node->safe_psql('old_db', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_consent'}),
	$default, "updated to $default");

is($node->safe_psql('old_db', $catalog), $before_catalog, 'catalog and ledger unchanged by the update');
is($node->safe_psql('old_db', 'SELECT * FROM customers ORDER BY id'), $before_raw, 'table data unchanged');
is($node->safe_psql('old_db', $read, extra_params => [ '-U', 'upg_app' ]), $before_read, 'masked output unchanged');

# Consent recorded after the update works as before.
$node->safe_psql('old_db', q{SELECT consent.grant(2, 'user.contact', 'newsletter')});
like($node->safe_psql('old_db', $read, extra_params => [ '-U', 'upg_app' ]),
	qr/\n2\|bob\@example\.org\|\@bobby\|1991-04-01$/, 'a grant after the update reveals');

# The upgraded extension has exactly the objects of a fresh install.
$node->safe_psql('fresh_db', 'CREATE EXTENSION pg_consent');
my $members = q{
    SELECT string_agg(pg_describe_object(classid, objid, objsubid), E'\n' ORDER BY pg_describe_object(classid, objid, objsubid))
    FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid AND d.refclassid = 'pg_extension'::regclass
    WHERE e.extname = 'pg_consent' AND d.deptype = 'e'};
my $fresh_members = $node->safe_psql('fresh_db', $members);
my $old_members = $node->safe_psql('old_db', $members);
# user-defined categories create domains that are not members in either database
is($old_members, $fresh_members, 'same member objects as a fresh install');
my $functions = q{
    SELECT string_agg(p.oid::regprocedure::text || ' ' || md5(pg_get_functiondef(p.oid)), E'\n' ORDER BY p.oid::regprocedure::text)
    FROM pg_proc p WHERE p.pronamespace = 'consent'::regnamespace AND p.prokind IN ('f', 'p')};
is($node->safe_psql('old_db', $functions), $node->safe_psql('fresh_db', $functions),
	'same function definitions as a fresh install');
my $columns = q{
    SELECT string_agg(c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod), E'\n' ORDER BY c.relname, a.attname)
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relnamespace = 'consent'::regnamespace};
is($node->safe_psql('old_db', $columns), $node->safe_psql('fresh_db', $columns), 'same catalog columns as a fresh install');

$node->stop;
done_testing();
