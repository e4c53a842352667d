/*
 * bypass.h — statements planned for a role that sees every value
 * (superuser or BYPASSRLS): no masking expression at all, one counting
 * qual per scan for the audit (bypass.cpp).
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/pg_list.h"
#include "nodes/plannodes.h"
#include "executor/execdesc.h"
}

namespace consent {

/* The tagged columns a statement reads, gathered by the rewrite's walk
 * instead of masking them: per relation (as the statement names it, an
 * OID list), the attribute numbers read (a parallel list of Bitmapsets). */
struct UnmaskedReads {
    List *relids = NIL;
    List *columns = NIL;
};
void note_unmasked_read(UnmaskedReads &reads, Oid relid, AttrNumber attno);

/* Puts the counting qual consent._read_unmasked(relation, role, columns,
 * cells...) at the end of the quals of every scan of a relation whose
 * tagged columns the statement reads, and marks the plan as made for the
 * acting role.  False (the plan untouched otherwise) when a scan it cannot
 * count reads one (a foreign scan, another extension's scan): the caller
 * plans the statement with masking instead. */
bool mark_unmasked_reads(PlannedStmt *stmt, const UnmaskedReads &reads, Oid role, Oid func);

/* After ExecutorStart: the executor state of each counting qual becomes
 * one that counts the row's cells from the scan tuple without a function
 * call (the call stays where that cannot be done). */
void count_unmasked_reads(QueryDesc *desc, int eflags);

/* The acting role or a role's attributes changed: plans made for bypass
 * roles are made again (PostgreSQL's plan cache watches neither). */
void unmasked_roles_changed() noexcept;

} // namespace consent
