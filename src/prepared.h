/*
 * prepared.h — consent changes of prepared transactions (two-phase
 * commit).  A transaction's changed subjects are published to the other
 * backends when it commits (cache.cpp's invalidation ring); a prepared
 * transaction commits later, in COMMIT PREPARED, from any session (or the
 * logical replication apply worker), when no callback of ours runs.  So
 * PREPARE TRANSACTION leaves its changed subjects here, and whoever sees
 * that the transaction has committed publishes them.
 *
 * Owns: a table in shared memory (twice max_prepared_transactions entries,
 * none when that is 0) of the transactions prepared in this server's life:
 * transaction id, GID and changed subjects' hashes.
 * Must never: let a session decide from a cache that predates a committed
 * prepared change; when what a committed prepared transaction changed is
 * not known (prepared before the server started, or its entry was given
 * up), every subject counts as changed.
 */
#pragma once

#include "boundary.h"

extern "C" {
#include "access/transam.h"
}

#include <cstdint>
#include <vector>

namespace consent::prepared {

void shmem_request();
void shmem_startup();

/* The utility hook saw PREPARE TRANSACTION gid: the transaction callback
 * that follows names its entry with it. */
void preparing(const char *gid);
/* PRE_PREPARE: this transaction (fxid, maybe invalid) changed the subjects
 * with these ring hashes (cache.cpp: EVERYTHING among them: all). */
void remember(FullTransactionId fxid, const std::vector<uint64_t> &hashes);
/* Before COMMIT PREPARED / ROLLBACK PREPARED gid: whether a transaction
 * prepared in this server's life carries that GID. */
bool known(const char *gid);
/* After it succeeded: publishes what committed (every subject when the GID
 * was not known and it committed) and drops the entries that ended. */
void finished(const char *gid, bool commit, bool was_known);
/* At statement start (cheap while nothing is prepared): publishes the
 * changes of prepared transactions that have committed since, however
 * they were committed. */
void sweep();

} // namespace consent::prepared
