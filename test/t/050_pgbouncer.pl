
# Copyright: pg_consent contributors
#
# consent.purpose_scope behind a real PgBouncer in transaction pooling mode
# with one server connection per pool (SPEC.md section 9).  Two clients, A
# and B, connect one after the other as the same role and are served by the
# same PostgreSQL backend (the test checks its pid):
#  - with consent.purpose_scope = session (the default), A's plain SET
#    consent.purpose stays on the server connection and B, which never set a
#    purpose, reads under it: the hazard this setting guards against;
#  - with consent.purpose_scope = transaction, that SET fails with a hint,
#    SET LOCAL works inside a transaction, and B reads masked after every
#    way A can set a purpose.
# Then, on direct connections, role and database defaults and startup-packet
# options, which apply under the session scope, do not under the
# transaction scope.
#
# Skipped when the pgbouncer binary is not installed (Debian: pgbouncer).
use strict;
use warnings;

use File::Spec;
use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

my ($pgbouncer) = grep { -x $_ } ($ENV{PGBOUNCER} // ()),
  map { "$_/pgbouncer" } (split(/:/, $ENV{PATH} // ''), '/usr/sbin', '/usr/bin');
plan skip_all => 'pgbouncer is not installed (Debian package pgbouncer; or set PGBOUNCER)' unless $pgbouncer;

my $node = consent_node('node');

$node->safe_psql(
	'postgres', q{
    CREATE EXTENSION pg_consent;
    CREATE ROLE pool_app LOGIN;
    CREATE TABLE customers (id bigint PRIMARY KEY, email consent.email);
    INSERT INTO customers VALUES (1, 'jane.doe@example.com'), (2, 'max@example.de');
    GRANT SELECT ON customers TO pool_app;
    SELECT FROM consent.protect('customers', 'id');
    SELECT FROM consent.allow_purpose('pool_app', 'marketing');
    SELECT FROM consent.grant(1, 'user.contact.email', 'marketing');
});

my $revealed = 'jane.doe@example.com';
my $masked = 'j***@example.com';

# Runs SQL on a direct connection as pool_app (extra environment: %env);
# returns stdout (rows as a|b|c) and stderr.
sub direct
{
	my ($sql, %env) = @_;
	local @ENV{ keys %env } = values %env;
	my ($ret, $stdout, $stderr) =
	  $node->psql('postgres', $sql, extra_params => [ '-U', 'pool_app', '-A', '-t' ]);
	return ($stdout, $stderr);
}

# Switches consent.purpose_scope and waits until new sessions see it.
sub set_scope
{
	my ($scope) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET consent.purpose_scope = '$scope'");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('consent.purpose_scope') = '$scope'")
	  or die "the server did not switch to consent.purpose_scope = $scope";
}

# ---- defaults on direct connections, under the session scope -------------

$node->safe_psql('postgres', q{ALTER ROLE pool_app SET consent.purpose = 'marketing'});
my ($out) = direct(q{SELECT current_setting('consent.purpose'), email FROM customers WHERE id = 1});
is($out, "marketing|$revealed", 'session scope: a role default purpose applies');
$node->safe_psql('postgres', q{ALTER ROLE pool_app RESET consent.purpose});

$node->safe_psql('postgres', q{ALTER DATABASE postgres SET consent.purpose = 'marketing'});
($out) = direct(q{SELECT current_setting('consent.purpose'), email FROM customers WHERE id = 1});
is($out, "marketing|$revealed", 'session scope: a database default purpose applies');
$node->safe_psql('postgres', q{ALTER DATABASE postgres RESET consent.purpose});

($out) = direct(q{SELECT current_setting('consent.purpose'), email FROM customers WHERE id = 1},
	PGOPTIONS => '-c consent.purpose=marketing');
is($out, "marketing|$revealed", 'session scope: a purpose in the startup packet (PGOPTIONS) applies');

# ---- PgBouncer ------------------------------------------------------------

my $dir = PostgreSQL::Test::Utils::tempdir;
my $sockdir = PostgreSQL::Test::Utils::tempdir_short;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $logfile = "$PostgreSQL::Test::Utils::log_path/050_pgbouncer_pgbouncer.log";
PostgreSQL::Test::Utils::append_to_file("$dir/userlist.txt", qq{"pool_app" ""\n});
# Transaction pooling, one server connection.  server_reset_query runs in
# session pooling only, so nothing resets a server connection between
# clients here; no check query runs before a connection is reused.
# PgBouncer logs to stderr, kept in the test log directory.
PostgreSQL::Test::Utils::append_to_file(
	"$dir/pgbouncer.ini", qq{
[databases]
postgres = host=@{[ $node->host ]} port=@{[ $node->port ]} dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $sockdir
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 1
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 10
server_check_delay = 3600
server_lifetime = 3600
server_idle_timeout = 0
});

my $bouncer = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ], '<', \undef, '>>', $logfile, '2>>', $logfile);
END { $bouncer->kill_kill(grace => 5) if $bouncer && $bouncer->pumpable; }

# Runs SQL (one statement after the other) as a new client of PgBouncer;
# returns stdout (rows as a|b|c) and stderr (verbose errors: with SQLSTATE).
sub client
{
	my ($sql) = @_;
	my ($stdout, $stderr) = ('', '');
	# a psql that cannot connect exits before it reads its script: writing
	# the script then fails (EPIPE), which is a failed client, not a crash
	eval {
		IPC::Run::run(
			[
				'psql', '-X', '-A', '-t', '-q', '-v', 'VERBOSITY=verbose',
				'-h', $sockdir, '-p', $port, '-U', 'pool_app', '-d', 'postgres', '-f', '-'
			],
			'<', \$sql, '>', \$stdout, '2>', \$stderr);
		1;
	} or $stderr .= "client failed: $@";
	chomp $stdout;
	return ($stdout, $stderr);
}

my $up = 0;
for (1 .. 100)
{
	my ($o) = client('SELECT 1');
	if ($o eq '1') { $up = 1; last; }
	usleep(100_000);
}
ok($up, 'PgBouncer (transaction pooling, pool size 1) accepts clients') or BAIL_OUT('PgBouncer did not start');

# ---- session scope: the hazard --------------------------------------------

my ($pid) = client('SELECT pg_backend_pid()');
my ($err);
($out, $err) = client(q{SELECT pg_backend_pid(); SET consent.purpose = 'marketing';});
is($out, $pid, 'client A is served by the pooled backend');
is($err, '', "session scope: client A's plain SET succeeds");
($out) = client(q{SELECT pg_backend_pid(), current_setting('consent.purpose'), email FROM customers WHERE id = 1});
is($out, "$pid|marketing|$revealed",
	"session scope: client B, which set no purpose, reads under client A's purpose on the same backend");

# ---- transaction scope ----------------------------------------------------

set_scope('transaction');

# B's query is the pooled backend's first statement since the reload: A's
# purpose, set in an earlier transaction, is gone before it runs.
($out) = client(
	q{SELECT pg_backend_pid(), current_setting('consent.purpose_scope'), current_setting('consent.purpose'), email
      FROM customers WHERE id = 1});
is($out, "$pid|transaction||$masked",
	'after the switch to the transaction scope: the purpose left on the backend no longer applies');

($out, $err) = client(q{SET consent.purpose = 'marketing';});
like(
	$err,
	qr/ERROR:  55000: cannot set consent\.purpose for the session when consent\.purpose_scope is "transaction"/,
	'transaction scope: a plain SET fails with SQLSTATE 55000');
like($err, qr/HINT:  Use SET LOCAL consent\.purpose inside a transaction block/, '... and a hint to use SET LOCAL');
($out) = client(q{SELECT pg_backend_pid(), current_setting('consent.purpose'), email FROM customers WHERE id = 1});
is($out, "$pid||$masked", '... and client B reads masked');

($out, $err) = client(
	q{BEGIN;
      SET LOCAL consent.purpose = 'marketing';
      SELECT pg_backend_pid(), email FROM customers WHERE id = 1;
      COMMIT;});
is($out, "$pid|$revealed", 'transaction scope: SET LOCAL in a transaction reveals what was granted');
is($err, '', '... without an error');
($out) = client(q{SELECT pg_backend_pid(), current_setting('consent.purpose'), email FROM customers WHERE id = 1});
is($out, "$pid||$masked", '... and client B, next on the same backend, reads masked');

($out) = client(
	q{BEGIN;
      SELECT set_config('consent.purpose', 'marketing', false);
      SELECT email FROM customers WHERE id = 1;
      COMMIT;});
is($out, "marketing\n$revealed", "transaction scope: set_config(..., false) applies in A's transaction");
($out) = client(q{SELECT pg_backend_pid(), current_setting('consent.purpose'), email FROM customers WHERE id = 1});
is($out, "$pid||$masked", '... and does not outlive it: client B reads masked');

($out) = client(q{SELECT set_config('consent.purpose', 'marketing', false);});
is($out, 'marketing', 'transaction scope: set_config(..., false) in a single statement');
($out) = client(q{SELECT pg_backend_pid(), current_setting('consent.purpose'), email FROM customers WHERE id = 1});
is($out, "$pid||$masked", '... client B reads masked');

($out, $err) = client(
	q{BEGIN;
      SET consent.purpose = 'marketing';
      SELECT email FROM customers WHERE id = 1;
      COMMIT;});
is($out, $revealed, 'transaction scope: a plain SET inside a transaction block applies to that block');
($out) = client(q{SELECT pg_backend_pid(), current_setting('consent.purpose'), email FROM customers WHERE id = 1});
is($out, "$pid||$masked", '... and ends with it: client B reads masked');

($out) = client(
	q{BEGIN;
      SET LOCAL consent.purpose = 'marketing';
      SELECT 1/0;
      COMMIT;});
($out) = client(q{SELECT pg_backend_pid(), current_setting('consent.purpose'), email FROM customers WHERE id = 1});
is($out, "$pid||$masked", 'transaction scope: after a failed transaction client B reads masked');

$bouncer->kill_kill(grace => 5);
ok(!$bouncer->pumpable, 'PgBouncer stopped');

# ---- defaults on direct connections, under the transaction scope ---------

$node->safe_psql('postgres', q{ALTER ROLE pool_app SET consent.purpose = 'marketing'});
($out) = direct(
	q{SELECT current_setting('consent.purpose'), email FROM customers WHERE id = 1;
      BEGIN;
      RESET consent.purpose;
      SELECT current_setting('consent.purpose'), email FROM customers WHERE id = 1;
      COMMIT;});
is($out, "|$masked\n|$masked", 'transaction scope: a role default purpose applies neither at start nor after RESET');
$node->safe_psql('postgres', q{ALTER ROLE pool_app RESET consent.purpose});

$node->safe_psql('postgres', q{ALTER DATABASE postgres SET consent.purpose = 'marketing'});
($out) = direct(
	q{SELECT current_setting('consent.purpose'), email FROM customers WHERE id = 1;
      BEGIN;
      SET LOCAL consent.purpose TO DEFAULT;
      SELECT current_setting('consent.purpose'), email FROM customers WHERE id = 1;
      COMMIT;});
is($out, "|$masked\n|$masked",
	'transaction scope: a database default purpose applies neither at start nor after SET ... TO DEFAULT');
$node->safe_psql('postgres', q{ALTER DATABASE postgres RESET consent.purpose});

($out) = direct(
	q{SELECT current_setting('consent.purpose'), email FROM customers WHERE id = 1;
      BEGIN;
      RESET consent.purpose;
      SELECT current_setting('consent.purpose'), email FROM customers WHERE id = 1;
      COMMIT;
      DISCARD ALL;
      SELECT current_setting('consent.purpose'), email FROM customers WHERE id = 1;},
	PGOPTIONS => '-c consent.purpose=marketing');
is($out, "|$masked\n|$masked\n|$masked",
	'transaction scope: a purpose in the startup packet applies neither at start nor after RESET or DISCARD ALL');

$node->safe_psql('postgres', q{ALTER SYSTEM RESET consent.purpose_scope});
$node->reload;
$node->stop;
done_testing();
