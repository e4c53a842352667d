/*
 * parallel.h — consent decisions in parallel workers decided as their
 * leader decides them.
 *
 * A parallel worker restores its leader's role, settings (purpose, as_of)
 * and statement time, but not what decisions also depend on: the snapshot
 * the leader resolves changed subjects with, the subjects the leader's
 * transaction changed itself (only that transaction sees them), and where
 * the cells it counts for the audit go.  A ConsentContext node directly
 * under every Gather and Gather Merge of a plan that decides consent
 * carries them through the parallel query's shared memory.
 */
#pragma once

#include "boundary.h"
#include "taxonomy.h"

extern "C" {
#include "nodes/plannodes.h"
}

namespace consent {

/* Puts a ConsentContext node directly under every Gather and Gather Merge
 * of a finished plan (its main tree and its sub-plans). */
void add_parallel_context(PlannedStmt *stmt);

/* Registers the node with PostgreSQL (_PG_init; needed by parallel workers). */
void register_parallel_context();

/* In a parallel worker: whether its leader's context arrived (a plan
 * without the node, a function's own query run by a worker, leaves the
 * worker on its own: see cache.cpp). */
bool leader_context_received();

} // namespace consent
