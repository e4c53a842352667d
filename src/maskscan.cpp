/*
 * maskscan.cpp — the ConsentMask custom scan: masking a whole row in one
 * step instead of one function-call expression per tagged cell.
 *
 * The rewrite (rewrite.cpp) turns every tagged column reference into a
 * consent._mask(col, subject, relid, attno) call, and that stays the
 * definition of what a query sees.  After planning, a scan whose output
 * list is made only of its own relation's columns and such calls on them
 * (point look-ups, exports, simple SELECTs) is put under a ConsentMask node:
 * the scan returns the raw columns (its relation's tuples as they are, when
 * the table has no dropped columns and no system column is needed), and the
 * node computes exactly what the calls would have, with the same decision
 * and audit code (mask_cell(), through sites kept per column across
 * executions).
 * A node whose output is the relation's whole row (SELECT *, exports) is
 * "on" the relation: the relation's descriptor describes its rows, so no
 * descriptor is built per execution.
 * What it saves is PostgreSQL's per-execution set-up of one function-call
 * expression per tagged column (an ACL check, an fmgr look-up, the
 * expression steps), which is most of what masking costs a point look-up.
 *
 * The scan keeps its quals, so a predicate on a tagged column still filters
 * on the masked value (its mask call stays in the scan's filter).  Outputs
 * of any other shape and mask calls in upper nodes (aggregates, joins) keep
 * the plain calls.  Parallel workers run the node like the leader, in the
 * leader's context (parallel.h).
 *
 * Owns: the plan transformation and the node's executor callbacks.
 * Must never: change what a plan returns (every output is the scan's own
 * column or mask_cell() of it), or keep C++
 * objects alive across the child's execution (it may ereport).
 */
#include "boundary.h"
#include "compat.h"
#include "consent.h"
#include "maskscan.h"
#include "plan_tree.h"
#include "shared_state.h"
#include "taxonomy.h"

extern "C" {
#include "commands/explain.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "storage/bufmgr.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "access/relation.h"
#include "nodes/value.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
}

#include <algorithm>
#include <new>
#include <unordered_map>

namespace consent {

bool mask_scan_enabled = true;

namespace {

/* What one output column of the node is. */
enum class Out : int { Column = 0, Mask = 1, Strict = 2, Claimed = 3 };

/* Per output column, in an integer list (no node per field to read at each
 * execution): kind, source column of the child (1-based), subject column of
 * the child (0: none), then for masks the relid, attno and base types the
 * call named.  That list is the only element of custom_private, never
 * custom_private itself: other extensions walk every CustomScan of a plan
 * and read the first element of its custom_private as a node (Citus's
 * IsCitusCustomScan(), on the plans of its subplans and whenever it asks
 * whether a plan is its own): an integer there is dereferenced as a
 * pointer and kills the backend.  A second element, when some column is
 * decided in a claimed context (Citus, consent._mask_claimed), lists per
 * column the claim (a text[] Const) or NULL. */
constexpr int FIELDS = 7;

/* The integer list of the node: its options (below), then per column the
 * FIELDS integers. */
const List *node_fields(const CustomScan *cs)
{
    return cs->custom_private != NIL ? (const List *)linitial(cs->custom_private) : NIL;
}

/* Options of a node (the first integer of its list). */
enum : int {
    /* The node's parent reads every row it returns before it returns
     * anything (reads_whole_input()): the node may read rows of its scan
     * ahead of the one it returns (set_whole_input()). */
    WHOLE_INPUT = 1,
};

Node *create_state(CustomScan *cs);
const CustomScanMethods plan_methods = {"ConsentMask", create_state};

/* The relation's columns in order, when its scan can return its tuples as
 * they are, without a projection (PostgreSQL's tlist_matches_tupdesc: no
 * dropped columns, no columns with a missing default); else NIL. */
List *physical_tlist(Oid relid, Index rti)
{
    Relation rel = relation_open(relid, NoLock); /* locked by the planner */
    TupleDesc desc = RelationGetDescr(rel);
    List *tlist = NIL;
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (att->attisdropped || att->atthasmissing) {
            tlist = NIL;
            break;
        }
        Var *v = makeVar(int(rti), AttrNumber(i + 1), att->atttypid, att->atttypmod, att->attcollation, 0);
        tlist = lappend(tlist, makeTargetEntry((Expr *)v, AttrNumber(i + 1), nullptr, false));
    }
    relation_close(rel, NoLock);
    return tlist;
}

/* The position of var in the child's output list, added when missing (the
 * physical list holds every user column at its number). */
int child_column(List **tlist, Var *var, bool physical)
{
    if (physical)
        return var->varattno;
    int i = 0;
    ListCell *lc;
    foreach (lc, *tlist) {
        i++;
        if (equal(((TargetEntry *)lfirst(lc))->expr, var))
            return i;
    }
    *tlist = lappend(*tlist, makeTargetEntry((Expr *)copyObjectImpl(var), AttrNumber(i + 1), nullptr, false));
    return i + 1;
}

bool own_var(Node *n, Index rti)
{
    return n && IsA(n, Var) && ((Var *)n)->varno == int(rti) && ((Var *)n)->varlevelsup == 0;
}

/* The mask call of an output expression (possibly relabelled to the
 * column's domain), when it has the rewrite's shape on this scan's own
 * columns; else nullptr. */
FuncExpr *mask_call_of(Expr *e, Index rti, const Taxonomy &t)
{
    if (IsA(e, RelabelType))
        e = ((RelabelType *)e)->arg;
    if (!IsA(e, FuncExpr))
        return nullptr;
    auto *f = (FuncExpr *)e;
    bool claimed = f->funcid == t.claimed_func && OidIsValid(t.claimed_func) && list_length(f->args) == 5;
    if (claimed) {
        Node *claim = (Node *)list_nth(f->args, 4);
        if (!IsA(claim, Const) || ((Const *)claim)->constisnull)
            return nullptr;
    } else if ((f->funcid != t.mask_func && f->funcid != t.strict_func) || list_length(f->args) != 4) {
        return nullptr;
    }
    if (!f->funcvariadic)
        return nullptr;
    Node *value = (Node *)linitial(f->args), *subject = (Node *)lsecond(f->args);
    Node *relid = (Node *)lthird(f->args), *attno = (Node *)lfourth(f->args);
    if (!own_var(value, rti) || ((Var *)value)->varattno <= 0)
        return nullptr;
    if (!own_var(subject, rti) && !(IsA(subject, Const) && ((Const *)subject)->constisnull))
        return nullptr;
    if (!IsA(relid, Const) || ((Const *)relid)->constisnull || !IsA(attno, Const) || ((Const *)attno)->constisnull)
        return nullptr;
    return f;
}

int max_plan_node_id(Plan *p)
{
    int m = p->plan_node_id;
    for_each_child_plan(p, [&](Plan *&child) { m = std::max(m, max_plan_node_id(child)); });
    return m;
}

struct Transform {
    const Taxonomy &t;
    List *rtable;
    int next_id;
};

/* Whether every column the output reads is a user column (a physical
 * output list cannot return ctid or a whole row). */
bool user_columns_only(List *tlist, Index rti)
{
    ListCell *lc;
    foreach (lc, tlist) {
        Node *e = (Node *)((TargetEntry *)lfirst(lc))->expr;
        if (own_var(e, rti) && ((Var *)e)->varattno <= 0)
            return false;
    }
    return true;
}

/* Whether output column n (tle), which reads column src of the relation's
 * physical list, is that column in its place, of its own type, typmod and
 * collation (masked or not). */
bool in_place(const TargetEntry *tle, int n, int src, List *physical)
{
    if (tle->resjunk || src != n)
        return false;
    auto *e = (Node *)tle->expr;
    auto *col = (Var *)((TargetEntry *)list_nth(physical, src - 1))->expr;
    return exprType(e) == col->vartype && exprTypmod(e) == col->vartypmod && exprCollation(e) == col->varcollid;
}

/* The scan under a ConsentMask node, or the scan itself when its output
 * has another shape or masks nothing. */
Plan *mask_scan(Scan *scan, Transform &tf)
{
    Index rti = scan->scanrelid;
    List *child_tlist = NIL, *priv = list_make1_int(0), *claims = NIL;
    bool masks = false, any_claim = false;
    ListCell *lc;
    /* a plan another extension assembled may name range tables of a plan
     * it replaced: leave what cannot be read as it is */
    if (rti < 1 || int(rti) > list_length(tf.rtable))
        return &scan->plan;
    RangeTblEntry *rte = rt_fetch(rti, tf.rtable);
    if (rte->rtekind == RTE_RELATION && user_columns_only(scan->plan.targetlist, rti))
        child_tlist = physical_tlist(rte->relid, rti);
    bool physical = child_tlist != NIL;
    /* Whether the output is the relation's row, column for column, of the
     * columns' own types, with the tagged columns masked in place (SELECT *,
     * exports): then the relation's own descriptor describes the node's
     * scan tuple, and PostgreSQL builds none per execution (a catalog-cache
     * look-up per column: 6 % of a point look-up's instructions). */
    bool row = physical && list_length(scan->plan.targetlist) == list_length(child_tlist);
    int n = 0;
    foreach (lc, scan->plan.targetlist) {
        auto *tle = (TargetEntry *)lfirst(lc);
        n++;
        if (own_var((Node *)tle->expr, rti)) {
            int src = child_column(&child_tlist, (Var *)tle->expr, physical);
            row = row && in_place(tle, n, src, child_tlist);
            priv = lappend_int(priv, int(Out::Column));
            priv = lappend_int(priv, src);
            for (int k = 2; k < FIELDS; k++)
                priv = lappend_int(priv, 0);
            claims = lappend(claims, nullptr);
            continue;
        }
        FuncExpr *f = mask_call_of(tle->expr, rti, tf.t);
        if (!f)
            return &scan->plan;
        auto *value = (Var *)linitial(f->args);
        Node *subject = (Node *)lsecond(f->args);
        int src = child_column(&child_tlist, value, physical);
        row = row && in_place(tle, n, src, child_tlist);
        int subj = IsA(subject, Var) ? child_column(&child_tlist, (Var *)subject, physical) : 0;
        bool claimed = f->funcid == tf.t.claimed_func;
        priv = lappend_int(priv, int(claimed ? Out::Claimed : f->funcid == tf.t.strict_func ? Out::Strict : Out::Mask));
        claims = lappend(claims, claimed ? copyObjectImpl(list_nth(f->args, 4)) : nullptr);
        any_claim = any_claim || claimed;
        priv = lappend_int(priv, src);
        priv = lappend_int(priv, subj);
        priv = lappend_int(priv, int(DatumGetObjectId(((Const *)lthird(f->args))->constvalue)));
        priv = lappend_int(priv, DatumGetInt16(((Const *)lfourth(f->args))->constvalue));
        priv = lappend_int(priv, int(getBaseType(exprType((Node *)value))));
        priv = lappend_int(priv, int(getBaseType(exprType(subject))));
        masks = true;
    }
    if (!masks)
        return &scan->plan;

    auto *cs = makeNode(CustomScan);
    Plan *plan = &cs->scan.plan;
    Plan *child = &scan->plan;
    plan->startup_cost = child->startup_cost;
    plan->total_cost = child->total_cost;
    plan->plan_rows = child->plan_rows;
    plan->plan_width = child->plan_width;
    plan->parallel_aware = false;
    plan->parallel_safe = child->parallel_safe; /* workers mask in their leader's context (parallel.h) */
    plan->plan_node_id = tf.next_id++;
    plan->extParam = bms_copy(child->extParam);
    plan->allParam = bms_copy(child->allParam);
    /* The node's own output: its scan tuple, column for column.  A row of
     * the relation is described by the relation (Vars of the scan's range
     * table entry; EXPLAIN VERBOSE shows the calls from custom_exprs),
     * anything else by custom_scan_tlist (Vars of INDEX_VAR; EXPLAIN shows
     * the calls from there). */
    List *described = row ? child_tlist : child->targetlist;
    int i = 0;
    ListCell *dc;
    forboth (lc, child->targetlist, dc, described) {
        auto *tle = (TargetEntry *)lfirst(lc);
        Node *col = (Node *)((TargetEntry *)lfirst(dc))->expr;
        i++;
        Var *v = row ? (Var *)copyObjectImpl(col)
                     : makeVar(INDEX_VAR, AttrNumber(i), exprType(col), exprTypmod(col), exprCollation(col), 0);
        TargetEntry *out = makeTargetEntry((Expr *)v, AttrNumber(i), tle->resname, tle->resjunk);
        out->ressortgroupref = tle->ressortgroupref;
        out->resorigtbl = tle->resorigtbl;
        out->resorigcol = tle->resorigcol;
        plan->targetlist = lappend(plan->targetlist, out);
        if (row && !own_var((Node *)tle->expr, rti))
            cs->custom_exprs = lappend(cs->custom_exprs, tle->expr);
    }
    cs->scan.scanrelid = row ? rti : 0;
    cs->custom_relids = row ? bms_make_singleton(int(rti)) : nullptr;
    cs->flags = CUSTOMPATH_SUPPORT_MARK_RESTORE;
    if (ExecSupportsBackwardScan(child))
        cs->flags |= CUSTOMPATH_SUPPORT_BACKWARD_SCAN;
    cs->custom_scan_tlist = row ? NIL : child->targetlist;
    cs->custom_private = any_claim ? list_make2(priv, claims) : list_make1(priv); /* a list of nodes: see FIELDS */
    cs->custom_plans = list_make1(child);
    cs->methods = &plan_methods;
    /* A physical list is the scan tuple as it is: the scan gets none, so
     * PostgreSQL describes no output row for it per execution (a catalog
     * look-up per column, like the node's own); begin_scan() takes its
     * projection away, and the scan returns the tuple it read. */
    child->targetlist = physical ? NIL : child_tlist;
    return plan;
}

/* ---- aggregates over a scan ------------------------------------------ */

/* An aggregate right over a scan of a protected table evaluates the mask
 * calls of its arguments for every row, each as a function call on the
 * scan's columns (the planner leaves the scan's output as the bare
 * columns).  Lifting moves each call that runs for every row into the
 * scan's output list, where the ConsentMask node computes it with the
 * row's other masks, and the aggregate reads the masked column instead.
 * A call runs for every row when it is in the arguments of an aggregate
 * without FILTER, or in a FILTER, and not under a CASE, a COALESCE, the
 * second or later operand of AND/OR, a sub-plan or any other expression
 * that may skip it: the cells decided (and counted for the audit) per row
 * stay exactly those the aggregate decided itself.  Aggregates that share
 * one transition state (the executor evaluates their arguments once) share
 * the lifted columns. */
struct Lift {
    const Taxonomy &t;
    Index rti;
    List *scan_tlist; /* the scan's output list, grown by the lifted calls */
    bool in_aggregate = false;
    bool every_row = false;
    List *done = NIL; /* pairs of aggregates: as planned, lifted */
};

/* The scan's own column behind an OUTER_VAR of the aggregate, or nullptr. */
Var *scan_column(Node *n, const Lift &c)
{
    if (!n || !IsA(n, Var) || ((Var *)n)->varno != OUTER_VAR || ((Var *)n)->varlevelsup != 0)
        return nullptr;
    int k = ((Var *)n)->varattno;
    if (k < 1 || k > list_length(c.scan_tlist))
        return nullptr;
    Node *e = (Node *)((TargetEntry *)list_nth(c.scan_tlist, k - 1))->expr;
    return own_var(e, c.rti) && ((Var *)e)->varattno > 0 ? (Var *)e : nullptr;
}

/* The OUTER_VAR of a new output column of the scan computing the mask call
 * f (the rewrite's shape, on the scan's columns), or nullptr. */
Node *lift_call(FuncExpr *f, Lift &c)
{
    if (f->funcid != c.t.mask_func || !OidIsValid(c.t.mask_func) || list_length(f->args) != 4 || !f->funcvariadic)
        return nullptr;
    Node *subject = (Node *)lsecond(f->args), *relid = (Node *)lthird(f->args), *attno = (Node *)lfourth(f->args);
    Var *value = scan_column((Node *)linitial(f->args), c);
    Var *subject_col = scan_column(subject, c);
    if (!value || (!subject_col && !(IsA(subject, Const) && ((Const *)subject)->constisnull)))
        return nullptr;
    if (!IsA(relid, Const) || ((Const *)relid)->constisnull || !IsA(attno, Const) || ((Const *)attno)->constisnull)
        return nullptr;
    auto *call = (FuncExpr *)palloc(sizeof(FuncExpr));
    memcpy(call, f, sizeof(FuncExpr));
    call->args = list_make4(copyObjectImpl(value), subject_col ? copyObjectImpl(subject_col) : copyObjectImpl(subject),
                            copyObjectImpl(relid), copyObjectImpl(attno));
    int resno = list_length(c.scan_tlist) + 1;
    c.scan_tlist = lappend(c.scan_tlist, makeTargetEntry((Expr *)call, AttrNumber(resno), nullptr, false));
    return (Node *)makeVar(OUTER_VAR, AttrNumber(resno), exprType((Node *)f), exprTypmod((Node *)f),
                           exprCollation((Node *)f), 0);
}

Node *lift_mutator(Node *n, Lift *cxt);

/* n's children, with every_row as given. */
Node *lift_children(Node *n, Lift &c, bool every_row)
{
    bool saved = c.every_row;
    c.every_row = every_row;
    Node *r = expression_tree_mutator(n, as_mutator(lift_mutator), &c);
    c.every_row = saved;
    return r;
}

Node *lift_mutator(Node *n, Lift *cxt)
{
    Lift &c = *cxt;
    if (!n)
        return nullptr;
    switch (nodeTag(n)) {
    case T_FuncExpr:
        if (c.in_aggregate && c.every_row)
            if (Node *v = lift_call((FuncExpr *)n, c))
                return v;
        return lift_children(n, c, c.every_row);
    case T_Aggref: {
        auto *orig = (Aggref *)n;
        auto *a = (Aggref *)palloc(sizeof(Aggref));
        memcpy(a, orig, sizeof(Aggref));
        /* the arguments and FILTER of a transition state are evaluated
         * once per row, whichever of its aggregates names them */
        for (int i = 0; i + 1 < list_length(c.done); i += 2) {
            auto *planned = (Aggref *)list_nth(c.done, i), *lifted = (Aggref *)list_nth(c.done, i + 1);
            if (planned->aggtransno == orig->aggtransno && equal(planned->args, orig->args) &&
                equal(planned->aggfilter, orig->aggfilter)) {
                a->args = lifted->args;
                a->aggfilter = lifted->aggfilter;
                return (Node *)a;
            }
        }
        bool in = c.in_aggregate, every = c.every_row;
        c.in_aggregate = true;
        c.every_row = orig->aggfilter == nullptr;
        a->args = (List *)expression_tree_mutator((Node *)orig->args, as_mutator(lift_mutator), &c);
        c.every_row = true;
        a->aggfilter = (Expr *)lift_mutator((Node *)orig->aggfilter, &c);
        c.in_aggregate = in;
        c.every_row = every;
        /* direct arguments are evaluated once per group: left as they are */
        c.done = lappend(lappend(c.done, orig), a);
        return (Node *)a;
    }
    case T_BoolExpr: {
        /* AND and OR stop at the first operand that decides */
        auto *b = (BoolExpr *)palloc(sizeof(BoolExpr));
        memcpy(b, n, sizeof(BoolExpr));
        List *args = NIL;
        bool every = c.every_row;
        ListCell *lc;
        foreach (lc, ((BoolExpr *)n)->args) {
            args = lappend(args, lift_mutator((Node *)lfirst(lc), &c));
            if (b->boolop != NOT_EXPR)
                c.every_row = false;
        }
        c.every_row = every;
        b->args = args;
        return (Node *)b;
    }
    /* expressions that evaluate every operand */
    case T_List:
    case T_TargetEntry:
    case T_OpExpr:
    case T_DistinctExpr:
    case T_NullIfExpr:
    case T_ScalarArrayOpExpr:
    case T_RelabelType:
    case T_CoerceViaIO:
    case T_CoerceToDomain:
    case T_NullTest:
    case T_BooleanTest:
    case T_MinMaxExpr:
    case T_ArrayExpr:
    case T_RowExpr:
    case T_FieldSelect:
        return lift_children(n, c, c.every_row);
    default:
        /* anything else may skip an operand (CASE, COALESCE, sub-plans):
         * its mask calls stay calls; aggregates below it still run for
         * every row */
        return lift_children(n, c, false);
    }
}

/* The aggregate's references to its scan's columns (OUTER_VARs), by
 * column of the scan (1-based): note_columns() sets the columns read to 1,
 * renumber_columns() moves each reference to its new number. */
struct Renumber {
    AttrNumber *numbers;
    int columns;
};
Var *outer_column(Node *n, const Renumber *r)
{
    if (!IsA(n, Var) || ((Var *)n)->varno != OUTER_VAR)
        return nullptr;
    auto *v = (Var *)n;
    return v->varattno > 0 && v->varattno <= r->columns ? v : nullptr;
}
bool note_columns(Node *n, Renumber *r)
{
    if (!n)
        return false;
    if (Var *v = outer_column(n, r)) {
        r->numbers[v->varattno] = 1;
        return false;
    }
    return expression_tree_walker(n, as_walker(note_columns), r);
}
Node *renumber_columns(Node *n, Renumber *r)
{
    if (!n)
        return nullptr;
    if (Var *v = outer_column(n, r)) {
        Var *moved = (Var *)copyObjectImpl(v);
        moved->varattno = r->numbers[v->varattno];
        return (Node *)moved;
    }
    return expression_tree_mutator(n, as_mutator(renumber_columns), r);
}

/* Lifts the mask calls of an aggregate right over a scan (see Lift) when
 * the scan's output is one a ConsentMask node can compute. */
void lift_aggregate_masks(Agg *agg, Transform &tf)
{
    Plan *child = agg->plan.lefttree;
    if (!child || agg->groupingSets != NIL || agg->chain != NIL || DO_AGGSPLIT_COMBINE(agg->aggsplit))
        return;
    if (!IsA(child, SeqScan) && !IsA(child, IndexScan) && !IsA(child, BitmapHeapScan))
        return;
    Index rti = ((Scan *)child)->scanrelid;
    if (rti < 1 || int(rti) > list_length(tf.rtable) || rt_fetch(rti, tf.rtable)->rtekind != RTE_RELATION)
        return;
    ListCell *lc;
    foreach (lc, child->targetlist) {
        Node *e = (Node *)((TargetEntry *)lfirst(lc))->expr;
        if (!own_var(e, rti) && !mask_call_of((Expr *)e, rti, tf.t))
            return;
    }
    Lift c{tf.t, rti, list_copy(child->targetlist)};
    int before = list_length(c.scan_tlist);
    List *tlist = (List *)lift_mutator((Node *)agg->plan.targetlist, &c);
    List *qual = (List *)lift_mutator((Node *)agg->plan.qual, &c);
    if (list_length(c.scan_tlist) == before)
        return;
    /* The scan's output keeps only the columns the aggregate still reads
     * (the planner gives a scan its relation's whole row when nothing
     * needs less): the node then reads no more of each row than those. */
    int n = list_length(c.scan_tlist);
    auto *renumber = static_cast<AttrNumber *>(palloc0(sizeof(AttrNumber) * size_t(n + 1)));
    Renumber r{renumber, n};
    note_columns((Node *)tlist, &r);
    note_columns((Node *)qual, &r);
    for (int i = 0; i < agg->numCols; i++)
        renumber[agg->grpColIdx[i]] = 1;
    List *kept = NIL;
    for (int i = 1; i <= n; i++) {
        if (!renumber[i])
            continue;
        auto *tle = (TargetEntry *)flatCopyTargetEntry((TargetEntry *)list_nth(c.scan_tlist, i - 1));
        renumber[i] = AttrNumber(list_length(kept) + 1);
        tle->resno = renumber[i];
        kept = lappend(kept, tle);
    }
    for (int i = 0; i < agg->numCols; i++)
        agg->grpColIdx[i] = renumber[agg->grpColIdx[i]];
    agg->plan.targetlist = (List *)renumber_columns((Node *)tlist, &r);
    agg->plan.qual = (List *)renumber_columns((Node *)qual, &r);
    child->targetlist = kept;
}

/* The ConsentMask node plan now is (or is over), when its parent reads its
 * whole input first: it may read ahead. */
void set_whole_input(Plan *plan)
{
    if (!plan || !IsA(plan, CustomScan) || ((CustomScan *)plan)->methods != &plan_methods)
        return;
    auto *fields = (List *)linitial(((CustomScan *)plan)->custom_private);
    fields->elements[0].int_value |= WHOLE_INPUT;
}

/* Whether the node reads every row of its input before it returns its
 * first row, whatever asks it for rows: a plain or hashed aggregate, a
 * sort (bounded or not).  (The hash table of a hash join is built whole
 * too, but its keys are computed by the Hash node: the scan under it
 * returns the bare columns and gets no ConsentMask node.) */
bool reads_whole_input(const Plan *p)
{
    switch (nodeTag(p)) {
    case T_Agg:
        return ((const Agg *)p)->aggstrategy == AGG_PLAIN || ((const Agg *)p)->aggstrategy == AGG_HASHED;
    case T_Sort:
        return true;
    default:
        return false;
    }
}

Plan *transform(Plan *p, Transform &tf);

Plan *transform(Plan *p, Transform &tf)
{
    if (IsA(p, Agg) && (((Agg *)p)->aggstrategy == AGG_PLAIN || ((Agg *)p)->aggstrategy == AGG_HASHED))
        lift_aggregate_masks((Agg *)p, tf);
    /* another extension's custom scan runs the plans it holds its own way:
     * they keep their masking expressions */
    if (IsA(p, CustomScan)) {
        if (p->lefttree)
            p->lefttree = transform(p->lefttree, tf);
        if (p->righttree)
            p->righttree = transform(p->righttree, tf);
        return p;
    }
    for_each_child_plan(p, [&](Plan *&child) { child = transform(child, tf); });
    if (reads_whole_input(p))
        set_whole_input(p->lefttree);
    switch (nodeTag(p)) {
    case T_SeqScan:
    case T_IndexScan:
    case T_BitmapHeapScan:
        return mask_scan((Scan *)p, tf);
    default:
        return p;
    }
}

/* ---- execution ------------------------------------------------------- */

struct Column {
    Out kind;
    int src;  /* child column, 1-based */
    int subj; /* child column of the subject, 0: none */
};

/* Read-ahead (a node whose parent reads its whole input): rows of the scan
 * are copied into a ring, and for each the subject's place in the shared
 * state is loaded into the CPU cache while earlier rows are masked.  It
 * starts once the node has seen that its rows do not come in subject
 * order (in order, the shared state is read in its own order and the
 * hardware reads ahead by itself). */
constexpr int RING = 16;
constexpr int RECORD_LATER = 8; /* rows between loading a slot and its record */
constexpr uint64_t ORDER_SAMPLE = 512; /* rows seen before deciding */

struct MaskScanState {
    CustomScanState css;
    PlanState *child;
    int ncols;
    int maxsrc;
    Column *cols;
    MaskSite **sites; /* per output column, NULL for plain columns */
    /* read-ahead */
    bool whole_input;  /* the parent reads every row: reading ahead is allowed */
    int subject_col;   /* child column of the subject (0: none) */
    Oid subject_type;  /* its base type */
    bool ahead;        /* reading ahead now */
    uint64_t rows;     /* rows returned before deciding */
    uint64_t unordered_at_start;
    TupleTableSlot **ring; /* RING child rows (see read_ahead()) */
    HeapTupleData tuples[RING];
    uint64_t hashes[RING];
    int ring_len, ring_next;
    bool child_done;
};

/* The mask sites of this backend, one per column and argument types, kept
 * across executions: a site's rule and audit counters are looked up once
 * and stay valid while the rules and the audit period do (mask_cell() and
 * audit_cell() check their epochs), so an execution starts with them. */
struct SiteKey {
    Oid relid;
    AttrNumber attno;
    bool strict;
    Oid value_type, subject_type;
    bool operator==(const SiteKey &o) const
    {
        return relid == o.relid && attno == o.attno && strict == o.strict && value_type == o.value_type &&
               subject_type == o.subject_type;
    }
};
struct SiteKeyHash {
    size_t operator()(const SiteKey &k) const
    {
        return std::hash<uint64_t>()((uint64_t(k.relid) << 32) ^ (uint64_t(uint16_t(k.attno)) << 16) ^
                                     (uint64_t(k.value_type) * 31 + k.subject_type) ^ uint64_t(k.strict));
    }
};
std::unordered_map<SiteKey, MaskSite, SiteKeyHash> kept_sites;

/* At most this many kept sites (temporary tables made and dropped all day
 * would otherwise add sites for good); past it, an execution gets its own. */
constexpr size_t MAX_KEPT_SITES = 4096;

/* The kept sites of the last execution's columns, by position: a plan run
 * again (a prepared point look-up) asks for the same sites in the same
 * order, found here without hashing (kept sites never move or go away). */
constexpr int MEMO_COLUMNS = 64;
struct {
    SiteKey key;
    MaskSite *site;
} last_sites[MEMO_COLUMNS];

MaskSite *site_for(const SiteKey &k, int column)
{
    if (column < MEMO_COLUMNS && last_sites[column].site && last_sites[column].key == k)
        return last_sites[column].site;
    auto it = kept_sites.find(k);
    if (it != kept_sites.end()) {
        if (column < MEMO_COLUMNS)
            last_sites[column] = {k, &it->second};
        return &it->second;
    }
    MaskSite *own = nullptr;
    if (kept_sites.size() >= MAX_KEPT_SITES)
        own = new (palloc0(sizeof(MaskSite))) MaskSite(); /* the executor's memory, freed with it */
    MaskSite &site = own ? *own : kept_sites[k];
    site.relid = k.relid;
    site.attno = k.attno;
    site.strict = k.strict;
    site.value_type = k.value_type;
    site.subject_type = k.subject_type;
    return &site;
}

void begin_scan(CustomScanState *node, EState *estate, int eflags);
TupleTableSlot *exec_scan(CustomScanState *node);
void end_scan(CustomScanState *node);
void mark_pos(CustomScanState *node);
void restr_pos(CustomScanState *node);
void explain_scan(CustomScanState *node, List *ancestors, ExplainState *es);

void rescan(CustomScanState *node);

const CustomExecMethods exec_methods = {
    "ConsentMask", begin_scan, exec_scan, end_scan, rescan, mark_pos, restr_pos,
    nullptr,       nullptr,    nullptr,   nullptr,  nullptr, explain_scan,
};

Node *create_state(CustomScan *cs)
{
    const List *fields = node_fields(cs);
    int n = std::max(list_length(fields) - 1, 0) / FIELDS;
    /* the state, its columns and their sites in one allocation */
    size_t cols_at = MAXALIGN(sizeof(MaskScanState)), sites_at = cols_at + MAXALIGN(sizeof(Column) * size_t(n));
    char *block = static_cast<char *>(palloc0(sites_at + sizeof(MaskSite *) * size_t(std::max(n, 1))));
    auto *ms = reinterpret_cast<MaskScanState *>(block);
    NodeSetTag(&ms->css, T_CustomScanState);
    ms->css.methods = &exec_methods;
    ms->ncols = n;
    ms->cols = reinterpret_cast<Column *>(block + cols_at);
    ms->sites = reinterpret_cast<MaskSite **>(block + sites_at);
    ms->whole_input = (fields != NIL && (linitial_int(fields) & WHOLE_INPUT) != 0);
    entry([&] {
        const ListCell *field = n > 0 ? fields->elements + 1 : nullptr;
        for (int i = 0; i < n; i++, field += FIELDS) {
            Column &c = ms->cols[i];
            c.kind = Out(lfirst_int(&field[0]));
            c.src = lfirst_int(&field[1]);
            c.subj = lfirst_int(&field[2]);
            ms->maxsrc = std::max({ms->maxsrc, c.src, c.subj});
            if (c.kind == Out::Column)
                continue;
            SiteKey k{Oid(lfirst_int(&field[3])), AttrNumber(lfirst_int(&field[4])), c.kind == Out::Strict,
                      Oid(lfirst_int(&field[5])), Oid(lfirst_int(&field[6]))};
            if (c.kind == Out::Claimed) {
                /* decided in a claimed context: a site of this execution
                 * (in the executor's memory), not a kept one */
                auto *claim = (Const *)list_nth((List *)lsecond(cs->custom_private), i);
                auto *site = new (palloc0(sizeof(MaskSite))) MaskSite();
                site->relid = k.relid;
                site->attno = k.attno;
                site->value_type = k.value_type;
                site->subject_type = k.subject_type;
                site->claim = make_claim(claim->constvalue, CurrentMemoryContext, &site->strict);
                ms->sites[i] = site;
                continue;
            }
            ms->sites[i] = site_for(k, i);
            if (ms->subject_col == 0 && c.subj > 0 && c.kind != Out::Claimed) {
                ms->subject_col = c.subj;
                ms->subject_type = k.subject_type;
            }
        }
    });
    return (Node *)ms;
}

void begin_scan(CustomScanState *node, EState *estate, int eflags)
{
    auto *ms = reinterpret_cast<MaskScanState *>(node);
    auto *cs = (CustomScan *)node->ss.ps.plan;
    Plan *scan = (Plan *)linitial(cs->custom_plans);
    PlanState *child = ExecInitNode(scan, estate, eflags);
    ms->child = child;
    node->custom_ps = list_make1(child);
    /* A scan without an output list (mask_scan(): the relation's physical
     * list) returns its scan tuple, as with a list that matches it: ExecScan()
     * projects only when ps_ProjInfo is set, and every node that reads the
     * slot (this one) sees the scan's slot type. */
    if (scan->targetlist == NIL) {
        child->ps_ProjInfo = nullptr;
        child->resultops = child->scanops;
        child->resultopsfixed = child->scanopsfixed;
        child->resultopsset = child->scanopsset;
    }
    /* A node that describes its rows by the relation is still no scan of
     * it: WHERE CURRENT OF must not take its masked, virtual row for the
     * cursor's current row of the table (execCurrentOf() looks for scan
     * states that name the relation).  Nothing else reads it after set-up. */
    node->ss.ss_currentRelation = nullptr;
    /* reading ahead keeps no position of its own: never for a node asked
     * to mark, restore or go backwards */
    if (eflags & (EXEC_FLAG_MARK | EXEC_FLAG_BACKWARD) || ms->subject_col == 0)
        ms->whole_input = false;
}

/* EXPLAIN VERBOSE of a node that describes its rows by the relation: its
 * Output line lists the columns, this line the calls that mask them. */
void explain_scan(CustomScanState *node, List *ancestors, ExplainState *es)
{
    auto *cs = (CustomScan *)node->ss.ps.plan;
    /* EXPLAIN ANALYZE: whether the node read ahead (rows in no subject order) */
    if (es->analyze && reinterpret_cast<MaskScanState *>(node)->ahead)
        ExplainPropertyBool("Read Ahead", true, es);
    if (!es->verbose || cs->custom_exprs == NIL)
        return;
    List *context = set_deparse_context_plan(es->deparse_cxt, &cs->scan.plan, ancestors);
    List *shown = NIL;
    ListCell *lc;
    foreach (lc, cs->custom_exprs)
        shown = lappend(shown, deparse_expression((Node *)lfirst(lc), context, list_length(es->rtable) > 1, false));
    ExplainPropertyList("Masks", shown, es);
}

/* The node's row from the child's: no C++ object lives here. */
void fill(MaskScanState *ms, TupleTableSlot *in, TupleTableSlot *out)
{
    const Taxonomy &t = taxonomy();
    for (int i = 0; i < ms->ncols; i++) {
        const Column &c = ms->cols[i];
        Datum value = in->tts_values[c.src - 1];
        bool isnull = in->tts_isnull[c.src - 1];
        if (c.kind != Out::Column && !isnull) {
            bool subject_null = c.subj == 0 || in->tts_isnull[c.subj - 1];
            Datum subject = subject_null ? Datum(0) : in->tts_values[c.subj - 1];
            MaskedValue m = mask_cell(*ms->sites[i], t, value, subject, subject_null);
            value = m.value;
            isnull = m.isnull;
        }
        out->tts_values[i] = value;
        out->tts_isnull[i] = isnull;
    }
}

/* Reads the child's next row into the ring (false at its end): starts
 * loading its subject's slot, and the record of the row read LATER rows
 * before it (whose slot has arrived by now), into the CPU cache. */
bool read_ahead(MaskScanState *ms)
{
    if (ms->child_done)
        return false;
    TupleTableSlot *in = ExecProcNode(ms->child);
    if (TupIsNull(in)) {
        ms->child_done = true;
        for (int i = 0; i < std::min(ms->ring_len, RECORD_LATER); i++)
            shared::prefetch_record(ms->hashes[(ms->ring_next + ms->ring_len - 1 - i) % RING]);
        return false;
    }
    if (!ms->ring) {
        /* the ring's slots, of the child's rows' type (its scan tuple's
         * when it returns it as it is) */
        EState *estate = ms->css.ss.ps.state;
        MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
        ms->ring = static_cast<TupleTableSlot **>(palloc(sizeof(TupleTableSlot *) * RING));
        for (int i = 0; i < RING; i++)
            ms->ring[i] =
                ExecAllocTableSlot(&estate->es_tupleTable, in->tts_tupleDescriptor, &TTSOpsBufferHeapTuple);
        MemoryContextSwitchTo(old);
    }
    int at = (ms->ring_next + ms->ring_len) % RING;
    /* A row the scan returns as it lies in a shared buffer stays there:
     * the ring's slot takes its own pin on the buffer, which keeps the
     * tuple in place as the scan's slot does (a heap page is pruned or
     * defragmented only under a cleanup lock, which waits for every pin),
     * and its bytes start coming into the CPU cache (read RING - 1 rows
     * later).  Any other row is copied. */
    TupleTableSlot *copy;
    auto *b = reinterpret_cast<BufferHeapTupleTableSlot *>(in);
    if (TTS_IS_BUFFERTUPLE(in) && BufferIsValid(b->buffer)) {
        ms->tuples[at] = *b->base.tuple;
        copy = ExecStoreBufferHeapTuple(&ms->tuples[at], ms->ring[at], b->buffer);
        const char *data = reinterpret_cast<const char *>(ms->tuples[at].t_data);
        for (uint32 off = 0; off < ms->tuples[at].t_len; off += 64)
            __builtin_prefetch(data + off);
    } else {
        copy = ExecCopySlot(ms->ring[at], in);
    }
    slot_getsomeattrs(copy, ms->subject_col);
    char buf[64];
    uint64_t h = 0;
    if (!copy->tts_isnull[ms->subject_col - 1]) {
        /* a text subject stored out of line is read in the row's memory */
        MemoryContext old = MemoryContextSwitchTo(ms->css.ss.ps.ps_ExprContext->ecxt_per_tuple_memory);
        h = shared::prefetch_slot(subject_key(copy->tts_values[ms->subject_col - 1], ms->subject_type, buf));
        MemoryContextSwitchTo(old);
    }
    ms->hashes[at] = h;
    if (ms->ring_len >= RECORD_LATER)
        shared::prefetch_record(ms->hashes[(at + RING - RECORD_LATER) % RING]);
    ms->ring_len++;
    return true;
}

/* The child's next row: from the ring when reading ahead.  The ring holds
 * up to RING - 1 rows ahead: the row returned last stays untouched until
 * the next call. */
TupleTableSlot *next_row(MaskScanState *ms)
{
    if (!ms->ahead) {
        if (ms->whole_input) {
            /* rows in no subject order: most look-ups were not the next record */
            if (ms->rows == 0)
                ms->unordered_at_start = shared::unordered_lookups();
            else if (ms->rows == ORDER_SAMPLE) {
                ms->ahead = shared::unordered_lookups() - ms->unordered_at_start > ORDER_SAMPLE / 2;
                ms->whole_input = ms->ahead;
            }
            ms->rows++;
        }
        if (!ms->ahead)
            return ExecProcNode(ms->child);
    }
    while (ms->ring_len < RING - 1 && read_ahead(ms)) {
    }
    if (ms->ring_len == 0)
        return nullptr;
    TupleTableSlot *row = ms->ring[ms->ring_next];
    ms->ring_next = (ms->ring_next + 1) % RING;
    ms->ring_len--;
    return row;
}

TupleTableSlot *exec_scan(CustomScanState *node)
{
    auto *ms = reinterpret_cast<MaskScanState *>(node);
    ExprContext *econtext = node->ss.ps.ps_ExprContext;
    ResetExprContext(econtext);
    TupleTableSlot *in = next_row(ms);
    if (TupIsNull(in))
        return nullptr;
    slot_getsomeattrs(in, ms->maxsrc);
    TupleTableSlot *out = node->ss.ss_ScanTupleSlot;
    ExecClearTuple(out);
    /* masked values live until the next row, like a projection's */
    MemoryContext old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
    entry([&] { fill(ms, in, out); });
    MemoryContextSwitchTo(old);
    ExecStoreVirtualTuple(out);
    if (node->ss.ps.ps_ProjInfo) {
        econtext->ecxt_scantuple = out;
        return ExecProject(node->ss.ps.ps_ProjInfo);
    }
    return out;
}

void end_scan(CustomScanState *node)
{
    ExecEndNode(reinterpret_cast<MaskScanState *>(node)->child);
}


void rescan(CustomScanState *node)
{
    auto *ms = reinterpret_cast<MaskScanState *>(node);
    ms->ring_len = ms->ring_next = 0;
    ms->child_done = false;
    rescan_child(node);
}

/* Marks and restores are the scan's: a node asked for them keeps no rows
 * of its own (it does not read ahead). */
void mark_pos(CustomScanState *node)
{
    ExecMarkPos(reinterpret_cast<MaskScanState *>(node)->child);
}

void restr_pos(CustomScanState *node)
{
    ExecRestrPos(reinterpret_cast<MaskScanState *>(node)->child);
}

} // namespace

void rescan_child(CustomScanState *node)
{
    auto *child = (PlanState *)linitial(node->custom_ps);
    if (node->ss.ps.chgParam != nullptr)
        UpdateChangedParamSet(child, node->ss.ps.chgParam);
    /* a child with changed parameters is rescanned by its next ExecProcNode */
    if (child->chgParam == nullptr)
        ExecReScan(child);
}

int max_plan_node_id(const PlannedStmt *stmt)
{
    int m = max_plan_node_id(stmt->planTree);
    for_each_plan_in(stmt->subplans, [&](Plan *&sub) { m = std::max(m, max_plan_node_id(sub)); });
    return m;
}

void mask_scans(PlannedStmt *stmt, const Taxonomy &t)
{
    if (!mask_scan_enabled || !OidIsValid(t.mask_func))
        return;
    Transform tf{t, stmt->rtable, max_plan_node_id(stmt) + 1};
    stmt->planTree = transform(stmt->planTree, tf);
    for_each_plan_in(stmt->subplans, [&](Plan *&sub) { sub = transform(sub, tf); });
}

void register_mask_scan()
{
    RegisterCustomScanMethods(&plan_methods);
}

} // namespace consent
