# Copyright: pg_consent contributors
#
# Consent is per database: each database has its own ledger.  The server's
# shared consent state holds up to 64 databases, each built by its first
# statement that needs it, whose records' keys start with the database's
# OID (docs/architecture.md, "The shared consent state").  Checked here
# with two databases holding the same subject ids and opposite consent:
# each sees only its own, before and after changes in either, in new and
# in open sessions, and after a restart in the other order.  A dropped
# database's slot is freed: databases made and dropped all day do not
# push the later ones out of the shared state, on the primary and on a hot
# standby, and a database made again with a dropped one's OID does not
# inherit its consent.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

my $node = consent_node('databases', '', allows_streaming => 1);
$node->safe_psql('postgres', 'CREATE ROLE app LOGIN');

for my $db ('shop_a', 'shop_b')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	# shop_a grants the e-mail of the even subjects, shop_b of the odd ones
	my $parity = $db eq 'shop_a' ? 0 : 1;
	$node->safe_psql(
		$db, qq{
        CREATE EXTENSION pg_consent;
        CREATE TABLE customers (id bigint PRIMARY KEY, email consent.email);
        INSERT INTO customers SELECT g, 'e' || g || '\@example.com' FROM generate_series(1, 10) g;
        GRANT SELECT ON customers TO app;
        SELECT FROM consent.protect('customers', 'id');
        SELECT FROM consent.allow_purpose('app', 'personalize');
        SELECT count(consent.grant(id, 'user.contact.email', 'personalize')) FROM customers WHERE id % 2 = $parity;
    });
}

my $read = q{SET ROLE app; SET consent.purpose = 'personalize';
    SELECT string_agg(id::text, ',' ORDER BY id) FROM customers WHERE email = 'e' || id || '@example.com'};

is($node->safe_psql('shop_a', $read), '2,4,6,8,10', 'shop_a reveals its own grants (it builds its shared state)');
is($node->safe_psql('shop_b', $read), '1,3,5,7,9', 'shop_b reveals its own grants, not shop_a\'s');
for my $db ('shop_a', 'shop_b')
{
	is($node->safe_psql($db, q{SELECT status || ' ' || database || ' ' || subjects || ' ' || builds FROM consent.shared_state()}),
		"ready $db 5 1", "the shared state holds $db\'s 5 subjects");
}

# changes in each database reach only that database
$node->safe_psql('shop_b', q{SELECT consent.withdraw(3, 'user.contact.email', 'personalize')});
$node->safe_psql('shop_a', q{SELECT consent.withdraw(4, 'user.contact.email', 'personalize')});
$node->safe_psql('shop_a', q{SELECT consent.grant(5, 'user.contact.email', 'personalize')});
is($node->safe_psql('shop_a', $read), '2,5,6,8,10', 'shop_a follows its own changes only');
is($node->safe_psql('shop_b', $read), '1,5,7,9', 'shop_b follows its own changes only');

# sessions that stay open in both databases across changes in the other
my $a = $node->background_psql('shop_a');
my $b = $node->background_psql('shop_b');
$a->query_safe(q{SET ROLE app; SET consent.purpose = 'personalize'});
$b->query_safe(q{SET ROLE app; SET consent.purpose = 'personalize'});
my $q = q{SELECT string_agg(id::text, ',' ORDER BY id) FROM customers WHERE email = 'e' || id || '@example.com'};
is($a->query_safe($q), '2,5,6,8,10', 'open shop_a session');
is($b->query_safe($q), '1,5,7,9', 'open shop_b session');
$node->safe_psql('shop_b', q{SELECT consent.withdraw(1, 'user.contact.email', 'personalize')});
$node->safe_psql('shop_a', q{SELECT consent.withdraw(2, 'user.contact.email', 'personalize')});
is($a->query_safe($q), '5,6,8,10', 'the open shop_a session follows shop_a\'s withdrawal, not shop_b\'s');
is($b->query_safe($q), '5,7,9', 'the open shop_b session follows shop_b\'s withdrawal, not shop_a\'s');
$a->quit;
$b->quit;

# after a restart, in the other order
$node->restart;
is($node->safe_psql('shop_b', $read), '5,7,9', 'after a restart, shop_b first');
is($node->safe_psql('shop_a', $read), '5,6,8,10', 'then shop_a');
is($node->safe_psql('shop_a', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM customers
                                 WHERE consent.granted(id, 'user.contact.email', 'personalize')}),
	'5,6,8,10', 'consent.granted() in shop_a answers for shop_a');

# 70 databases, more than the 64 slots, each made from shop_a, read (it
# takes a slot and builds) and dropped; the last of them, and then a new
# one, still have a slot and decide right
my $status = q{SELECT status || ' ' || (database IS NOT NULL) || ' ' || subjects FROM consent.shared_state()};
for my $i (1 .. 70)
{
	$node->safe_psql('postgres', "CREATE DATABASE churn$i TEMPLATE shop_a");
	my $seen = $node->safe_psql("churn$i", "$read; $status");
	is($seen, "5,6,8,10\nready true 6", "database $i of 70 has a slot and decides from it") if $i == 1 || $i == 70;
	$node->safe_psql('postgres', "DROP DATABASE churn$i");
}
$node->safe_psql('postgres', 'CREATE DATABASE shop_c TEMPLATE shop_b');
$node->safe_psql('shop_c', q{SELECT consent.grant(2, 'user.contact.email', 'personalize')});
is($node->safe_psql('shop_c', "$read; $status"), "2,5,7,9\nready true 6", 'a database made after them too');
is($node->safe_psql('shop_a', "$read; $status"), "5,6,8,10\nready true 6", 'shop_a keeps its slot and records');
is($node->safe_psql('shop_b', "$read; $status"), "5,7,9\nready true 5", 'so does shop_b');

# A hot standby replays DROP DATABASE without the hook that frees the slot
# on the primary: it frees it when it replays pg_consent's record of the
# drop (below), and for a drop without that record (the primary ran
# without pg_consent loaded), a database that finds no slot free frees
# those of the databases no longer in the catalog.  70 databases made on
# such a primary, read on the standby (each takes a slot there) and
# dropped; the last of them, and the databases that stay, still decide
# from the standby's shared state.
$node->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('databases_standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->start;
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
$node->wait_for_catchup($standby, 'replay');
for my $i (1 .. 70)
{
	$node->safe_psql('postgres', "CREATE DATABASE replica$i TEMPLATE shop_a");
	$node->wait_for_catchup($standby, 'replay');
	my $seen = $standby->safe_psql("replica$i", "$read; $status");
	is($seen, "5,6,8,10\nready true 6", "standby: database $i of 70 has a slot and decides from it")
	  if $i == 1 || $i == 70;
	$node->safe_psql('postgres', "DROP DATABASE replica$i");
}
$node->wait_for_catchup($standby, 'replay');
is($standby->safe_psql('shop_c', "$read; $status"), "2,5,7,9\nready true 6", 'standby: shop_c, read after them');
is($standby->safe_psql('shop_a', "$read; $status"), "5,6,8,10\nready true 6", 'standby: shop_a');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname LIKE 'replica%'}),
	'0', 'the 70 databases are gone on the standby too');
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_consent'");
$node->restart;

# A database dropped and made again with the same OID (CREATE DATABASE ...
# OID, or OIDs wrapping around) decides from its own consent, on the
# primary and on the standby (which frees the dropped database's slot when
# it replays pg_consent's record of the drop, with slots to spare).
$node->safe_psql('postgres', 'CREATE DATABASE reused OID = 900100 TEMPLATE shop_a');
$node->wait_for_catchup($standby, 'replay');
is($node->safe_psql('reused', "$read; $status"), "5,6,8,10\nready true 6", 'a database with a chosen OID');
is($standby->safe_psql('reused', "$read; $status"), "5,6,8,10\nready true 6", 'standby: the same');
$node->safe_psql('postgres', 'DROP DATABASE reused');
$node->safe_psql('postgres', 'CREATE DATABASE reused OID = 900100 TEMPLATE shop_b');
$node->wait_for_catchup($standby, 'replay');
is($standby->safe_psql('reused', "$read; $status"), "5,7,9\nready true 5",
	'standby: made again with that OID from another template, it decides from its own consent');
is($node->safe_psql('reused', "$read; $status"), "5,7,9\nready true 5", 'so does the primary');
$standby->stop;

done_testing();
