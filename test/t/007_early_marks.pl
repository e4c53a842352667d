# Copyright: pg_consent contributors
#
# Consent changes committed before the shared consent state is built are
# kept for the build (4,096 of them); when more were made, the build cannot
# know which subjects a transaction still running changed, and it is not
# trusted (docs/architecture.md, "The shared consent state").  Here a
# prepared transaction withdraws consent after 5,000 other changes, all
# before the first masked read: reads decide from the backends' own caches
# meanwhile (right decisions, no waiting for the prepared transaction; a
# later transaction that has ended does not make the build trusted), and
# once it is committed the shared state is built and follows it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ConsentNode;

my $node = consent_node('early', 'max_prepared_transactions = 2');
$node->safe_psql('postgres', protected_customers_sql('SELECT generate_series(1, 6000)'));
# the first build happens at the first masked read: restart so that nothing is built
$node->restart;
# 5,000 changes in 5,000 transactions (more than the 4,096 marks kept)
$node->safe_psql('postgres', q{
    DO $$ BEGIN
        FOR i IN 1..5000 LOOP
            PERFORM consent.grant(i, 'user.contact.email', 'personalize');
            COMMIT;
        END LOOP;
    END $$});
# a prepared transaction withdraws subject 7: its mark is dropped; then a
# later transaction commits (also dropped): the latest dropped transaction
# has ended, an earlier one has not
$node->safe_psql('postgres', q{
    BEGIN;
    SELECT consent.withdraw(7, 'user.contact.email', 'personalize');
    PREPARE TRANSACTION 'withdraw7'});
$node->safe_psql('postgres', q{SELECT consent.grant(5999, 'user.contact.email', 'personalize')});

my $read = q{SET ROLE app; SET consent.purpose = 'personalize';
    SELECT count(*) FILTER (WHERE email = 'e' || id || '@example.com') || '/' ||
           bool_or(id = 7 AND email = 'e7@example.com')
    FROM customers};
is($node->safe_psql('postgres', $read), '5001/true', 'before the commit: 5,001 revealed, subject 7 too (withdrawal prepared, not committed)');
is($node->safe_psql('postgres', 'SELECT status FROM consent.shared_state()'), 'empty',
	'the build could not be trusted: the shared state is not used');
$node->safe_psql('postgres', q{COMMIT PREPARED 'withdraw7'});
is($node->safe_psql('postgres', $read), '5000/false', 'after COMMIT PREPARED the withdrawal applies');
sleep 1.2;    # a build is not tried again within a second
is($node->safe_psql('postgres', $read), '5000/false', 'and still applies once the shared state is built');
is($node->safe_psql('postgres', 'SELECT status FROM consent.shared_state()'), 'ready',
	'the shared state is built once the transaction has ended');
$node->safe_psql('postgres', q{SELECT consent.withdraw(8, 'user.contact.email', 'personalize')});
is($node->safe_psql('postgres', $read), '4999/false', 'later changes apply through it');
done_testing();
