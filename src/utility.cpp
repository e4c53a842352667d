/*
 * utility.cpp — the executor and utility hooks: every statement start
 * refreshes the session context and applies other backends' consent
 * changes; COPY of a table with tagged columns is turned into COPY of a
 * query so it goes through the masking rewrite; extension DDL drops what
 * this backend cached.
 *
 * Owns: ExecutorStart and ProcessUtility hooks, install_query_hooks().
 * Must never: change a COPY FROM (writes store what is given) or a COPY of
 * a table without tagged columns.
 */
#include "boundary.h"
#include "cache.h"
#include "consent.h"
#include "decision.h"
#include "taxonomy.h"

extern "C" {
#include "access/relation.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "tcop/utility.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

namespace consent {

void install_planner_hook();

namespace {

ExecutorStart_hook_type prev_executor_start = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

void executor_start(QueryDesc *desc, int eflags)
{
    entry([&] { statement_start(); });
    if (prev_executor_start)
        prev_executor_start(desc, eflags);
    else
        standard_ExecutorStart(desc, eflags);
}

/* Whether the relation has a consent-tagged column. */
bool has_tagged_column(Oid relid)
{
    Relation rel = relation_open(relid, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    bool found = false;
    for (int i = 0; i < desc->natts && !found; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        found = !att->attisdropped && tagged_category(att->atttypid) >= 0;
    }
    relation_close(rel, NoLock);
    return found;
}

/* COPY t [(cols)] TO ... → COPY (SELECT cols FROM ONLY t) TO ..., as
 * PostgreSQL itself does for tables with row-level security. */
void rewrite_copy_to(CopyStmt *stmt)
{
    Oid relid = RangeVarGetRelid(stmt->relation, AccessShareLock, true);
    if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION || !has_tagged_column(relid))
        return;
    SelectStmt *select = makeNode(SelectStmt);
    List *names = stmt->attlist;
    if (names == NIL) {
        Relation rel = relation_open(relid, NoLock);
        TupleDesc desc = RelationGetDescr(rel);
        for (int i = 0; i < desc->natts; i++) {
            Form_pg_attribute att = TupleDescAttr(desc, i);
            if (!att->attisdropped)
                names = lappend(names, makeString(pstrdup(NameStr(att->attname))));
        }
        relation_close(rel, NoLock);
    }
    ListCell *lc;
    foreach (lc, names) {
        ColumnRef *ref = makeNode(ColumnRef);
        ref->fields = list_make1(makeString(pstrdup(strVal(lfirst(lc)))));
        ref->location = -1;
        ResTarget *target = makeNode(ResTarget);
        target->val = (Node *)ref;
        target->location = -1;
        select->targetList = lappend(select->targetList, target);
    }
    RangeVar *from = (RangeVar *)copyObjectImpl(stmt->relation);
    from->inh = false;
    select->fromClause = list_make1(from);
    stmt->query = (Node *)select;
    stmt->relation = nullptr;
    stmt->attlist = NIL;
}

bool is_extension_ddl(Node *node)
{
    if (IsA(node, CreateExtensionStmt) || IsA(node, AlterExtensionStmt) || IsA(node, AlterExtensionContentsStmt))
        return true;
    return IsA(node, DropStmt) && ((DropStmt *)node)->removeType == OBJECT_EXTENSION;
}

void process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
                     ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
                     DestReceiver *dest, QueryCompletion *qc)
{
    Node *node = pstmt->utilityStmt;
    /* FETCH and other utility statements are statements too: consent
     * changes committed meanwhile apply to them */
    entry([&] { statement_start(); });
    if (IsA(node, CopyStmt) && !((CopyStmt *)node)->is_from && ((CopyStmt *)node)->relation) {
        if (read_only_tree) {
            pstmt = (PlannedStmt *)copyObjectImpl(pstmt);
            node = pstmt->utilityStmt;
        }
        entry([&] { pg([&] { if (taxonomy().installed) rewrite_copy_to((CopyStmt *)node); }); });
    }
    bool ext = is_extension_ddl(node);
    if (prev_process_utility)
        prev_process_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    if (ext) {
        /* every backend drops its taxonomy: the extension came or went */
        CacheInvalidateRelcacheAll();
        taxonomy_invalidate();
        cache_reset();
    }
}

} // namespace

void install_query_hooks()
{
    install_planner_hook();
    prev_executor_start = ExecutorStart_hook;
    ExecutorStart_hook = executor_start;
    prev_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = process_utility;
    register_taxonomy_callbacks();
    register_cache_callbacks();
}

} // namespace consent
