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
 * ROLE): its rows are unmasked.
 *
 * Owns: the plan marking and the counting function.
 * Must never: mark a scan it does not understand (the caller masks
 * instead), or count a cell for a relation the statement does not read.
 */
#include "bypass.h"
#include "plan_tree.h"
#include "audit.h"
#include "boundary.h"
#include "consent.h"
#include "decision.h"
#include "taxonomy.h"

extern "C" {
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
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

} // namespace consent

using namespace consent;

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
};

pg_noinline UnmaskedSite *describe_unmasked(FunctionCallInfo fcinfo)
{
    auto *call = reinterpret_cast<FuncExpr *>(fcinfo->flinfo->fn_expr);
    if (!call || !IsA(call, FuncExpr) || call->funcformat != COERCE_SQL_SYNTAX || call->funcvariadic ||
        PG_NARGS() < 4 || PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("consent._read_unmasked is called by the planner only")));
    ArrayType *arr = PG_GETARG_ARRAYTYPE_P(2);
    Datum *elems;
    bool *nulls;
    int n;
    deconstruct_array(arr, INT2OID, sizeof(int16), true, TYPALIGN_SHORT, &elems, &nulls, &n);
    if (n != PG_NARGS() - 3)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("consent._read_unmasked is called by the planner only")));
    MemoryContext cxt = fcinfo->flinfo->fn_mcxt;
    auto *site = (UnmaskedSite *)MemoryContextAllocZero(cxt, sizeof(UnmaskedSite));
    site->relid = PG_GETARG_OID(0);
    site->role = PG_GETARG_OID(1);
    site->n = n;
    site->attnos = (AttrNumber *)MemoryContextAllocZero(cxt, sizeof(AttrNumber) * size_t(n));
    site->rules = (const ColumnRule **)MemoryContextAllocZero(cxt, sizeof(ColumnRule *) * size_t(n));
    site->slots = (AuditSlot *)MemoryContextAllocZero(cxt, sizeof(AuditSlot) * size_t(n));
    for (int i = 0; i < n; i++) {
        if (nulls[i])
            ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                            errmsg("consent._read_unmasked is called by the planner only")));
        site->attnos[i] = DatumGetInt16(elems[i]);
        new (&site->slots[i]) AuditSlot();
    }
    fcinfo->flinfo->fn_extra = site;
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
}

} // namespace

/* consent._read_unmasked(relation, role, columns, VARIADIC cells): true;
 * counts the non-NULL cells as revealed to the acting role. */
CONSENT_FUNCTION(consent_read_unmasked)
{
    return entry([&]() -> Datum {
        auto *site = static_cast<UnmaskedSite *>(fcinfo->flinfo->fn_extra);
        if (unlikely(!site))
            site = pg([&] { return describe_unmasked(fcinfo); });
        if (unlikely(site->statement != GetCurrentStatementStartTimestamp()))
            check_unmasked_role(*site);
        if (!audit_counting)
            PG_RETURN_BOOL(true);
        if (unlikely(site->epoch != rules_epoch()))
            pg([&] { resolve_unmasked(*site); });
        const SessionContext &ctx = session_context();
        for (int i = 0; i < site->n; i++)
            if (!PG_ARGISNULL(3 + i) && site->rules[i])
                audit_cell(*site->rules[i], site->relid, site->attnos[i], ctx.purpose, ctx.serial, true,
                           site->slots[i]);
        PG_RETURN_BOOL(true);
    });
}
