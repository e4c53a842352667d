# Copyright: pg_consent contributors
#
# What the Citus TAP tests (test/t/06*_citus*.pl) share: skipping when
# Citus is not installed for the PostgreSQL under test, and making a node
# of a Citus cluster on this machine.  Not a test itself (prove runs *.pl).
package ConsentCitus;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use Test::More;

our @EXPORT = qw(skip_without_citus citus_node citus_cluster);

# Skips the whole test unless citus.so and citus.control are installed
# (test/harness/citus.sh builds and installs them).
sub skip_without_citus
{
	my $pkglibdir = `pg_config --pkglibdir`;
	my $sharedir  = `pg_config --sharedir`;
	chomp($pkglibdir, $sharedir);
	return if -f "$pkglibdir/citus.so" && -f "$sharedir/extension/citus.control";
	plan skip_all =>
	  "Citus is not installed for this PostgreSQL (no $pkglibdir/citus.so); test/harness/citus.sh builds and installs it";
}

# A started node with citus and pg_consent preloaded (Citus first) and the
# citus extension created; %opts: init => {...} (PostgreSQL::Test::Cluster
# init options), conf => extra postgresql.conf lines.
sub citus_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} // {} });
	# citus.local_hostname: how Citus reaches its own node (localhost over
	# TCP by default; the nodes listen on a Unix socket only)
	$node->append_conf('postgresql.conf', "citus.local_hostname = '" . $node->host . "'\n" . q{
shared_preload_libraries = 'citus,pg_consent'
max_worker_processes = 16
max_prepared_transactions = 20
citus.shard_count = 4
citus.shard_replication_factor = 1
citus.enable_statistics_collection = off
} . ($opts{conf} // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION citus');
	return $node;
}

# A coordinator and its workers (names), the workers added to it (every
# node listens on a Unix socket in its own directory: the node name Citus
# connects to is that directory).  Returns the nodes, coordinator first.
sub citus_cluster
{
	my ($names, %opts) = @_;
	my @nodes = map { citus_node($_, %opts) } @$names;
	my ($coord, @workers) = @nodes;
	$coord->safe_psql('postgres',
		sprintf("SELECT citus_set_coordinator_host('%s', %d)", $coord->host, $coord->port));
	$coord->safe_psql('postgres', sprintf("SELECT citus_add_node('%s', %d)", $_->host, $_->port))
	  for @workers;
	return @nodes;
}

1;
