/*
 * bypass.cpp — statements planned for a role that sees every value.
 *
 * A superuser or a role with BYPASSRLS sees every tagged cell unmasked, as
 * it sees every row past row-level security.  Like PostgreSQL's row-level
 * security, the rewrite decides this when the statement is planned: while
 * the acting role (GetOuterUserId(), which SECURITY DEFINER functions do
 * not change) is such a role it puts no masking expression in (the planner
 * then sees the plain columns: indexes on them, no function call per
 * cell).  Cached plans made so are dropped when the acting role changes
 * (SET ROLE, SET SESSION AUTHORIZATION) or a role's attributes change
 * (unmasked_roles_changed()); the plan is also marked as depending on the
 * role (PlannedStmt.dependsOnRole).
 *
 * The audit still counts what such a role reads: each scan of a relation
 * whose tagged columns the statement reads gets one more qual, last,
 *     consent._read_unmasked(relation, role, columns, cell, cell, ...)
 * which is true, and counts the row's non-NULL cells as revealed.  At
 * each statement it runs in, it refuses to go on unless the role the
 * session acts under still bypasses masking (a cursor fetched after SET
 * ROLE): its rows are unmasked.  The plan carries the call (plan caching,
 * EXPLAIN, parallel workers all see it); after ExecutorStart,
 * count_unmasked_reads() swaps its compiled form for a CountingQual that
 * runs the scan's other quals and then reads the cells' NULL flags straight
 * from the scan tuple, with no function call per row.  The call itself
 * runs where the swap is not made (a SubPlan among the other quals, whose
 * state cannot be compiled twice; an EvalPlanQual recheck, whose executor
 * state is built without ExecutorStart): both count the same.
 *
 * Owns: the plan marking, the counting qual and the counting function.
 * Must never: mark a scan it does not understand (the caller masks
 * instead), or count a cell for a relation the statement does not read.
 */
#include "bypass.h"
#include "plan_tree.h"
#include "audit.h"
#include "boundary.h"
#include "compat.h"
#include "consent.h"
#include "decision.h"
#include "taxonomy.h"

#include <algorithm>

extern "C" {
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "optimizer/clauses.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
}

namespace consent {

void note_unmasked_read(UnmaskedReads &reads, Oid relid, AttrNumber attno)
{
    ListCell *lr, *lc;
    forboth (lr, reads.relids, lc, reads.columns) {
        if (lfirst_oid(lr) == relid) {
            lfirst(lc) = bms_add_member((Bitmapset *)lfirst(lc), attno);
            return;
        }
    }
    reads.relids = lappend_oid(reads.relids, relid);
    reads.columns = lappend(reads.columns, bms_make_singleton(attno));
}

namespace {

/* Whether this backend made a plan for a bypass role since the last
 * role change (only then do role changes drop cached plans). */
bool unmasked_plans = false;

struct Marking {
    PlannedStmt *stmt;
    const UnmaskedReads *reads;
    Oid role;
    Oid func;
    bool ok = true;
};

const Bitmapset *columns_read(const Marking &m, Oid relid)
{
    ListCell *lr, *lc;
    forboth (lr, m.reads->relids, lc, m.reads->columns)
        if (lfirst_oid(lr) == relid)
            return (const Bitmapset *)lfirst(lc);
    return nullptr;
}

AppendRelInfo *parent_of(const PlannedStmt *stmt, Index rti)
{
    ListCell *lc;
    foreach (lc, stmt->appendRelations) {
        auto *a = (AppendRelInfo *)lfirst(lc);
        if (a->child_relid == rti)
            return a;
    }
    return nullptr;
}

/* The child attribute a parent attribute is in, through the inheritance
 * steps from the statement's relation down to the scanned one (0: none). */
AttrNumber child_attno(List *steps, AttrNumber attno)
{
    ListCell *lc;
    foreach (lc, steps) {
        auto *a = (AppendRelInfo *)lfirst(lc);
        AttrNumber found = 0;
        for (int c = 0; c < a->num_child_cols && !found; c++)
            if (a->parent_colnos[c] == attno)
                found = AttrNumber(c + 1);
        if (!found)
            return 0;
        attno = found;
    }
    return attno;
}

/* The position of the column in an index-only scan's index tuple (0: not there). */
AttrNumber index_position(const IndexOnlyScan *ios, Index rti, AttrNumber attno)
{
    ListCell *lc;
    foreach (lc, ios->indextlist) {
        auto *te = (TargetEntry *)lfirst(lc);
        auto *v = (Var *)te->expr;
        if (IsA(v, Var) && v->varno == int(rti) && v->varattno == attno)
            return te->resno;
    }
    return 0;
}

/* The counting qual for one scan, or nullptr when the scan reads none of
 * the tagged columns the statement reads.  Sets m.ok = false for a scan
 * it cannot count. */
Expr *counting_qual(Marking &m, Scan *scan, bool countable)
{
    Index rti = scan->scanrelid;
    if (rti < 1 || int(rti) > list_length(m.stmt->rtable))
        return nullptr;
    RangeTblEntry *rte = rt_fetch(rti, m.stmt->rtable);
    if (rte->rtekind != RTE_RELATION || !relation_has_tagged_column(rte->relid))
        return nullptr;
    /* the relation as the statement named it: up the inheritance tree */
    List *steps = NIL;
    Oid relid = rte->relid;
    for (AppendRelInfo *a = parent_of(m.stmt, rti); a; a = parent_of(m.stmt, a->parent_relid)) {
        RangeTblEntry *parent = rt_fetch(a->parent_relid, m.stmt->rtable);
        if (parent->rtekind != RTE_RELATION)
            break;
        steps = lcons(a, steps);
        relid = parent->relid;
    }
    const Bitmapset *read = columns_read(m, relid);
    if (!read)
        return nullptr;
    if (!countable) {
        m.ok = false;
        return nullptr;
    }
    List *attnos = NIL;
    List *cells = NIL;
    int attno = -1;
    while ((attno = bms_next_member(read, attno)) >= 0) {
        AttrNumber c = child_attno(steps, AttrNumber(attno));
        if (c <= 0)
            continue;
        Oid type, coll;
        int32 typmod;
        get_atttypetypmodcoll(rte->relid, c, &type, &typmod, &coll);
        Var *v;
        if (IsA(scan, IndexOnlyScan)) {
            AttrNumber pos = index_position((IndexOnlyScan *)scan, rti, c);
            if (!pos)
                continue; /* not in the index: this scan does not read it */
            v = makeVar(INDEX_VAR, pos, type, typmod, coll, 0);
        } else {
            v = makeVar(int(rti), c, type, typmod, coll, 0);
        }
        attnos = lappend_int(attnos, attno);
        cells = lappend(cells, v);
    }
    if (cells == NIL)
        return nullptr;
    int n = list_length(attnos);
    Datum *elems = (Datum *)palloc(sizeof(Datum) * size_t(n));
    int i = 0;
    ListCell *lc;
    foreach (lc, attnos)
        elems[i++] = Int16GetDatum(int16(lfirst_int(lc)));
    ArrayType *arr = construct_array(elems, n, INT2OID, sizeof(int16), true, TYPALIGN_SHORT);
    List *args = list_make3(makeConst(OIDOID, -1, InvalidOid, sizeof(Oid), ObjectIdGetDatum(relid), false, true),
                            makeConst(OIDOID, -1, InvalidOid, sizeof(Oid), ObjectIdGetDatum(m.role), false, true),
                            makeConst(INT2ARRAYOID, -1, InvalidOid, -1, PointerGetDatum(arr), false, false));
    FuncExpr *f = makeFuncExpr(m.func, BOOLOID, list_concat(args, cells), InvalidOid, InvalidOid,
                               COERCE_EXPLICIT_CALL);
    /* The mark of the planner: the parser never makes this form for a
     * call of a function of ours (only for SQL-syntax built-ins). */
    f->funcformat = COERCE_SQL_SYNTAX;
    return (Expr *)f;
}

void mark_plan(Marking &m, Plan *p)
{
    if (!m.ok)
        return;
    if (scans_heap(p)) {
        if (Expr *q = counting_qual(m, (Scan *)p, true))
            p->qual = lappend(p->qual, q);
    } else if (IsA(p, ForeignScan)) {
        counting_qual(m, (Scan *)p, false);
    } else if (IsA(p, CustomScan)) {
        counting_qual(m, &((CustomScan *)p)->scan, false);
    }
    for_each_child_plan(p, [&](Plan *&child) { mark_plan(m, child); });
}

} // namespace

bool mark_unmasked_reads(PlannedStmt *stmt, const UnmaskedReads &reads, Oid role, Oid func)
{
    Marking m{stmt, &reads, role, func};
    /* the counting quals go into copies: nothing changes when one scan
     * cannot be counted */
    Plan *tree = (Plan *)copyObjectImpl(stmt->planTree);
    List *subplans = (List *)copyObjectImpl(stmt->subplans);
    mark_plan(m, tree);
    for_each_plan_in(subplans, [&](Plan *&sub) { mark_plan(m, sub); });
    if (!m.ok)
        return false;
    stmt->planTree = tree;
    stmt->subplans = subplans;
    stmt->dependsOnRole = true;
    unmasked_plans = true;
    return true;
}

void unmasked_roles_changed() noexcept
{
    if (!unmasked_plans)
        return;
    unmasked_plans = false;
    ResetPlanCache();
}

namespace {

/* One counting qual: what it counts, per column the rule and audit slot. */
struct UnmaskedSite {
    Oid relid;
    Oid role;
    int n;
    TimestampTz statement; /* the statement the role was checked for */
    uint64_t epoch;
    AttrNumber *attnos;
    const ColumnRule **rules;
    AuditSlot *slots;
    /* While the audit epoch and the session context stay what they were
     * when every column's slot was set: per column, the counter of its
     * revealed cells (sink for an untagged one), incremented directly. */
    uint64 counted_epoch;
    uint64 counted_context;
    uint64 **counters;
};

uint64 sink; /* the count of cells of columns no rule tags */

/* The site of the planner's columns array (attribute numbers of the
 * relation the statement names, one per cell), in cxt; nullptr when the
 * array is not one of ours. */
UnmaskedSite *make_site(Oid relid, Oid role, ArrayType *columns, int cells, MemoryContext cxt)
{
    Datum *elems;
    bool *nulls;
    int n;
    deconstruct_array(columns, INT2OID, sizeof(int16), true, TYPALIGN_SHORT, &elems, &nulls, &n);
    if (n != cells)
        return nullptr;
    for (int i = 0; i < n; i++)
        if (nulls[i])
            return nullptr;
    auto *site = (UnmaskedSite *)MemoryContextAllocZero(cxt, sizeof(UnmaskedSite));
    site->relid = relid;
    site->role = role;
    site->n = n;
    site->attnos = (AttrNumber *)MemoryContextAllocZero(cxt, sizeof(AttrNumber) * size_t(n));
    site->rules = (const ColumnRule **)MemoryContextAllocZero(cxt, sizeof(ColumnRule *) * size_t(n));
    site->slots = (AuditSlot *)MemoryContextAllocZero(cxt, sizeof(AuditSlot) * size_t(n));
    site->counters = (uint64 **)MemoryContextAllocZero(cxt, sizeof(uint64 *) * size_t(n));
    for (int i = 0; i < n; i++) {
        site->attnos[i] = DatumGetInt16(elems[i]);
        new (&site->slots[i]) AuditSlot();
    }
    return site;
}

/* Once per statement (each FETCH of a cursor is one): the rows are
 * unmasked, so the role the session acts under must still see every
 * value. */
pg_noinline void check_unmasked_role(UnmaskedSite &site)
{
    if (!role_bypasses(GetOuterUserId()))
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "cannot return rows planned for a role that sees every value",
                    "The statement was planned for a superuser or a role with BYPASSRLS, and the role this "
                    "session acts under changed since to one whose reads are masked.",
                    "Close the cursor and run the query again.");
    site.statement = GetCurrentStatementStartTimestamp();
}

pg_noinline void resolve_unmasked(UnmaskedSite &site)
{
    for (int i = 0; i < site.n; i++)
        site.rules[i] = column_rule(site.relid, site.attnos[i]);
    site.epoch = rules_epoch();
    site.counted_epoch = 0;
}

/* Counts through the audit's slots; once every tagged column's slot is
 * set for this epoch and context, the next rows count directly. */
template <typename IsNull>
pg_noinline void count_row_slow(UnmaskedSite &site, IsNull &&is_null, const SessionContext &ctx)
{
    uint64 context = ctx.serial;
    for (int i = 0; i < site.n; i++)
        if (!is_null(i) && site.rules[i])
            audit_cell(*site.rules[i], site.relid, site.attnos[i], ctx.purpose, context, true, site.slots[i]);
    /* after every count: a new entry may have moved the others */
    bool ready = true;
    for (int i = 0; i < site.n; i++) {
        const AuditSlot &slot = site.slots[i];
        ready = ready && (!site.rules[i] || (slot.epoch == detail::audit_epoch && slot.context == context));
        site.counters[i] = site.rules[i] ? slot.revealed : &sink;
    }
    if (ready) {
        site.counted_epoch = detail::audit_epoch;
        site.counted_context = context;
    }
}

/* One row read: checks the acting role once per statement and counts the
 * row's non-NULL cells (is_null(i): whether the i-th is NULL) as revealed.
 * Runs inside entry(). */
template <typename IsNull> void count_row(UnmaskedSite &site, IsNull &&is_null)
{
    if (unlikely(site.statement != GetCurrentStatementStartTimestamp()))
        check_unmasked_role(site);
    if (!audit_counting)
        return;
    if (unlikely(site.epoch != rules_epoch()))
        pg([&] { resolve_unmasked(site); });
    const SessionContext &ctx = session_context();
    if (likely(site.counted_epoch == detail::audit_epoch && site.counted_context == ctx.serial)) {
        for (int i = 0; i < site.n; i++)
            *site.counters[i] += !is_null(i);
        return;
    }
    count_row_slow(site, is_null, ctx);
}

/* A counting qual as the executor runs it (count_unmasked_reads): an
 * ExprState whose evaluation runs the scan's other quals, then counts the
 * cells straight from the scan tuple, without a function call. */
struct CountingQual {
    ExprState state; /* first: ExecQual() sees an ExprState */
    ExprState *rest; /* the scan's other quals, first (nullptr: none) */
    UnmaskedSite *site;
    AttrNumber *cells; /* per column, its position in the scan tuple */
    AttrNumber last;   /* the highest position */
};

Datum evaluate_counting_qual(ExprState *state, ExprContext *econtext, bool *isnull)
{
    auto *q = reinterpret_cast<CountingQual *>(state);
    *isnull = false;
    if (q->rest && !ExecQual(q->rest, econtext))
        return BoolGetDatum(false);
    TupleTableSlot *slot = econtext->ecxt_scantuple;
    slot_getsomeattrs(slot, q->last);
    entry([&] { count_row(*q->site, [&](int i) { return slot->tts_isnull[q->cells[i] - 1]; }); });
    return BoolGetDatum(true);
}

/* The planner's counting qual, if e is one: consent._read_unmasked(relation,
 * role, columns, cells...) in the planner's form, every cell a column of
 * the scan tuple. */
const FuncExpr *counting_call(const Node *e, Oid func)
{
    if (!e || !IsA(e, FuncExpr))
        return nullptr;
    auto *f = (const FuncExpr *)e;
    if (f->funcid != func || f->funcformat != COERCE_SQL_SYNTAX || f->funcvariadic || list_length(f->args) < 4)
        return nullptr;
    for (int i = 0; i < 3; i++) {
        auto *c = (const Const *)list_nth(f->args, i);
        if (!IsA(c, Const) || c->constisnull)
            return nullptr;
    }
    for (int i = 3; i < list_length(f->args); i++) {
        auto *v = (const Var *)list_nth(f->args, i);
        if (!IsA(v, Var) || v->varno == INNER_VAR || v->varno == OUTER_VAR || v->varattno <= 0)
            return nullptr;
    }
    return f;
}

struct Counting {
    Oid func;
    MemoryContext cxt;
};

/* One scan: its counting qual, compiled by ExecInitNode as a function
 * call, becomes a CountingQual. */
void replace_counting_qual(PlanState *ps, const Counting &c)
{
    List *quals = ps->plan->qual;
    const FuncExpr *f = quals ? counting_call((const Node *)llast(quals), c.func) : nullptr;
    if (!f || !ps->qual)
        return;
    List *rest = list_copy(quals);
    rest = list_delete_last(rest);
    /* compiling a SubPlan again would start it twice: such scans keep the call */
    if (contain_subplans((Node *)rest))
        return;
    int cells = list_length(f->args) - 3;
    UnmaskedSite *site = make_site(DatumGetObjectId(((Const *)linitial(f->args))->constvalue),
                                   DatumGetObjectId(((Const *)lsecond(f->args))->constvalue),
                                   DatumGetArrayTypeP(((Const *)lthird(f->args))->constvalue), cells, c.cxt);
    if (!site)
        return;
    auto *q = (CountingQual *)MemoryContextAllocZero(c.cxt, sizeof(CountingQual));
    q->state.type = T_ExprState;
    q->state.flags = EEO_FLAG_IS_QUAL;
    q->state.expr = (Expr *)f;
    q->state.parent = ps;
    q->state.evalfunc = evaluate_counting_qual;
    q->rest = rest ? ExecInitQual(rest, ps) : nullptr;
    q->site = site;
    q->cells = (AttrNumber *)MemoryContextAlloc(c.cxt, sizeof(AttrNumber) * size_t(cells));
    for (int i = 0; i < cells; i++) {
        q->cells[i] = ((const Var *)list_nth(f->args, 3 + i))->varattno;
        q->last = std::max(q->last, q->cells[i]);
    }
    ps->qual = &q->state;
}

bool replace_counting_quals(PlanState *ps, void *context)
{
    if (!ps)
        return false;
    if (scans_heap(ps->plan))
        replace_counting_qual(ps, *static_cast<const Counting *>(context));
    return planstate_tree_walker(ps, CONSENT_PLANSTATE_WALKER(replace_counting_quals), context);
}

} // namespace

void count_unmasked_reads(QueryDesc *desc, int eflags)
{
    /* only plans made for a bypass role hold counting quals */
    if (!desc->planstate || !desc->plannedstmt->dependsOnRole || (eflags & EXEC_FLAG_EXPLAIN_ONLY))
        return;
    const Taxonomy &t = taxonomy();
    if (!OidIsValid(t.unmasked_func))
        return;
    Counting c{t.unmasked_func, desc->estate->es_query_cxt};
    pg([&] {
        MemoryContext old = MemoryContextSwitchTo(c.cxt);
        replace_counting_quals(desc->planstate, &c);
        MemoryContextSwitchTo(old);
    });
}

} // namespace consent

using namespace consent;

/* consent._read_unmasked(relation, role, columns, VARIADIC cells): true;
 * counts the non-NULL cells as revealed to the acting role.  The executor
 * runs the scans of a statement as CountingQuals instead; this call
 * remains where it does not (a scan with a SubPlan among its quals, an
 * EvalPlanQual recheck). */
CONSENT_FUNCTION(consent_read_unmasked)
{
    return entry([&]() -> Datum {
        auto *site = static_cast<UnmaskedSite *>(fcinfo->flinfo->fn_extra);
        if (unlikely(!site))
            site = pg([&] {
                auto *call = reinterpret_cast<FuncExpr *>(fcinfo->flinfo->fn_expr);
                UnmaskedSite *s = nullptr;
                if (call && IsA(call, FuncExpr) && call->funcformat == COERCE_SQL_SYNTAX && !call->funcvariadic &&
                    PG_NARGS() >= 4 && !PG_ARGISNULL(0) && !PG_ARGISNULL(1) && !PG_ARGISNULL(2))
                    s = make_site(PG_GETARG_OID(0), PG_GETARG_OID(1), PG_GETARG_ARRAYTYPE_P(2), PG_NARGS() - 3,
                                  fcinfo->flinfo->fn_mcxt);
                if (!s)
                    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                                    errmsg("consent._read_unmasked is called by the planner only")));
                fcinfo->flinfo->fn_extra = s;
                return s;
            });
        count_row(*site, [&](int i) { return PG_ARGISNULL(3 + i); });
        PG_RETURN_BOOL(true);
    });
}
