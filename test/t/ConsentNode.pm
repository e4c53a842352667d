# Copyright: pg_consent contributors
#
# What the TAP tests (test/t/*.pl) share: a node with pg_consent preloaded,
# and the set-up of the tests that check every decision against the ledger
# (a protected customers table read by the role app, and the ledger's word
# on a pair in plain SQL).  Not a test itself (prove runs *.pl).
package ConsentNode;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(consent_node protected_customers_sql ledger_says_sql consent_catalog_copy);

# A started node named $name with pg_consent in shared_preload_libraries;
# $conf: more postgresql.conf lines (optional); %init: the options of
# PostgreSQL::Test::Cluster::init (allows_streaming => 1, ...).
sub consent_node
{
	my ($name, $conf, %init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_consent'\n" . ($conf // ''));
	$node->start;
	return $node;
}

# SQL that creates the extension, a login role app allowed the purpose
# personalize, and a table customers (id bigint PRIMARY KEY, email
# consent.email), protected by id and readable by app, with one row per id
# of the SQL query $ids (one bigint column), e-mail 'e<id>@example.com'.
# name => 1 adds a column name consent.name, 'Name <id>'.
sub protected_customers_sql
{
	my ($ids, %opt) = @_;
	my ($column, $value) = $opt{name} ? (', name consent.name', q{, 'Name ' || g}) : ('', '');
	return qq{
    CREATE EXTENSION pg_consent;
    CREATE ROLE app LOGIN;
    CREATE TABLE customers (id bigint PRIMARY KEY, email consent.email$column);
    INSERT INTO customers SELECT g, 'e' || g || '\@example.com'$value FROM ($ids) ids(g);
    GRANT SELECT ON customers TO app;
    SELECT FROM consent.protect('customers', 'id');
    SELECT FROM consent.allow_purpose('app', 'personalize');
};
}

# SQL that creates ledger_says(subject bigint, category text DEFAULT the
# e-mail's): what the ledger says of the pair under personalize, in plain
# SQL (its latest event grants), callable by app.
sub ledger_says_sql
{
	return q{
    CREATE FUNCTION ledger_says(s bigint, c text DEFAULT 'user.contact.email') RETURNS boolean
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
        SELECT coalesce((SELECT action = 'grant' FROM consent.ledger
                          WHERE subject = s::text AND category = c AND purpose = 'personalize'
                          ORDER BY recorded_at DESC, id DESC LIMIT 1), false) $$;
    GRANT EXECUTE ON FUNCTION ledger_says(bigint, text) TO app;
};
}

# The extension's catalog tables in database $db of $node, each as COPY
# text in a fixed order, by name ("consent.<table>"): what a dump and
# restore or pg_upgrade must keep.
sub consent_catalog_copy
{
	my ($node, $db) = @_;
	my %order = (
		categories       => 'key',
		purposes         => 'key',
		purpose_roles    => 'role::text, purpose',
		protected_tables => 'relation::text',
		column_masks     => 'relation::text, column_name',
		ledger           => 'id',
		subject_state    => 'subject, category, purpose',);
	my %out;
	for my $table (sort keys %order)
	{
		$out{"consent.$table"} =
		  $node->safe_psql($db, "COPY (SELECT * FROM consent.$table ORDER BY $order{$table}) TO STDOUT");
	}
	return %out;
}

1;
