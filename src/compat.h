/*
 * compat.h — the differences between the PostgreSQL versions pg_consent
 * builds against (15, 16, 17 and 18), in one place.  Every other file
 * writes the code once and uses these names where the versions differ.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "access/tupdesc.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "nodes/nodeFuncs.h"
#include "nodes/primnodes.h"
#include "utils/acl.h"
#include "utils/guc.h"
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h" /* ExplainProperty*() moved here in 18 */
#endif
}

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 190000
#error "pg_consent builds against PostgreSQL 15, 16, 17 and 18"
#endif

/* ExecutorRun hooks: PostgreSQL 18 dropped the execute_once argument. */
#if PG_VERSION_NUM >= 180000
#define CONSENT_EXECUTOR_RUN_PARAMS QueryDesc *desc, ScanDirection direction, uint64 count
#define CONSENT_EXECUTOR_RUN_ARGS desc, direction, count
#else
#define CONSENT_EXECUTOR_RUN_PARAMS QueryDesc *desc, ScanDirection direction, uint64 count, bool execute_once
#define CONSENT_EXECUTOR_RUN_ARGS desc, direction, count, execute_once
#endif

/* A walker handed to planstate_tree_walker(): PostgreSQL 16 gave the
 * callback its type (15 declares it without parameters). */
#if PG_VERSION_NUM >= 160000
#define CONSENT_PLANSTATE_WALKER(fn) (fn)
#else
#define CONSENT_PLANSTATE_WALKER(fn) ((bool (*)())(void (*)())(fn))
#endif

namespace consent {

/* EXECUTE on a function: pg_proc_aclcheck() became object_aclcheck() in 16. */
inline AclResult function_aclcheck(Oid func, Oid role, AclMode mode)
{
#if PG_VERSION_NUM >= 160000
    return object_aclcheck(ProcedureRelationId, func, role, mode);
#else
    return pg_proc_aclcheck(func, role, mode);
#endif
}

/* USAGE on a schema: likewise. */
inline AclResult namespace_aclcheck(Oid nsp, Oid role, AclMode mode)
{
#if PG_VERSION_NUM >= 160000
    return object_aclcheck(NamespaceRelationId, nsp, role, mode);
#else
    return pg_namespace_aclcheck(nsp, role, mode);
#endif
}

/* A Var made to stand beside another (the subject column of a tagged
 * column, the columns of a whole-row reference) carries what the planner
 * checks about where it is read: the outer joins that can null it (16) and
 * whether it reads the OLD or NEW row of RETURNING (18). */
inline void copy_var_context(Var *to, const Var *from)
{
#if PG_VERSION_NUM >= 160000
    to->varnullingrels = bms_copy(from->varnullingrels);
#endif
#if PG_VERSION_NUM >= 180000
    to->varreturningtype = from->varreturningtype;
#endif
    (void)to;
    (void)from;
}

/* Generated columns: stored ones, and virtual ones (18; PostgreSQL
 * computes them when they are read, after the planner hook ran). */
inline bool has_generated_columns(const TupleConstr *constr)
{
#if PG_VERSION_NUM >= 180000
    return constr && (constr->has_generated_stored || constr->has_generated_virtual);
#else
    return constr && constr->has_generated_stored;
#endif
}

inline bool is_generated(char attgenerated)
{
#if PG_VERSION_NUM >= 180000
    return attgenerated == ATTRIBUTE_GENERATED_STORED || attgenerated == ATTRIBUTE_GENERATED_VIRTUAL;
#else
    return attgenerated == ATTRIBUTE_GENERATED_STORED;
#endif
}

/* Memory for a GUC check hook's extra value, freed by PostgreSQL: with
 * free() up to 15, with guc_free() (a memory context of its own) since 16.
 * nullptr when out of memory. */
inline void *guc_extra_alloc(size_t size)
{
#if PG_VERSION_NUM >= 160000
    return guc_malloc(LOG, size);
#else
    return malloc(size);
#endif
}

/* PostgreSQL's tree walkers and mutators take an untyped callback (typed
 * from 16 on, through macros that cast whatever they are given). */
using TreeMutator = Node *(*)();
template <typename Context> TreeMutator as_mutator(Node *(*fn)(Node *, Context *))
{
    return reinterpret_cast<TreeMutator>(reinterpret_cast<void (*)()>(fn));
}
using TreeWalker = bool (*)();
template <typename Context> TreeWalker as_walker(bool (*fn)(Node *, Context *))
{
    return reinterpret_cast<TreeWalker>(reinterpret_cast<void (*)()>(fn));
}

} // namespace consent

/* The shared transaction-id counters (renamed in 17). */
extern "C" {
#include "access/transam.h"
}
#if PG_VERSION_NUM >= 170000
#define CONSENT_TRANSAM TransamVariables
#else
#define CONSENT_TRANSAM ShmemVariableCache
#endif
