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
}

namespace consent {

/* true when cells are counted: consent.audit is not off, or
 * consent.track_disclosures is on.  Kept up to date by the GUC hooks. */
extern bool audit_counting;

/* Where one call site of the mask function counted last: the entry stays
 * right while the statement (counting period), role and purpose do. */
struct AuditSlot {
    uint64 period = 0;
    size_t index = 0;
    Oid role = InvalidOid;
    int purpose = -1;
};

/* Counts one cell (slow path of audit_cell). */
void audit_count(const ColumnRule &rule, Oid relid, AttrNumber attno, int purpose, bool revealed, AuditSlot &slot);

/* Called by the mask function once per non-NULL cell, right after the
 * decision: one branch when nothing is counted, a few compares otherwise. */
inline void audit_cell(const ColumnRule &rule, Oid relid, AttrNumber attno, int purpose, bool revealed, AuditSlot &slot)
{
    if (audit_counting)
        audit_count(rule, relid, attno, purpose, revealed, slot);
}

} // namespace consent
