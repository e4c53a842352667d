/*
 * plan_tree.h — the direct sub-plans of a finished plan node, for the
 * walkers over planned statements (rewrite.cpp, bypass.cpp, maskscan.cpp,
 * parallel.cpp).  PostgreSQL's planstate_tree_walker walks executor
 * state; these walkers run on plans, before execution.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/pg_list.h"
#include "nodes/plannodes.h"
}

namespace consent {

/* Whether p is one of PostgreSQL's scans of a table's own rows (its
 * scanrelid names the relation read; foreign and custom scans aside). */
inline bool scans_heap(const Plan *p)
{
    switch (nodeTag(p)) {
    case T_SeqScan:
    case T_SampleScan:
    case T_IndexScan:
    case T_IndexOnlyScan:
    case T_BitmapHeapScan:
    case T_TidScan:
    case T_TidRangeScan:
        return true;
    default:
        return false;
    }
}

/* Calls fn(Plan *&child) for each plan of a list that is not NULL (a
 * statement's subplans); fn may replace the child it is given. */
template <typename F> void for_each_plan_in(List *plans, F &&fn)
{
    ListCell *lc;
    foreach (lc, plans) {
        auto *child = (Plan *)lfirst(lc);
        if (child) {
            fn(child);
            lfirst(lc) = child;
        }
    }
}

/* Calls fn(Plan *&child) for each direct sub-plan of p that is not NULL:
 * lefttree, righttree, Append's, MergeAppend's, BitmapAnd's and
 * BitmapOr's lists, a SubqueryScan's subplan and a CustomScan's
 * custom_plans.  fn may replace the child it is given.  A custom scan that
 * keeps its child both as lefttree and in custom_plans (ConsentContext:
 * EXPLAIN resolves its outputs through lefttree) has it visited once, and
 * a replacement lands in both places. */
template <typename F> void for_each_child_plan(Plan *p, F &&fn)
{
    Plan *left = p->lefttree;
    if (p->lefttree)
        fn(p->lefttree);
    if (p->righttree)
        fn(p->righttree);
    List *plans = NIL;
    switch (nodeTag(p)) {
    case T_Append:
        plans = ((Append *)p)->appendplans;
        break;
    case T_MergeAppend:
        plans = ((MergeAppend *)p)->mergeplans;
        break;
    case T_BitmapAnd:
        plans = ((BitmapAnd *)p)->bitmapplans;
        break;
    case T_BitmapOr:
        plans = ((BitmapOr *)p)->bitmapplans;
        break;
    case T_CustomScan:
        plans = ((CustomScan *)p)->custom_plans;
        break;
    case T_SubqueryScan:
        if (((SubqueryScan *)p)->subplan)
            fn(((SubqueryScan *)p)->subplan);
        return;
    default:
        return;
    }
    for_each_plan_in(plans, [&](Plan *&child) {
        if (child == left)
            child = p->lefttree;
        else
            fn(child);
    });
}

} // namespace consent
