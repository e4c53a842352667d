
# Copyright: pg_consent contributors
#
# pg_dump / pg_restore (SPEC.md sections 2, 5 and 9):
#  - a superuser's dump in plain format, custom format (-Fc) and plain with
#    --inserts restores, into a fresh database of the same cluster (roles
#    are cluster-wide), every protected table and the whole consent catalog
#    byte for byte (COPY ... TO STDOUT as superuser before and after):
#    categories, user-defined ones included, with their domains; purposes,
#    user-defined ones included; purpose_roles; protected_tables;
#    column_masks; the ledger; subject_state; the ledger's id sequence
#    continues (a new grant gets a higher id); the row-level security
#    policies come back; and masking then works exactly as before: the same
#    output for an application role under each purpose;
#  - the consent catalog in a dump names roles and relations by name, never
#    by a bare OID (an OID means another object, or none, after a restore);
#  - by a masked role (not superuser, no BYPASSRLS), pg_dump either fails
#    (default: row_security = off, and protected tables have policies) or,
#    with --enable-row-security, writes an anonymized dump: masked values
#    only (or what the role's purpose reveals), in plain, --inserts and
#    custom format; never a raw value, not even in a dump that failed
#    halfway;
#  - a database with a generated column, expression indexes and a partition
#    key built on inlinable SQL functions restores whole (SQL functions
#    inline as in PostgreSQL without the extension).
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_consent'
consent.pseudonym_key = 'dump-test-key'
});
$node->start;
my $tmp = PostgreSQL::Test::Utils::tempdir;

# Runs a client program against the node; returns (exit code, stdout, stderr).
sub run_client
{
	my ($cmd, %env) = @_;
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGOPTIONS} = $env{PGOPTIONS} if defined $env{PGOPTIONS};
	my ($out, $err) = ('', '');
	IPC::Run::run($cmd, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
    CREATE EXTENSION pg_consent;
    CREATE ROLE dr_app LOGIN;
    CREATE ROLE dr_recorder LOGIN;
    CREATE SCHEMA shop;
    -- user-defined categories (a domain in consent and one in shop, a special
    -- one) and purposes (one with another legal basis)
    SELECT consent.define_category('user.contact.loyalty', 'text', 'loyalty', 'partial(1,1)', false, 'Loyalty card');
    SELECT consent.define_category('user.behavior.vip', 'text', 'shop.vip_note', 'redact', false, 'VIP note');
    SELECT consent.define_category('user.biometric.face', 'bytea', 'face', 'hash', true, 'Face template');
    SELECT consent.define_purpose('loyalty_program', 'consent', '{}', 'Loyalty program');
    SELECT consent.define_purpose('loyalty_program.newsletter');
    SELECT consent.define_purpose('fraud', 'legitimate_interest', '{user.contact.email,user.device}', 'Fraud prevention');

    CREATE TABLE shop.customers (
        id bigint PRIMARY KEY, name consent.name, email consent.email, phone consent.phone,
        born consent.birthdate, ip consent.ip_address, loyalty consent.loyalty, vip shop.vip_note,
        face consent.face, purchases consent.purchase_history, note text);
    INSERT INTO shop.customers VALUES
        (1, 'Alice Rawmark', 'alice.rawmark@example.com', '+49 30 7770001', '1987-06-05', '203.0.113.77',
         'LOYRAW-0001', 'VIP rawmark note one', '\xdeadbeef01', '{"item": "rawmark-book"}', 'plain note 1'),
        (2, 'Bob Rawmark', 'bob.rawmark@example.org', '+49 30 7770002', '1990-02-03', '198.51.100.78',
         'LOYRAW-0002', 'VIP rawmark note two', '\xdeadbeef02', '{"item": "rawmark-lamp"}', 'plain note 2'),
        (3, 'Zoë Ødegård-Rawmark', 'zoe.rawmark@example.no', '+47 22 7770003', '2001-12-31', '2001:db8:77::1',
         'LOYRAW-0003', 'VIP rawmark note three', '\xdeadbeef03', '[{"item": "rawmark-skis"}]', 'plain note 3'),
        (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'only nulls');
    CREATE TABLE shop.orders (order_id uuid PRIMARY KEY, customer uuid, shipping consent.address, amount numeric);
    INSERT INTO shop.orders VALUES
        ('a0000000-0000-0000-0000-000000000001', '11111111-1111-1111-1111-111111111111', 'Rawmark Street 1, Berlin', 10.5),
        ('a0000000-0000-0000-0000-000000000002', '22222222-2222-2222-2222-222222222222', 'Rawmark Road 2, Oslo', 20);
    CREATE TABLE shop.accounts (handle text PRIMARY KEY, email consent.email);
    INSERT INTO shop.accounts VALUES (E'o''hara "quoted"\nhandle', 'ohara.rawmark@example.com'),
                                     ('plain-handle', 'plain.rawmark@example.com');
    CREATE TABLE shop.events (id bigint, at date, ip consent.ip_address) PARTITION BY RANGE (at);
    CREATE TABLE shop.events_2024 PARTITION OF shop.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    INSERT INTO shop.events VALUES (1, '2024-05-01', '192.0.2.177'), (2, '2024-06-01', '192.0.2.178');
    CREATE TABLE shop.unprotected (id bigint, email consent.email);
    INSERT INTO shop.unprotected VALUES (1, 'loose.rawmark@example.com');
    SELECT consent.protect('shop.customers', 'id');
    SELECT consent.protect('shop.orders', 'customer');
    SELECT consent.protect('shop.accounts', 'handle');
    SELECT consent.protect('shop.events', 'id');
    SELECT consent.set_mask('shop.customers', 'phone', 'hash');
    SELECT consent.set_mask('shop.customers', 'email', 'partial(2,3)');
    SELECT consent.set_mask('shop.orders', 'shipping', 'partial(0,4)');

    GRANT USAGE ON SCHEMA shop TO dr_app;
    GRANT SELECT ON ALL TABLES IN SCHEMA shop TO dr_app;
    SELECT consent.allow_purpose('dr_app', 'loyalty_program');
    SELECT consent.allow_purpose('dr_app', 'personalize');
    SELECT consent.allow_purpose('dr_app', 'fraud');
    SELECT consent.allow_recording('dr_recorder');

    -- objects PostgreSQL accepts only because SQL functions inline: a
    -- generated column and an expression index over anynonarray || text
    -- (textanycat, a SQL function), a partition key and an index on
    -- inlinable SQL functions of the user
    CREATE SCHEMA sqlfn;
    CREATE FUNCTION sqlfn.bucket(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 / 10';
    CREATE TABLE sqlfn.gen (a int, b text GENERATED ALWAYS AS (a || ' sec') STORED);
    CREATE INDEX gen_expr ON sqlfn.gen ((a || 'x'));
    CREATE INDEX gen_bucket ON sqlfn.gen (sqlfn.bucket(a));
    INSERT INTO sqlfn.gen (a) VALUES (1), (12), (25);
    CREATE TABLE sqlfn.parts (k int, v text) PARTITION BY RANGE (sqlfn.bucket(k));
    CREATE TABLE sqlfn.parts_0 PARTITION OF sqlfn.parts FOR VALUES FROM (0) TO (1);
    CREATE TABLE sqlfn.parts_1 PARTITION OF sqlfn.parts FOR VALUES FROM (1) TO (3);
    INSERT INTO sqlfn.parts VALUES (5, 'low'), (15, 'mid'), (25, 'high');
});
# consent events, recorded by the recorder: grants (with source, evidence,
# expiry), withdrawals, special categories, uuid and text subjects
$node->safe_psql(
	'src', q{
    SELECT consent.grant(1, 'user', 'loyalty_program', source => 'web', evidence => '{"form": "v1"}');
    SELECT consent.grant(2, 'user.contact', 'personalize', valid_until => now() + interval '10 years');
    SELECT consent.grant(2, 'user.contact.loyalty', 'loyalty_program.newsletter');
    SELECT consent.withdraw(1, 'user.contact.email', 'loyalty_program');
    SELECT consent.grant(3, 'user.biometric.face', 'personalize');
    SELECT consent.grant(3, 'user.name', 'personalize');
    SELECT consent.grant('11111111-1111-1111-1111-111111111111'::uuid, 'user.contact.address', 'personalize');
    SELECT consent.grant(E'o''hara "quoted"\nhandle', 'user.contact.email', 'personalize');
    SELECT consent.grant(1, 'user.device', 'personalize');
    SELECT consent.withdraw(2, 'user.contact.phone_number', 'personalize');
}, extra_params => [ '-U', 'dr_recorder' ]);

# Dangling references: a role allowed a purpose and a protected table with a
# column mask, both dropped afterwards.
$node->safe_psql(
	'src', q{
    CREATE ROLE dr_gone;
    SELECT consent.allow_purpose('dr_gone', 'marketing');
    DROP ROLE dr_gone;
    CREATE TABLE shop.gone (id bigint, email consent.email);
    SELECT consent.protect('shop.gone', 'id');
    SELECT consent.set_mask('shop.gone', 'email', 'redact');
    DROP TABLE shop.gone;
});

# --- what is compared ---------------------------------------------------------

my @protected = (
	[ 'shop.customers',   'id' ],
	[ 'shop.orders',      'order_id' ],
	[ 'shop.accounts',    'handle' ],
	[ 'shop.events',      'id' ],
	[ 'shop.unprotected', 'id' ],
	[ 'sqlfn.gen',        'a' ],
	[ 'sqlfn.parts',      'k' ],);

# Everything a superuser reads back, as COPY text, by name.
sub superuser_copy
{
	my ($db) = @_;
	my %out;
	for my $t (@protected)
	{
		my ($table, $order) = @$t;
		$out{$table} = $node->safe_psql($db, "COPY (SELECT * FROM $table ORDER BY $order) TO STDOUT");
	}
	%out = (%out, consent_catalog_copy($node, $db));
	$out{'domains of the categories'} = $node->safe_psql(
		$db, q{
        COPY (SELECT c.key, t.typnamespace::regnamespace, t.typname, format_type(t.typbasetype, t.typtypmod),
                     obj_description(t.oid, 'pg_type')
              FROM consent.categories c JOIN pg_type t ON t.oid = c.type ORDER BY c.key) TO STDOUT});
	$out{'policies'} = $node->safe_psql(
		$db, q{
        COPY (SELECT c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity, p.polname, p.polpermissive,
                     pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
              FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid
              WHERE c.relnamespace = 'shop'::regnamespace ORDER BY 1, 4) TO STDOUT});
	$out{'objects built on inlinable SQL functions'} = $node->safe_psql(
		$db, q{
        COPY (SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
              WHERE indrelid = 'sqlfn.gen'::regclass
              UNION ALL SELECT 'partition key', pg_get_partkeydef('sqlfn.parts'::regclass)
              UNION ALL SELECT 'generated', pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'sqlfn.gen'::regclass
              UNION ALL SELECT tableoid::regclass::text, k::text FROM sqlfn.parts
              ORDER BY 1, 2) TO STDOUT});
	$out{'ledger sequence'} =
	  $node->safe_psql($db, 'SELECT last_value, is_called FROM consent.ledger_id_seq');
	return \%out;
}

# What the application role sees, under no purpose and under each of its
# purposes, through SELECT and COPY.
my @app_queries = (
	'SELECT * FROM shop.customers ORDER BY id',
	'SELECT * FROM shop.orders ORDER BY order_id',
	'SELECT * FROM shop.accounts ORDER BY handle',
	'SELECT * FROM shop.events ORDER BY id',
	'SELECT * FROM shop.unprotected ORDER BY id',
	'COPY shop.customers TO STDOUT',
	q{SELECT consent.granted(1, 'user.contact.email'), consent.granted(2, 'user.contact.email'),
             consent.granted('11111111-1111-1111-1111-111111111111'::uuid, 'user.contact.address')});
my @purposes = ('', 'loyalty_program', 'loyalty_program.newsletter', 'personalize', 'fraud');

sub app_view
{
	my ($db) = @_;
	my %out;
	for my $purpose (@purposes)
	{
		for my $q (@app_queries)
		{
			$out{"purpose '$purpose': $q"} = $node->safe_psql(
				$db, "SET consent.purpose = '$purpose';\n$q",
				extra_params => [ '-U', 'dr_app' ]);
		}
	}
	return \%out;
}

my $src_data = superuser_copy('src');
my $src_view = app_view('src');
my $src_max_event = $node->safe_psql('src', 'SELECT max(id) FROM consent.ledger');

# the comparison is worth something: the source holds what it should
like($src_data->{'shop.customers'}, qr/alice\.rawmark\@example\.com/, 'the superuser reads raw values');
is( $node->safe_psql('src', q{SELECT count(*) FROM consent.categories WHERE NOT shipped}),
	'3', 'three user-defined categories');
is($node->safe_psql('src', q{SELECT count(*) FROM consent.purposes WHERE NOT shipped}),
	'3', 'three user-defined purposes');
is($node->safe_psql('src', 'SELECT count(*) FROM consent.ledger'), '10', 'ten consent events');
is( $src_data->{'objects built on inlinable SQL functions'},
	join("\n",
		"generated\t(a || ' sec'::text)",
		"partition key\tRANGE (sqlfn.bucket(k))",
		"sqlfn.gen_bucket\tCREATE INDEX gen_bucket ON sqlfn.gen USING btree (sqlfn.bucket(a))",
		"sqlfn.gen_expr\tCREATE INDEX gen_expr ON sqlfn.gen USING btree (((a || 'x'::text)))",
		"sqlfn.parts_0\t5", "sqlfn.parts_1\t15", "sqlfn.parts_1\t25"),
	'the source holds a generated column, expression indexes and a partition key on inlinable SQL functions');
like($src_data->{'sqlfn.gen'}, qr/^25\t25 sec$/m, 'the generated column is computed');
like($src_data->{'domains of the categories'}, qr/user\.behavior\.vip\tshop\tvip_note\ttext\tconsent-tagged: user\.behavior\.vip/,
	'a category type in another schema');
like($src_view->{q{purpose 'personalize': SELECT * FROM shop.customers ORDER BY id}},
	qr/^2\|B\. R\.\|bob\.rawmark\@example\.org\|/m, 'masking works in the source (2 consented to contact data)');
unlike($src_view->{q{purpose '': SELECT * FROM shop.customers ORDER BY id}},
	qr/rawmark\@|Rawmark|7770|1987-06-05|203\.0\.113\.77|LOYRAW|deadbeef/, 'no purpose: nothing raw');
like($src_view->{q{purpose '': SELECT * FROM shop.customers ORDER BY id}},
	qr/^1\|A\. R\.\|al\*\*\*com\|h:[0-9a-f]{16}\|1987-01-01\|203\.0\.113\.0\/24\|L\*\*\*1\|\[redacted\]\|\\x[0-9a-f]{64}\|\|plain note 1$/m,
	'no purpose: every column masked with its mask');

# --- superuser dumps and restores ---------------------------------------------

my %dumps = (
	plain => {
		dump    => [ 'pg_dump', '-d', 'src', '-f', "$tmp/plain.sql" ],
		restore => [ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dst_plain', '-f', "$tmp/plain.sql" ],
		file    => "$tmp/plain.sql",
		db      => 'dst_plain',
	},
	custom => {
		dump    => [ 'pg_dump', '-Fc', '-d', 'src', '-f', "$tmp/custom.dump" ],
		restore => [ 'pg_restore', '--exit-on-error', '-d', 'dst_custom', "$tmp/custom.dump" ],
		file    => "$tmp/custom.dump",
		db      => 'dst_custom',
	},
	inserts => {
		dump    => [ 'pg_dump', '--inserts', '-d', 'src', '-f', "$tmp/inserts.sql" ],
		restore => [ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dst_inserts', '-f', "$tmp/inserts.sql" ],
		file    => "$tmp/inserts.sql",
		db      => 'dst_inserts',
	},);

for my $format (sort keys %dumps)
{
	my $d = $dumps{$format};
	my ($rc, $out, $err) = run_client($d->{dump});
	is($rc, 0, "$format: pg_dump by the superuser succeeds") or diag($err);
	$node->safe_psql('postgres', "CREATE DATABASE $d->{db}");
	($rc, $out, $err) = run_client($d->{restore});
	is($rc, 0, "$format: the restore succeeds") or diag($err);
	is($err, '', "$format: the restore reports nothing") or diag($err);

	my $dst_data = superuser_copy($d->{db});
	for my $what (sort keys %$src_data)
	{
		is($dst_data->{$what}, $src_data->{$what}, "$format: $what restored byte for byte");
	}
	my $dst_view = app_view($d->{db});
	for my $what (sort keys %$src_view)
	{
		is($dst_view->{$what}, $src_view->{$what}, "$format: masked as before: $what");
	}
	# the ledger continues: a new event gets a higher id than every old one
	my $new_id = $node->safe_psql($d->{db},
		q{SELECT consent.grant(5, 'user.contact.email', 'personalize')}, extra_params => [ '-U', 'dr_recorder' ]);
	cmp_ok($new_id, '>', $src_max_event, "$format: a new grant after the restore gets a higher id");
	is( $node->safe_psql(
			$d->{db}, q{
        SET consent.purpose = 'personalize';
        SELECT count(*) FROM consent.subject_state WHERE subject = '5'}),
		'1',
		"$format: and its derived state");
}

# The consent catalog in the dump names roles and relations, never bare OIDs
# (a dropped role or table leaves its rows; an OID in a dump designates
# whatever object has it after the restore, or none).
my $plain = slurp_file("$tmp/plain.sql");
for my $table ('purpose_roles', 'protected_tables', 'column_masks')
{
	my ($block) = $plain =~ /^COPY consent\.\Q$table\E [^\n]*FROM stdin;\n(.*?)^\\\.$/ms;
	ok(defined $block, "plain dump: the data of consent.$table is in the dump");
	my @bare = grep { /^\d+\t/ } split /\n/, ($block // '');
	is_deeply(\@bare, [], "plain dump: consent.$table names no role or relation by a bare OID")
	  or diag("rows with bare OIDs:\n" . join("\n", @bare));
}

# --- catalog changes that a dump must keep too --------------------------------------
# Shipped categories and purposes come from CREATE EXTENSION, not from the
# dump: changing them is refused (a restore would silently revert the
# change, e.g. re-widen what the contract purpose 'essential' reveals).
# A user-defined parent category and purpose changed after their children
# were defined (their rows then come after the children's in the table, and
# in an --inserts dump) must restore.
$node->safe_psql('postgres', 'CREATE DATABASE src_edge');
$node->safe_psql('src_edge', 'CREATE EXTENSION pg_consent');
for my $change (q{UPDATE consent.purposes SET necessary = '{user.name}' WHERE key IN ('essential', 'essential.service')},
	q{UPDATE consent.categories SET default_mask = 'redact' WHERE key = 'user.name'},
	q{DELETE FROM consent.purposes WHERE key = 'analytics'})
{
	my ($rc, $out, $err) = $node->psql('src_edge', $change);
	isnt($rc, 0, "shipped catalog rows cannot be changed: $change");
	like($err, qr/is shipped with pg_consent and cannot be changed/, "... with a clear error: $change");
}
$node->safe_psql(
	'src_edge', q{
    SELECT consent.define_category('user.edge', 'text', 'edge');
    SELECT consent.define_category('user.edge.child', 'text', 'edge_child');
    UPDATE consent.categories SET label = 'relabelled after its child' WHERE key = 'user.edge';
    SELECT consent.define_purpose('edge_purpose');
    SELECT consent.define_purpose('edge_purpose.child');
    UPDATE consent.purposes SET label = 'relabelled after its child' WHERE key = 'edge_purpose';
});
my $edge_catalog = q{
    COPY (SELECT * FROM consent.categories ORDER BY key) TO STDOUT;
    COPY (SELECT * FROM consent.purposes ORDER BY key) TO STDOUT};
my $edge_before = $node->safe_psql('src_edge', $edge_catalog);
for my $format ('plain', 'inserts')
{
	my $db = "edge_$format";
	my ($rc, $out, $err) =
	  run_client([ 'pg_dump', ($format eq 'inserts' ? ('--inserts') : ()), '-d', 'src_edge', '-f', "$tmp/$db.sql" ]);
	is($rc, 0, "changed catalog rows, $format: pg_dump succeeds") or diag($err);
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	($rc, $out, $err) = run_client([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $db, '-f', "$tmp/$db.sql" ]);
	is($rc, 0, "changed catalog rows, $format: the restore succeeds") or diag($err);
	is($node->safe_psql($db, $edge_catalog), $edge_before,
		"changed catalog rows, $format: user-defined rows restored as they were");
}

# --- dumps by the masked application role ----------------------------------------

my $raw = qr/rawmark\@|Rawmark|Ødegård|7770|1987-06-05|1990-02-03|2001-12-31|203\.0\.113\.77|198\.51\.100\.78|
	2001:db8:77::1|192\.0\.2\.17[78]|LOYRAW|deadbeef|VIP\ rawmark|rawmark-/x;

# default: row_security = off, and the protected tables have policies: fails
my ($rc, $out, $err) = run_client([ 'pg_dump', '-U', 'dr_app', '-n', 'shop', '-d', 'src', '-f', "$tmp/app_default.sql" ]);
isnt($rc, 0, 'masked role, default pg_dump: fails');
like($err, qr/row-level security|row security/, 'masked role, default pg_dump: because of row-level security')
  or diag($err);
my $partial = -e "$tmp/app_default.sql" ? slurp_file("$tmp/app_default.sql") : '';
unlike($partial, $raw, 'masked role, default pg_dump: no raw value in what it wrote before failing');

# the whole database: the consent catalog is not readable either
($rc, $out, $err) = run_client([ 'pg_dump', '-U', 'dr_app', '--enable-row-security', '-d', 'src', '-f', "$tmp/app_all.sql" ]);
isnt($rc, 0, 'masked role, whole database: fails') or diag($out);
like($err, qr/permission denied/, 'masked role, whole database: permission denied') or diag($err);
$partial = -e "$tmp/app_all.sql" ? slurp_file("$tmp/app_all.sql") : '';
unlike($partial, $raw, 'masked role, whole database: no raw value in what it wrote before failing');

# --enable-row-security: an anonymized dump, in every format
my %app_dumps = (
	plain   => [ '-f', "$tmp/app_rls.sql" ],
	inserts => [ '--inserts', '-f', "$tmp/app_rls_inserts.sql" ],
	custom  => [ '-Fc', '-f', "$tmp/app_rls.dump" ],);
for my $format (sort keys %app_dumps)
{
	($rc, $out, $err) =
	  run_client([ 'pg_dump', '-U', 'dr_app', '--enable-row-security', '-n', 'shop', '-d', 'src', @{ $app_dumps{$format} } ]);
	is($rc, 0, "masked role, --enable-row-security, $format: succeeds") or diag($err);
	my $file = $app_dumps{$format}[-1];
	my $text = slurp_file($file);
	if ($format eq 'custom')
	{
		unlike($text, $raw, "masked role, $format: no raw value in the archive file");
		($rc, $text, $err) = run_client([ 'pg_restore', '-f', '-', $file ]);
		is($rc, 0, "masked role, $format: pg_restore reads it") or diag($err);
	}
	unlike($text, $raw, "masked role, --enable-row-security, $format: no raw value");
	like($text, qr/al\*\*\*com/, "masked role, $format: the masked e-mail address is there");
	like($text, qr/\[redacted\]/, "masked role, $format: the redacted VIP note is there");
	like($text, qr/h:[0-9a-f]{16}/, "masked role, $format: the pseudonymized phone is there");
}

# with a purpose (from the connection options): what the purpose reveals, and
# nothing else
($rc, $out, $err) = run_client(
	[ 'pg_dump', '-U', 'dr_app', '--enable-row-security', '-n', 'shop', '-d', 'src', '-f', "$tmp/app_personalize.sql" ],
	PGOPTIONS => '-c consent.purpose=personalize');
is($rc, 0, 'masked role under personalize: pg_dump succeeds') or diag($err);
my $personalize = slurp_file("$tmp/app_personalize.sql");
like($personalize, qr/bob\.rawmark\@example\.org/, 'under personalize: the e-mail subject 2 consented to');
like($personalize, qr/Rawmark Street 1, Berlin/, 'under personalize: the address the uuid subject consented to');
like($personalize, qr/LOYRAW-0002/, 'under personalize: the loyalty card of subject 2 (a child of user.contact)');
like($personalize, qr/203\.0\.113\.77/, 'under personalize: the IP address subject 1 consented to');
like($personalize, qr/\\xdeadbeef03/, 'under personalize: the face template subject 3 consented to explicitly');
unlike($personalize, qr/alice\.rawmark|zoe\.rawmark|\+4[79] \d\d 777000|1987-06-05|LOYRAW-000[13]|Rawmark Road|
	\\xdeadbeef0[12]|VIP\ rawmark|rawmark-/x,
	'under personalize: nothing that was not consented to (withdrawn phone, other subjects, special categories)');

# a purpose the role was not allowed, from the connection options: no purpose
($rc, $out, $err) = run_client(
	[ 'pg_dump', '-U', 'dr_app', '--enable-row-security', '-n', 'shop', '-d', 'src', '-f', "$tmp/app_marketing.sql" ],
	PGOPTIONS => '-c consent.purpose=marketing');
is($rc, 0, 'masked role under a purpose it was not allowed: pg_dump succeeds') or diag($err);
unlike(slurp_file("$tmp/app_marketing.sql"), $raw, 'under a purpose it was not allowed: no raw value');

$node->stop;
done_testing();
