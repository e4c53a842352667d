
# Copyright: pg_consent contributors
#
# Privilege escalation by an ordinary role that logs in itself (issue 8; the
# attempts through SET ROLE are in sql/81_privileges.sql).  A fresh login
# matters where the session user counts (SET ROLE, SET SESSION
# AUTHORIZATION) and for settings that arrive with the connection or from
# the role's defaults (ALTER ROLE ... SET, PGOPTIONS), which are not checked
# when they are set:
#  - no way into consent_auditor or the superuser;
#  - a purpose the role was not allowed, from ALTER ROLE ... SET or from the
#    connection options, counts as no purpose: masked;
#  - consent.as_of from there: refused at use, never replayed;
#  - consent.pseudonym_key from the connection: the connection is refused;
#    SHOW, current_setting() and pg_settings do not give it away;
#  - consent._mask and consent._mask_strict, called directly with a value
#    or a subject of another type than the column's, and
#    consent._require_check() (the row policy of require_consent) with a
#    subject of another type than text, bigint or uuid: an error, never a
#    crash of the server and never bytes read from memory the value does
#    not own;
#  - a search_path set as the role's default does not reach our SECURITY
#    DEFINER functions.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('privileges');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_consent'
consent.pseudonym_key = 'tap-secret-key'
restart_after_crash = on
});
$node->start;

$node->safe_psql(
	'postgres', q{
    CREATE EXTENSION pg_consent;
    CREATE ROLE pv_app LOGIN;
    CREATE ROLE pv_recorder LOGIN;
    CREATE SCHEMA shop;
    CREATE TABLE shop.customers (id bigint PRIMARY KEY, email consent.email, name consent.name,
                                 phone consent.phone, born consent.birthdate, ip consent.ip_address,
                                 face consent.fingerprint);
    INSERT INTO shop.customers VALUES
        (1, 'alice.tap@example.com', 'Alice Archer', '+49 30 5550001', '1987-06-05', '203.0.113.7', '\x0102'),
        (2, 'bob.tap@example.org', 'Bob Baker', '+49 30 5550002', '1990-02-03', '198.51.100.8', '\x0304');
    SELECT consent.protect('shop.customers', 'id');
    SELECT consent.set_mask('shop.customers', 'phone', 'hash');
    CREATE TABLE shop.accounts (handle text PRIMARY KEY, email consent.email);
    INSERT INTO shop.accounts VALUES ('alice', 'alice.tap@example.com');
    SELECT consent.protect('shop.accounts', 'handle');
    GRANT USAGE ON SCHEMA shop TO pv_app;
    GRANT SELECT ON shop.customers, shop.accounts TO pv_app;
    SELECT consent.allow_purpose('pv_app', 'personalize');
    SELECT consent.allow_recording('pv_recorder');
    SELECT consent.grant(1, 'user.contact.email', 'personalize');
    SELECT consent.grant(2, 'user', 'marketing');
});

my $raw = qr/alice\.tap|bob\.tap|Alice Archer|Bob Baker|555000|1987-06-05|1990-02-03|203\.0\.113\.7\b|198\.51\.100\.8\b/;
my $read = 'SELECT id, email, name, phone, born, ip, face FROM shop.customers ORDER BY id';

# Runs SQL in a new connection as $user; returns (exit code, stdout, stderr).
sub as_user
{
	my ($user, $sql, %env) = @_;
	local $ENV{PGOPTIONS} = $env{PGOPTIONS} if defined $env{PGOPTIONS};
	my ($rc, $out, $err) =
	  $node->psql('postgres', "\\set VERBOSITY verbose\n$sql", extra_params => [ '-U', $user ]);
	return ($rc, $out, $err);
}

# --- the session user is not a superuser: no way up ------------------------------

my ($rc, $out, $err) = as_user('pv_app', 'SET ROLE consent_auditor');
like($err, qr/ERROR:  42501: permission denied to set role "consent_auditor"/, 'no SET ROLE consent_auditor');
($rc, $out, $err) = as_user('pv_app', q{SELECT consent.granted(1, 'user.contact.email', 'personalize', at => now())});
like($err, qr/ERROR:  42501: permission denied to evaluate consent at a past time/, 'no consent.granted(at => ...)');
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');
($rc, $out, $err) = as_user('pv_app', qq{SET SESSION AUTHORIZATION "$superuser"});
like($err, qr/ERROR:  42501: permission denied to set session authorization/, 'no SET SESSION AUTHORIZATION');
($rc, $out, $err) = as_user('pv_app', 'GRANT consent_auditor TO pv_app');
like($err, qr/ERROR:  42501/, 'no GRANT consent_auditor');
($rc, $out, $err) = as_user('pv_app', 'SELECT count(*) FROM consent.history(1)');
like($err, qr/ERROR:  42501: permission denied to read the consent history/, 'no consent.history');
($rc, $out, $err) = as_user('pv_app', 'SELECT count(*) FROM consent.ledger');
like($err, qr/ERROR:  42501: permission denied for table ledger/, 'no SELECT on consent.ledger');
($rc, $out, $err) = as_user('pv_app', 'SELECT count(*) FROM consent.subject_state');
like($err, qr/ERROR:  42501: permission denied for table subject_state/, 'no SELECT on consent.subject_state');

# --- the pseudonym key ----------------------------------------------------------

for my $sql ('SHOW consent.pseudonym_key', q{SELECT current_setting('consent.pseudonym_key')},
	q{SELECT current_setting('consent.pseudonym_key', true)})
{
	($rc, $out, $err) = as_user('pv_app', $sql);
	# (the wording changed in PostgreSQL 16; the SQLSTATE did not)
	like($err, qr/ERROR:  42501: (must be superuser or have privileges of pg_read_all_settings|permission denied to examine "consent.pseudonym_key")/,
		"refused: $sql");
	unlike($out . $err, qr/tap-secret-key/, "no key: $sql");
}
($rc, $out, $err) = as_user('pv_app',
	q{SELECT count(*) FROM pg_settings WHERE name = 'consent.pseudonym_key' OR setting = 'tap-secret-key'});
is($out, '0', 'pg_settings does not show the key');
($rc, $out, $err) = as_user('pv_app', 'SHOW ALL');
unlike($out, qr/tap-secret-key|pseudonym_key/, 'SHOW ALL does not show the key');
($rc, $out, $err) = as_user('pv_app', 'SELECT * FROM pg_file_settings');
like($err, qr/ERROR:  42501: permission denied for view pg_file_settings/, 'pg_file_settings is refused');
($rc, $out, $err) = as_user('pv_app', 'SELECT 1', PGOPTIONS => '-c consent.pseudonym_key=mine');
isnt($rc, 0, 'a connection that sets the key is refused');
like($err, qr/permission denied to set parameter "consent.pseudonym_key"/, '... because the key is superuser-only');
($rc, $out, $err) = as_user('pv_app', q{ALTER ROLE pv_app SET consent.pseudonym_key = 'mine'});
like($err, qr/ERROR:  42501/, 'no ALTER ROLE ... SET consent.pseudonym_key');

# --- purposes and as_of from the role's defaults or the connection --------------

my $no_purpose = $node->safe_psql('postgres', "SET ROLE pv_app; $read");
unlike($no_purpose, $raw, 'no purpose: nothing raw');
($rc, $out, $err) = as_user('pv_app', q{ALTER ROLE pv_app SET consent.purpose = 'marketing'});
is($rc, 0, 'a role may store a purpose in its own defaults (checked at use)') or diag($err);
($rc, $out, $err) = as_user('pv_app', "SHOW consent.purpose;\n$read");
like($out, qr/^marketing$/m, 'the stored purpose is the session value');
is($out =~ s/^marketing\n//r, $no_purpose, 'a purpose the role was not allowed, from ALTER ROLE ... SET: masked as no purpose');
$node->safe_psql('postgres', 'ALTER ROLE pv_app RESET ALL');

($rc, $out, $err) = as_user('pv_app', $read, PGOPTIONS => '-c consent.purpose=marketing');
is($rc, 0, 'a purpose from the connection options is accepted') or diag($err);
is($out, $no_purpose, 'a purpose the role was not allowed, from PGOPTIONS: masked as no purpose');
($rc, $out, $err) = as_user('pv_app', $read, PGOPTIONS => '-c consent.purpose=no_such_purpose');
is($out, $no_purpose, 'an unknown purpose from PGOPTIONS: masked as no purpose');
($rc, $out, $err) = as_user('pv_app', $read, PGOPTIONS => '-c consent.purpose=personalize');
like($out, qr/^1\|alice\.tap\@example\.com\|/m, 'an allowed purpose from PGOPTIONS works (the control)');

($rc, $out, $err) = as_user('pv_app', $read, PGOPTIONS => '-c consent.as_of=2000-01-01');
like($err, qr/ERROR:  42501: permission denied to use consent.as_of/, 'consent.as_of from PGOPTIONS: refused at use');
unlike($out, $raw, 'consent.as_of from PGOPTIONS: nothing raw');
($rc, $out, $err) = as_user('pv_app', q{ALTER ROLE pv_app SET consent.as_of = '2000-01-01 00:00+00'});
($rc, $out, $err) = as_user('pv_app', $read);
ok($rc != 0 || $out eq $no_purpose, 'consent.as_of from ALTER ROLE ... SET: refused or masked');
unlike($out, $raw, 'consent.as_of from ALTER ROLE ... SET: nothing raw');
$node->safe_psql('postgres', 'ALTER ROLE pv_app RESET ALL');

# --- search_path from the role's defaults ------------------------------------------

$node->safe_psql(
	'postgres', q{
    CREATE SCHEMA evil AUTHORIZATION pv_recorder;
    ALTER ROLE pv_recorder SET search_path = evil, pg_catalog, public;
});
($rc, $out, $err) = as_user(
	'pv_recorder', q{
    CREATE TABLE evil.calls (fn text, as_user name);
    GRANT INSERT ON evil.calls TO PUBLIC;
    CREATE FUNCTION evil.spy(fn text) RETURNS void LANGUAGE sql SET search_path = pg_catalog
        AS $$ INSERT INTO evil.calls VALUES (fn, current_user) $$;
    CREATE FUNCTION evil.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
        AS $$ BEGIN PERFORM evil.spy('='); RETURN texteq(a, b); END $$;
    CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
    CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog
        AS $$ BEGIN PERFORM evil.spy('clock_timestamp'); RETURN '2000-01-01'; END $$;
    CREATE FUNCTION evil.pg_advisory_xact_lock(bigint) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog
        AS $$ BEGIN PERFORM evil.spy('pg_advisory_xact_lock'); END $$;
    SELECT consent.grant(2, 'user.name', 'personalize') > 0;
    SELECT consent.withdraw(2, 'user.name', 'personalize') > 0;
});
is($rc, 0, 'the recorder records consent with its own search_path') or diag($err);
is($node->safe_psql('postgres', q{SELECT count(*) FROM evil.calls WHERE as_user <> 'pv_recorder'}),
	'0', 'none of its functions or operators ran with the privileges of our SECURITY DEFINER functions');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM consent.ledger WHERE recorded_by = 'pv_recorder'
                                                    AND recorded_at > now() - interval '1 hour'}),
	'2',
	'the events carry the real clock time');

# --- functions of ours executable by PUBLIC, with values of another type --------------
# The planner hook always passes the column itself; a role that calls the
# wrappers directly may pass anything.  A value whose type is not the
# column's must be refused: read as the column's type, an integer becomes a
# pointer (a crash, or bytes of the server's memory in the result), a text
# pointer becomes a date.
my @confusions = (
	[ '_mask: an integer for a text column', q{consent._mask(42, NULL::bigint, 'shop.customers'::regclass, 2::int2)} ],
	[ '_mask: a bigint address for a hashed text column',
		q{consent._mask(4194304::bigint, NULL::bigint, 'shop.customers'::regclass, 4::int2)} ],
	[ '_mask: a text for a date column', q{consent._mask('a text'::text, NULL::bigint, 'shop.customers'::regclass, 5::int2)} ],
	[ '_mask: a timestamptz for an inet column', q{consent._mask(now(), NULL::bigint, 'shop.customers'::regclass, 6::int2)} ],
	[ '_mask: a whole row for a text column',
		q{consent._mask(c, c.id, 'shop.customers'::regclass, 2::int2) FROM shop.customers c} ],
	[ '_mask_strict: an integer for a text column',
		q{consent._mask_strict(42, 2::bigint, 'shop.customers'::regclass, 2::int2)} ],
	# the subject argument too: its type must be the subject column's
	[ '_mask: a timestamptz subject for a text subject column',
		q{consent._mask('x@example.com'::text, now(), 'shop.accounts'::regclass, 2::int2)} ],
	[ '_mask: a date subject for a text subject column',
		q{consent._mask('x@example.com'::text, current_date, 'shop.accounts'::regclass, 2::int2)} ],
	# the row policy function of consent.require_consent() takes any type
	[ '_require_check: a timestamptz subject', q{consent._require_check(now(), 'personalize')} ],
	[ '_require_check: a date subject', q{consent._require_check(current_date, 'personalize')} ],
	# harmless today (the null mask reads nothing; a revealed cell is the
	# value passed in): no crash, and nothing but NULL or that value
	[ '_mask: a date for a bytea column (null mask)',
		q{consent._mask(current_date, NULL::bigint, 'shop.customers'::regclass, 7::int2)}, 'harmless' ],
	[ '_mask_strict: an integer for a text column, revealed',
		q{consent._mask_strict(42, 1::bigint, 'shop.customers'::regclass, 2::int2)}, 'harmless' ],);
for my $c (@confusions)
{
	my ($what, $call, $harmless) = @$c;
	my $log_offset = -s $node->logfile;
	($rc, $out, $err) = as_user('pv_app', "SET consent.purpose = 'personalize';\nSELECT $call");
	$node->poll_query_until('postgres', 'SELECT true');
	ok(!$node->log_contains(qr/terminated by signal|was terminated by exception/, $log_offset),
		"$what: the server does not crash");
	if ($harmless)
	{
		ok($rc != 0 || $out eq '' || $out eq '42', "$what: an error, NULL or the value itself")
		  or diag("result: $out\n$err");
	}
	else
	{
		like($err, qr/ERROR:  \w{5}: /, "$what: an error") or diag("result: $out\n$err");
	}
}

# --- the server survived all of it -----------------------------------------------
is($node->safe_psql('postgres', 'SELECT count(*) FROM shop.customers'), '2', 'the server is up');

$node->stop;
done_testing();
