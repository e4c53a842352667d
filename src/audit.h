/*
 * audit.h — the disclosure audit: how many tagged cells each statement
 * revealed and masked, per column, role and purpose.
 *
 * Owns: the per-backend counters the mask function feeds (audit_cell), the
 * consent.audit log lines written when a top-level statement ends, and the
 * cumulative counters in shared memory behind consent.disclosures.
 * Must never: write to a table (the read path must work on a hot standby
 * and in read-only transactions), take a lock or touch the catalog per
 * cell, or log a cell's value.
 */
#pragma once

#include "boundary.h"
#include "taxonomy.h"

extern "C" {
#include "access/attnum.h"
#include "miscadmin.h"
}

namespace consent {

/* true when cells are counted: consent.audit is not off, or
 * consent.track_disclosures is on.  Kept up to date by the GUC hooks. */
extern bool audit_counting;

namespace detail {
/* Changes whenever a counting period ends and whenever the per-backend
 * entries move or are dropped: an AuditSlot set under another value is
 * stale. */
extern uint64 audit_epoch;
} // namespace detail

/* Where one call site of the mask function counts: the counters of its
 * entry, right while the epoch and the session context (its serial: the
 * role and the purpose, decision.h) stay. */
namespace detail {
/* The role cells are counted for when it is not the session's (Citus: the
 * role another node's query claims); InvalidOid otherwise. */
extern Oid audit_role;
} // namespace detail

struct AuditSlot {
    uint64 epoch = 0;
    uint64 *revealed = nullptr;
    uint64 *masked = nullptr;
    uint64 context = 0;
};

/* Counts one cell (slow path of audit_cell): finds or makes the entry of
 * the acting role and the purpose, and sets the slot. */
void audit_count(const ColumnRule &rule, Oid relid, AttrNumber attno, int purpose, uint64 context, bool revealed,
                 AuditSlot &slot);

/* What a parallel worker counted for one (relation, column, role,
 * purpose), handed to its leader (parallel.cpp), which logs and publishes
 * it with its own statement. */
struct WorkerCount {
    Oid relid;
    AttrNumber attno;
    Oid role;
    int purpose;
    int category;
    uint64 revealed;
    uint64 masked;
};
/* The names a worker resolved for one of its counts: the leader logs and
 * publishes them without catalog access (it may take them while its
 * transaction aborts). */
struct WorkerNames {
    char relation[2 * 2 * NAMEDATALEN + 8];
    char schema[NAMEDATALEN];
    char table[NAMEDATALEN];
    char column[NAMEDATALEN];
    char role[NAMEDATALEN];
    char category[208];
    char purpose[208];
};
/* In a worker: the running statement's counts, in first-count order (at
 * most max; the order never changes within the statement). */
size_t audit_worker_counts(WorkerCount *out, size_t max);
/* In a worker: the names of the statement's j-th count. */
void audit_worker_names(size_t j, WorkerNames &out);
/* In a worker: the first max entries of the statement are its leader's to
 * log and publish; the worker itself only flushes any beyond. */
void audit_hand_over(size_t max);
/* In a leader: adds what a worker counted to the running statement. */
void audit_add_counts(const WorkerCount &w, const WorkerNames &names, uint64 revealed, uint64 masked) noexcept;

/* Called by the mask function once per non-NULL cell, right after the
 * decision (purpose and context: the session context's purpose and
 * serial): one branch when nothing is counted, two compares otherwise. */
inline void audit_cell(const ColumnRule &rule, Oid relid, AttrNumber attno, int purpose, uint64 context, bool revealed,
                       AuditSlot &slot)
{
    if (!audit_counting)
        return;
    if (slot.epoch == detail::audit_epoch && slot.context == context) {
        ++*(revealed ? slot.revealed : slot.masked);
        return;
    }
    audit_count(rule, relid, attno, purpose, context, revealed, slot);
}

} // namespace consent
