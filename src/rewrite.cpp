/*
 * rewrite.cpp — the planner hook that wraps every reference to a tagged
 * column in a masking expression, and the masking functions it calls.
 *
 * After parse analysis and the rewriter (views and RLS already expanded),
 * each Var of a consent-tagged column of a table becomes
 *     consent._mask(col, subject_col, relid, attno)::tagged_type
 * which decides at execution time (so cached plans stay right when the
 * purpose, the role or consent changes).  WHERE, JOIN, GROUP BY, ORDER BY
 * and window clauses therefore see masked values.  In the target list of
 * INSERT/UPDATE/MERGE (values that will be stored) the reference becomes
 * consent._mask_strict(...), which fails with 42501 instead of storing a
 * masked value.
 *
 * Owns: the tree walk and the SQL-callable mask functions.
 * Must never: skip a query level (sublinks, CTEs, subqueries, RLS quals,
 * join alias lists, function RTEs, whole-row references); hold C++ objects
 * in the frames of the walk (it calls PostgreSQL directly).
 */
#include "audit.h"
#include "boundary.h"
#include "bypass.h"
#include "citus.h"
#include "compat.h"
#include "consent.h"
#include "decision.h"
#include "invalidation.h"
#include "maskscan.h"
#include "parallel.h"
#include "plan_tree.h"
#include "shared_state.h"
#include "taxonomy.h"

extern "C" {
#include "access/relation.h"
#include "access/transam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/syscache.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "parser/parse_coerce.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/inval.h"
#include "utils/array.h"
#include "utils/builtins.h"
}

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace consent {

namespace {

planner_hook_type prev_planner = nullptr;

/* getBaseType() remembered per backend: the mask functions check their
 * argument types once per execution of each call site.  Any change of a
 * type (a TYPEOID invalidation) forgets all. */
std::unordered_map<Oid, Oid> base_types;
Oid base_type_of(Oid type)
{
    auto it = base_types.find(type);
    if (it != base_types.end())
        return it->second;
    Oid base = getBaseType(type);
    base_types.emplace(type, base);
    return base;
}
needs_fmgr_hook_type prev_needs_fmgr = nullptr;
fmgr_hook_type prev_fmgr = nullptr;
/* Citus's functions that distribute tables, as needs_fmgr() met them: the
 * fmgr hook acts at their end only. */
std::vector<Oid> distribution_fns;

/* Functions known not to be set-returning SQL functions, direct-mapped by
 * OID: every execution sets up the same few (operators, output functions,
 * the mask functions), each of which would otherwise be looked up in the
 * catalog cache through the boundary.  Valid while no pg_proc row changed
 * (CREATE OR REPLACE may change a function's language). */
struct NotSqlSrf {
    Oid fn = InvalidOid;
    uint64_t generation = 0;
};
NotSqlSrf not_sql_srf[256];
uint64_t proc_generation = 1;

bool known_not_sql_srf(Oid fn_oid)
{
    const NotSqlSrf &m = not_sql_srf[fn_oid & 255];
    return m.fn == fn_oid && m.generation == proc_generation;
}

/* The set-returning SQL function the walk is inlining right now: the one
 * function PostgreSQL's inliner may expand while the walk asks it to. */
Oid inlining_now = InvalidOid;

/* Which functions PostgreSQL must call through the fmgr hook instead of
 * inlining them.  Only a set-returning SQL function can bring a table read
 * into a plan when inlined (a scalar one is inlined only when its body is a
 * single expression without FROM or sub-selects, over arguments the walk
 * has already masked).  The walk inlines those itself, before it masks
 * (inline_srf() below), so the planner's own inlining after this hook ran
 * must never expand one: it would escape the walk.  Everything else is
 * inlined as PostgreSQL always does. */
bool needs_fmgr(Oid fn_oid)
{
    if (prev_needs_fmgr && prev_needs_fmgr(fn_oid))
        return true;
    if (known_not_sql_srf(fn_oid) || fn_oid == inlining_now)
        return false;
    HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
    if (!HeapTupleIsValid(tup))
        return false;
    auto *proc = (Form_pg_proc)GETSTRUCT(tup);
    bool sql_srf = proc->prolang == SQLlanguageId && proc->proretset;
    bool distributes = citus::distributes_tables(proc);
    ReleaseSysCache(tup);
    /* Citus: after a function that distributes tables, the fmgr hook
     * tells the other nodes which of them are protected */
    if (distributes && IsTransactionState() && entry([] { return citus::active(); })) {
        if (std::find(distribution_fns.begin(), distribution_fns.end(), fn_oid) == distribution_fns.end())
            distribution_fns.push_back(fn_oid);
        return true;
    }
    if (!sql_srf)
        not_sql_srf[fn_oid & 255] = {fn_oid, proc_generation};
    return sql_srf && IsTransactionState() && taxonomy().installed;
}

struct WalkContext {
    List *levels; /* Query nodes, innermost first */
    bool strict;  /* inside expressions whose value will be stored */
    const Taxonomy *tax;
    /* what inlining set-returning functions adds to the plan's
     * dependencies (PostgreSQL's inliner records them here) */
    PlannerInfo *inline_root;
    bool masked = false;          /* a mask call was put in */
    bool leader_only_mask = false; /* one masks with a function not PARALLEL SAFE */
    /* Citus: the claim of the query being rewritten, from the node that
     * sent it (consent._mask_remote), while its argument is rewritten */
    Const *claim = nullptr;
    bool remote = false; /* a column of a Citus table went out with a claim */
    /* the statement reads a Citus table: every tagged column goes out
     * with a claim (remote_expr()) */
    bool citus_query = false;
    /* ... and has an aggregate over DISTINCT values: every level reading a
     * Citus table gets claim markers (add_claim_markers()) */
    bool distinct_aggregates = false;
    /* planned for a role that sees every value (bypass.cpp): the tagged
     * columns read are noted instead of masked */
    bool bypass = false;
    UnmaskedReads reads;
};

/* A column whose mask is a function of the user's that is not PARALLEL
 * SAFE: the statement gets no parallel plan (its cells may be masked in
 * workers otherwise). */
void note_mask(const ColumnRule &rule, WalkContext *cx)
{
    cx->masked = true;
    if (OidIsValid(rule.mask.func) && !cx->leader_only_mask && func_parallel(rule.mask.func) != PROPARALLEL_SAFE)
        cx->leader_only_mask = true;
}

Node *mutate_expr(Node *node, WalkContext *cx);
void mutate_query(Query *q, bool strict_targets, WalkContext *cx);

bool is_write(const Query *q)
{
    return q->commandType == CMD_INSERT || q->commandType == CMD_UPDATE || q->commandType == CMD_MERGE;
}

/* Whether a query reads a Citus table (at any level). */
bool reads_citus_table(Node *node, void *)
{
    if (node == nullptr)
        return false;
    if (IsA(node, RangeTblEntry)) {
        auto *rte = (RangeTblEntry *)node;
        return rte->rtekind == RTE_RELATION && citus::is_citus_table(rte->relid);
    }
    if (IsA(node, Query))
        return query_tree_walker((Query *)node,
                                 as_walker(reads_citus_table), nullptr,
                                 QTW_EXAMINE_RTES_BEFORE);
    return expression_tree_walker(node, as_walker(reads_citus_table),
                                  nullptr);
}

/* A claim as the text[] constant a query carries. */
Const *claim_const(Datum *elems, bool *nulls, int n)
{
    int dims[1] = {n};
    int lbs[1] = {1};
    ArrayType *a = construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
    return makeConst(TEXTARRAYOID, -1, InvalidOid, -1, PointerGetDatum(a), false, false);
}

/* Citus: the session's context as the claim a query sent to other nodes
 * carries: {acting role, purpose, as_of, strict}. */
Const *session_claim(bool strict)
{
    std::vector<std::optional<std::string>> claim = context_claim();
    claim.push_back(std::string(strict ? "t" : "f"));
    Datum *elems = (Datum *)palloc(sizeof(Datum) * claim.size());
    bool *nulls = (bool *)palloc(sizeof(bool) * claim.size());
    for (size_t i = 0; i < claim.size(); i++) {
        nulls[i] = !claim[i];
        elems[i] = claim[i] ? CStringGetTextDatum(claim[i]->c_str()) : (Datum)0;
    }
    return claim_const(elems, nulls, int(claim.size()));
}

/* A claim's strict element (the 4th): whether the sender stores the value. */
bool claim_strict(const Const *claim)
{
    return !claim->constisnull && claim_elements(claim->constvalue).strict();
}

/* The claim with its strict element set to strict. */
Const *claim_with_strict(const Const *claim, bool strict)
{
    ClaimElements e = claim_elements(claim->constvalue);
    if (e.n < 4)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("malformed consent claim")));
    e.elems[3] = CStringGetTextDatum(strict ? "t" : "f");
    e.nulls[3] = false;
    return claim_const(e.elems, e.nulls, e.n);
}

/* A tagged column of a Citus table: its rows are read on the nodes that
 * hold its shards, which mask them there (so that what Citus pushes down,
 * predicates, joins, aggregates, sees masked values), in the context this
 * session claims.  The value goes out unchanged, marked with the claim. */
Expr *remote_expr(Var *var, WalkContext *cx)
{
    Const *claim = cx->claim ? (Const *)copyObjectImpl(cx->claim) : session_claim(cx->strict);
    FuncExpr *f = makeFuncExpr(cx->tax->remote_func, var->vartype, list_make2(var, claim), var->varcollid,
                               var->varcollid, COERCE_EXPLICIT_CALL);
    f->location = var->location;
    cx->remote = true;
    return (Expr *)f;
}

/* The masking expression replacing one tagged column reference. */
Expr *mask_expr(Var *var, Oid relid, const ColumnRule &rule, WalkContext *cx)
{
    const Taxonomy &t = *cx->tax;
    bool strict = cx->strict;
    /* In a statement that reads a Citus table, Citus may evaluate any
     * expression on another node, and this node's tables are read in
     * queries of their own (a subplan Citus plans through this hook, which
     * masks them there): a claim wherever the expression ends up is right. */
    if (OidIsValid(t.remote_func) && (cx->citus_query || citus::is_citus_table(relid)))
        return remote_expr(var, cx);
    Expr *subject;
    if (rule.is_protected) {
        Oid type;
        int32 typmod;
        Oid coll;
        get_atttypetypmodcoll(relid, rule.subject_attno, &type, &typmod, &coll);
        Var *subject_var = makeVar(var->varno, rule.subject_attno, type, typmod, coll, var->varlevelsup);
        copy_var_context(subject_var, var);
        subject = (Expr *)subject_var;
    } else {
        subject = (Expr *)makeNullConst(INT8OID, -1, InvalidOid);
    }
    Oid base = getBaseType(var->vartype);
    List *args =
        list_make4(var, subject, makeConst(OIDOID, -1, InvalidOid, sizeof(Oid), ObjectIdGetDatum(relid), false, true),
                   makeConst(INT2OID, -1, InvalidOid, sizeof(int16), Int16GetDatum(var->varattno), false, true));
    Oid fn = strict ? t.strict_func : t.mask_func;
    if (cx->claim) {
        /* decided in the context another node claims for this query */
        Const *claim = (Const *)copyObjectImpl(cx->claim);
        if (strict && !claim_strict(claim)) {
            /* a strict site of ours under a lax claim: strict it stays */
            claim = claim_with_strict(claim, true);
        }
        args = lappend(args, claim);
        fn = t.claimed_func;
    }
    FuncExpr *f = makeFuncExpr(fn, base, args, var->varcollid, var->varcollid, COERCE_EXPLICIT_CALL);
    f->location = var->location;
    /* The mark of the rewrite: the parser never sets funcvariadic for these
     * non-variadic functions, so a call written in SQL (a query, a CHECK
     * constraint, a trigger's WHEN) is told apart and refused. */
    f->funcvariadic = true;
    if (base == var->vartype)
        return (Expr *)f;
    return (Expr *)makeRelabelType((Expr *)f, var->vartype, var->vartypmod, var->varcollid, COERCE_IMPLICIT_CAST);
}

/* A whole-row reference to a relation with tagged columns becomes a ROW()
 * of its (masked) columns. */
Node *mask_whole_row(Var *var, Oid relid, WalkContext *cx)
{
    Relation rel = relation_open(relid, NoLock);
    TupleDesc desc = RelationGetDescr(rel);
    bool any_tagged = false;
    for (int i = 0; i < desc->natts && !any_tagged; i++)
        if (!TupleDescAttr(desc, i)->attisdropped && column_rule(relid, AttrNumber(i + 1)))
            any_tagged = true;
    if (!any_tagged) {
        relation_close(rel, NoLock);
        return (Node *)var;
    }
    RowExpr *row = makeNode(RowExpr);
    row->row_typeid = var->vartype;
    row->row_format = COERCE_IMPLICIT_CAST;
    row->location = var->location;
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (att->attisdropped) {
            row->args = lappend(row->args, makeNullConst(INT4OID, -1, InvalidOid));
            row->colnames = lappend(row->colnames, makeString(pstrdup("")));
            continue;
        }
        Var *col = makeVar(var->varno, att->attnum, att->atttypid, att->atttypmod, att->attcollation, var->varlevelsup);
        copy_var_context(col, var);
        const ColumnRule *rule = column_rule(relid, att->attnum);
        if (rule)
            note_mask(*rule, cx);
        row->args = lappend(row->args, rule ? (Node *)mask_expr(col, relid, *rule, cx) : (Node *)col);
        row->colnames = lappend(row->colnames, makeString(pstrdup(NameStr(att->attname))));
    }
    relation_close(rel, NoLock);
    return (Node *)row;
}

/* A whole-row reference read by a role that sees every value: all the
 * relation's tagged columns are read. */
Node *note_whole_row(Var *var, Oid relid, WalkContext *cx)
{
    Relation rel = relation_open(relid, NoLock);
    TupleDesc desc = RelationGetDescr(rel);
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (!att->attisdropped && column_rule(relid, att->attnum))
            note_unmasked_read(cx->reads, relid, att->attnum);
    }
    relation_close(rel, NoLock);
    return (Node *)var;
}

Node *mutate_var(Var *var, WalkContext *cx)
{
    if (var->varattno < 0 || var->varlevelsup >= (Index)list_length(cx->levels))
        return (Node *)var;
    Query *q = (Query *)list_nth(cx->levels, int(var->varlevelsup));
    if (var->varno < 1 || int(var->varno) > list_length(q->rtable))
        return (Node *)var;
    RangeTblEntry *rte = rt_fetch(var->varno, q->rtable);
    if (cx->bypass && rte->rtekind == RTE_JOIN) {
        /* a column of a join (USING): the columns it stands for are read
         * (the walk skips the join's alias lists when noting reads: they
         * name every column of the joined relations) */
        for (int i = 0; i < list_length(rte->joinaliasvars); i++) {
            if (var->varattno != 0 && var->varattno != i + 1)
                continue;
            Node *alias = (Node *)copyObjectImpl(list_nth(rte->joinaliasvars, i));
            if (var->varlevelsup)
                IncrementVarSublevelsUp(alias, int(var->varlevelsup), 0);
            mutate_expr(alias, cx);
        }
        return (Node *)var;
    }
    if (rte->rtekind != RTE_RELATION)
        return (Node *)var;
    /* INSERT ... ON CONFLICT: EXCLUDED holds the values being written */
    if (q->onConflict && (int)var->varno == q->onConflict->exclRelIndex)
        return (Node *)var;
    if (var->varattno == 0)
        return cx->bypass ? note_whole_row(var, rte->relid, cx) : mask_whole_row(var, rte->relid, cx);
    if (tagged_category(var->vartype) < 0)
        return (Node *)var;
    const ColumnRule *rule = column_rule(rte->relid, var->varattno);
    if (!rule)
        return (Node *)var;
    if (cx->bypass) {
        note_unmasked_read(cx->reads, rte->relid, var->varattno);
        return (Node *)var;
    }
    note_mask(*rule, cx);
    return (Node *)mask_expr(var, rte->relid, *rule, cx);
}

/* Citus: a column another node sent with its claim
 * (consent._mask_remote(value, claim)): the value is masked here, where
 * its rows are read, in the claimed context (checked when the cells are
 * decided: the claim is one the connected user could act under itself). */
Node *unwrap_remote(FuncExpr *call, WalkContext *cx)
{
    Node *claim = (Node *)lsecond(call->args);
    if (!IsA(claim, Const) || ((Const *)claim)->constisnull)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("consent._mask_remote needs a constant claim")));
    Const *saved_claim = cx->claim;
    bool saved_strict = cx->strict;
    cx->claim = (Const *)claim;
    cx->strict = saved_strict || claim_strict((Const *)claim);
    Node *value = mutate_expr((Node *)linitial(call->args), cx);
    cx->claim = saved_claim;
    cx->strict = saved_strict;
    return value;
}

Node *mutate_expr(Node *node, WalkContext *cx)
{
    if (node == nullptr)
        return nullptr;
    if (IsA(node, Var))
        return mutate_var((Var *)node, cx);
    if (IsA(node, FuncExpr) && ((FuncExpr *)node)->funcid == cx->tax->remote_func && OidIsValid(cx->tax->remote_func))
        return unwrap_remote((FuncExpr *)node, cx);
    /* the claim marker of a query another node sent: its claim decides
     * the statement (calls_mask_function()); the qual itself is true */
    if (IsA(node, FuncExpr) && ((FuncExpr *)node)->funcid == cx->tax->claim_func && OidIsValid(cx->tax->claim_func))
        return (Node *)makeBoolConst(true, false);
    if (IsA(node, Query)) {
        /* a sublink: values it yields are stored when we are strict */
        mutate_query((Query *)node, cx->strict, cx);
        return node;
    }
    return expression_tree_mutator(node, as_mutator(mutate_expr), (void *)cx);
}

/* A set-returning SQL function in FROM becomes the subquery of its body,
 * as PostgreSQL's preprocess_function_rtes() would make it after this hook,
 * but before the walk: the body's tables are then masked like any other.
 * PostgreSQL's own inliner does the work (same conditions, same result);
 * needs_fmgr() lets it through for this one call only. */
void inline_srf(RangeTblEntry *rte, WalkContext *cx)
{
    if (list_length(rte->functions) != 1 || rte->funcordinality)
        return;
    auto *call = (FuncExpr *)((RangeTblFunction *)linitial(rte->functions))->funcexpr;
    if (!IsA(call, FuncExpr) || !call->funcretset || known_not_sql_srf(call->funcid))
        return;
    if (!cx->inline_root) {
        cx->inline_root = makeNode(PlannerInfo);
        cx->inline_root->glob = makeNode(PlannerGlobal);
        cx->inline_root->query_level = 1;
    }
    rte->functions = (List *)eval_const_expressions(cx->inline_root, (Node *)rte->functions);
    call = (FuncExpr *)((RangeTblFunction *)linitial(rte->functions))->funcexpr;
    if (!IsA(call, FuncExpr))
        return;
    Oid saved = inlining_now;
    inlining_now = call->funcid;
    Query *body;
    PG_TRY();
    {
        body = inline_set_returning_function(cx->inline_root, rte);
    }
    PG_FINALLY();
    {
        inlining_now = saved;
    }
    PG_END_TRY();
    if (!body)
        return;
    /* what preprocess_function_rtes() does with an inlined function */
    rte->rtekind = RTE_SUBQUERY;
    rte->subquery = body;
    rte->security_barrier = false;
    rte->funcordinality = false;
}

/* Mutates a list of expressions in a given strictness. */
List *mutate_list(List *list, bool strict, WalkContext *cx)
{
    bool saved = cx->strict;
    cx->strict = strict;
    List *out = (List *)mutate_expr((Node *)list, cx);
    cx->strict = saved;
    return out;
}

/* Whether a statement has an aggregate over DISTINCT values (at any level). */
bool distinct_aggregate(Node *node, void *)
{
    if (node == nullptr)
        return false;
    if (IsA(node, Aggref) && ((Aggref *)node)->aggdistinct != NIL)
        return true;
    auto *fn = as_walker(distinct_aggregate);
    if (IsA(node, Query))
        return query_tree_walker((Query *)node, fn, nullptr, 0);
    return expression_tree_walker(node, fn, nullptr);
}

/* Citus: an aggregate over DISTINCT values of a tagged column of a Citus
 * table is computed on the coordinator over the bare column, which Citus
 * takes out of its claimed expression.  So that the nodes reading the
 * shards decide that column in the session's context, in a statement with
 * such an aggregate every Citus table with tagged columns, at every level,
 * gets a qual consent._claim(<a tagged column>, claim), true wherever it
 * runs, which Citus sends with the table's other quals (the claim of a
 * query decides all its columns, calls_mask_function()).  The claimed
 * expression left on the coordinator then receives decided values
 * (mark_claimed_aggregates()). */
void add_claim_markers(Query *q, WalkContext *cx)
{
    if (!OidIsValid(cx->tax->claim_func))
        return;
    Index rti = 0;
    ListCell *lc;
    foreach (lc, q->rtable) {
        auto *rte = (RangeTblEntry *)lfirst(lc);
        ++rti;
        if (rte->rtekind != RTE_RELATION || !citus::is_citus_table(rte->relid))
            continue;
        Relation rel = relation_open(rte->relid, NoLock);
        TupleDesc desc = RelationGetDescr(rel);
        Var *tagged = nullptr;
        for (int i = 0; i < desc->natts && !tagged; i++) {
            Form_pg_attribute att = TupleDescAttr(desc, i);
            if (!att->attisdropped && tagged_category(att->atttypid) >= 0)
                tagged = makeVar(int(rti), att->attnum, att->atttypid, att->atttypmod, att->attcollation, 0);
        }
        relation_close(rel, NoLock);
        if (!tagged)
            continue;
        Const *claim = cx->claim ? (Const *)copyObjectImpl(cx->claim) : session_claim(false);
        Expr *marker = (Expr *)makeFuncExpr(cx->tax->claim_func, BOOLOID, list_make2(tagged, claim), InvalidOid,
                                            InvalidOid, COERCE_EXPLICIT_CALL);
        q->jointree->quals = q->jointree->quals ? (Node *)make_and_qual(q->jointree->quals, (Node *)marker)
                                                : (Node *)marker;
        cx->remote = true;
    }
}

void mutate_query(Query *q, bool strict_targets, WalkContext *cx)
{
    cx->levels = lcons(q, cx->levels);
    bool write = is_write(q);
    bool strict_out = strict_targets || write;

    /* sources of a write, and anything feeding a strict context, are strict */
    ListCell *lc;
    foreach (lc, q->rtable) {
        RangeTblEntry *rte = (RangeTblEntry *)lfirst(lc);
        if (rte->rtekind == RTE_FUNCTION)
            inline_srf(rte, cx);
        if (rte->rtekind == RTE_SUBQUERY && rte->subquery)
            mutate_query(rte->subquery, strict_out, cx);
    }
    foreach (lc, q->cteList) {
        CommonTableExpr *cte = (CommonTableExpr *)lfirst(lc);
        if (cte->ctequery && IsA(cte->ctequery, Query))
            mutate_query((Query *)cte->ctequery, strict_targets || (write && q->commandType == CMD_INSERT), cx);
    }

    /* lists whose values are stored */
    List *targets = mutate_list(q->targetList, strict_out && q->commandType != CMD_DELETE, cx);
    List *conflict_set = nullptr;
    if (q->onConflict) {
        conflict_set = mutate_list(q->onConflict->onConflictSet, true, cx);
        q->onConflict->onConflictSet = NIL;
    }
    List *merge_targets = NIL;
    foreach (lc, q->mergeActionList) {
        MergeAction *a = (MergeAction *)lfirst(lc);
        merge_targets = lappend(merge_targets, mutate_list(a->targetList, true, cx));
        a->targetList = NIL;
    }
    q->targetList = NIL;

    /* everything else (quals, RETURNING, sort/group expressions, RLS quals,
     * function RTEs, join alias lists) sees masked values */
    bool saved = cx->strict;
    cx->strict = false;
    query_tree_mutator(q, as_mutator(mutate_expr), (void *)cx,
                       QTW_DONT_COPY_QUERY | QTW_IGNORE_RC_SUBQUERIES | (cx->bypass ? QTW_IGNORE_JOINALIASES : 0));
    cx->strict = saved;

    q->targetList = targets;
    if (q->onConflict)
        q->onConflict->onConflictSet = conflict_set;
    ListCell *mt = list_head(merge_targets);
    foreach (lc, q->mergeActionList) {
        ((MergeAction *)lfirst(lc))->targetList = (List *)lfirst(mt);
        mt = lnext(merge_targets, mt);
    }
    if (cx->distinct_aggregates && q->commandType == CMD_SELECT)
        add_claim_markers(q, cx);
    cx->levels = list_delete_first(cx->levels);
}

/* Finds a call of the mask functions in a query before our rewrite: none is
 * legitimate there (they would be an oracle for the hash mask and forge
 * disclosures), whether written directly, in a view or in a function. */
/* What a query calls of ours, before the rewrite puts mask calls in. */
struct Calls {
    const Taxonomy *t;
    Oid consent_schema;
    bool decides; /* a function of the consent schema (granted(), a policy's any_granted()) */
    /* Citus: the claim of a query another node sent (its first
     * consent._mask_remote or consent._claim call's), nullptr if none */
    Const *claim;
    Oid refused; /* the function of ours called directly that made the query refused */
};

/* Whether the query calls the mask functions itself (refused); notes in
 * calls->decides whether it calls other functions of ours, and in
 * calls->claim the claim it carries. */
bool calls_mask_function(Node *node, Calls *calls)
{
    if (node == nullptr)
        return false;
    if (IsA(node, FuncExpr)) {
        const Taxonomy *t = calls->t;
        auto *call = (FuncExpr *)node;
        Oid f = call->funcid;
        if (f == t->mask_func || f == t->strict_func || (f == t->claimed_func && OidIsValid(f)) ||
            (f == t->unmasked_func && OidIsValid(f))) {
            calls->refused = f;
            return true;
        }
        if (!calls->decides && f >= FirstNormalObjectId && get_func_namespace(f) == calls->consent_schema)
            calls->decides = true;
        if (!calls->claim && OidIsValid(f) && (f == t->remote_func || f == t->claim_func)) {
            Node *claim = (Node *)lsecond(call->args);
            if (IsA(claim, Const) && !((Const *)claim)->constisnull)
                calls->claim = (Const *)claim;
        }
    }
    if (IsA(node, Query))
        return query_tree_walker((Query *)node,
                                 as_walker(calls_mask_function),
                                 (void *)calls, 0);
    return expression_tree_walker(node, as_walker(calls_mask_function),
                                  (void *)calls);
}

/* Whether a scan of range table entry rti reads a relation with tagged
 * columns that is not a Citus table (whose rows are on other nodes);
 * unknown (0 for a join a foreign scan pushed down): as unknown says. */
bool scans_tagged_relation(Index rti, List *rtable, bool unknown)
{
    if (rti < 1 || int(rti) > list_length(rtable))
        return unknown;
    RangeTblEntry *rte = rt_fetch(rti, rtable);
    return rte->rtekind == RTE_RELATION && !citus::is_citus_table(rte->relid) && relation_has_tagged_column(rte->relid);
}

/* Whether a finished plan reads a relation with tagged columns on this
 * node (a scan of it, or a ConsentMask node); Citus's own scans read on
 * other nodes (or through plans of their own, masked there). */
bool reads_tagged_here(Plan *p, List *rtable)
{
    if ((scans_heap(p) || IsA(p, ForeignScan)) && scans_tagged_relation(((Scan *)p)->scanrelid, rtable, true))
        return true;
    if (IsA(p, CustomScan)) {
        auto *cs = (CustomScan *)p;
        if (strcmp(cs->methods->CustomName, "ConsentMask") == 0)
            return true;
        /* another extension's scan of a relation of this node (Citus's
         * columnar scan); Citus's own scans read other nodes (their tasks)
         * or run plans of their own (subplans, masked when planned) */
        if (strcmp(cs->methods->CustomName, "ConsentContext") != 0)
            return cs->scan.scanrelid > 0 && scans_tagged_relation(cs->scan.scanrelid, rtable, false);
    }
    bool found = false;
    for_each_child_plan(p, [&](Plan *&child) { found = found || reads_tagged_here(child, rtable); });
    return found;
}

/* Marks every claimed expression in node as passing its value on. */
bool mark_claimed(Node *node, void *remote)
{
    if (node == nullptr)
        return false;
    if (IsA(node, FuncExpr) && ((FuncExpr *)node)->funcid == *static_cast<Oid *>(remote))
        ((FuncExpr *)node)->funcvariadic = true;
    return expression_tree_walker(node, as_walker(mark_claimed),
                                  remote);
}

/* Marks the claimed expressions inside DISTINCT aggregates of a plan's
 * nodes (evaluated here over values the shards' nodes decided): the
 * function passes the value on (consent_mask_remote). */
bool mark_in_distinct(Node *node, void *remote)
{
    if (node == nullptr)
        return false;
    if (IsA(node, Aggref) && ((Aggref *)node)->aggdistinct != NIL)
        return mark_claimed((Node *)((Aggref *)node)->args, remote);
    return expression_tree_walker(node, as_walker(mark_in_distinct),
                                  remote);
}

void mark_claimed_plan(Plan *p, Oid remote)
{
    mark_in_distinct((Node *)p->targetlist, &remote);
    mark_in_distinct((Node *)p->qual, &remote);
    for_each_child_plan(p, [&](Plan *&child) { mark_claimed_plan(child, remote); });
}

/* Citus: see add_claim_markers().  Only when nothing of this plan reads a
 * tagged column here (then every value it computes on came from a node
 * that decided it in the claimed context); otherwise the claimed
 * expression stays and fails closed when evaluated. */
void mark_claimed_aggregates(PlannedStmt *stmt, const Taxonomy &t)
{
    if (!OidIsValid(t.remote_func) || reads_tagged_here(stmt->planTree, stmt->rtable))
        return;
    bool found = false;
    for_each_plan_in(stmt->subplans, [&](Plan *&sub) { found = found || reads_tagged_here(sub, stmt->rtable); });
    if (found)
        return;
    mark_claimed_plan(stmt->planTree, t.remote_func);
    for_each_plan_in(stmt->subplans, [&](Plan *&sub) { mark_claimed_plan(sub, t.remote_func); });
}

/* Whether a statement is planned without masking: a plain query (no
 * write, no claim of another node, no Citus table) while the acting role
 * (GetOuterUserId(), as for every decision: SECURITY DEFINER functions do
 * not change it) sees every value (bypass.cpp). */
bool plans_unmasked(const Query *parse, const Taxonomy &t, const Calls &calls, const WalkContext &cx)
{
    return OidIsValid(t.unmasked_func) && !calls.claim && !cx.citus_query && parse->commandType == CMD_SELECT &&
           !parse->hasModifyingCTE && role_bypasses(GetOuterUserId());
}

/* A query calling one of the functions only the rewrite puts in */
static void refuse_direct_call(Oid f, const Taxonomy &t)
{
    if (f == t.mask_func || f == t.strict_func)
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("consent._mask and consent._mask_strict are called by the masking rewrite only"),
                 errhint("Select the column itself: it is masked automatically.")));
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("consent.%s is called by the masking rewrite only", get_func_name(f)),
                    errhint("Select the column itself: it is masked or counted automatically.")));
}

PlannedStmt *planner(Query *parse, const char *query_string, int cursor_options, ParamListInfo params)
{
    return entry([&] {
        return pg([&] {
            const Taxonomy &t = taxonomy();
            WalkContext cx{NIL, false, &t, nullptr};
            Calls calls{&t, InvalidOid, false, nullptr, InvalidOid};
            bool consent_here = t.installed && !t.type_category.empty();
            /* the query as it was before planning, when the plan made for
             * a bypass role cannot count what it reads */
            Query *to_mask = nullptr;
            if (consent_here) {
                calls.consent_schema = get_func_namespace(t.mask_func);
                if (calls_mask_function((Node *)parse, &calls))
                    refuse_direct_call(calls.refused, t);
                cx.citus_query = citus::active() && reads_citus_table((Node *)parse, nullptr);
                cx.distinct_aggregates = cx.citus_query && distinct_aggregate((Node *)parse, nullptr);
                /* A query another node sent with its session's claim:
                 * every tagged column it reads is decided in that context,
                 * also the ones Citus moved out of the claimed expressions
                 * (into a subquery of its own, a GROUP BY, an aggregate's
                 * argument). */
                if (calls.claim)
                    cx.claim = claim_with_strict(calls.claim, false);
                cx.bypass = plans_unmasked(parse, t, calls, cx);
                mutate_query(parse, false, &cx);
                if (cx.reads.relids != NIL)
                    to_mask = (Query *)copyObjectImpl(parse);
                /* parallel workers mask from the server's shared state;
                 * without it each would load the consent state again */
                if (cx.leader_only_mask || (cx.masked && !shared::enabled()))
                    cursor_options &= ~CURSOR_OPT_PARALLEL_OK;
            }
            PlannedStmt *stmt = prev_planner ? prev_planner(parse, query_string, cursor_options, params)
                                             : standard_planner(parse, query_string, cursor_options, params);
            bool counted = false;
            if (to_mask) {
                counted = mark_unmasked_reads(stmt, cx.reads, GetOuterUserId(), t.unmasked_func);
                if (!counted) {
                    /* a scan it cannot count (a foreign or custom scan):
                     * masked as for any role, which counts every cell */
                    PlannerInfo *inlined = cx.inline_root;
                    cx = WalkContext{NIL, false, &t, inlined};
                    mutate_query(to_mask, false, &cx);
                    if (cx.leader_only_mask || (cx.masked && !shared::enabled()))
                        cursor_options &= ~CURSOR_OPT_PARALLEL_OK;
                    stmt = prev_planner ? prev_planner(to_mask, query_string, cursor_options, params)
                                        : standard_planner(to_mask, query_string, cursor_options, params);
                }
            }
            if (cx.remote) {
                /* the claim names the acting role: a plan per role, and
                 * none kept past a change of purpose or as_of */
                stmt->dependsOnRole = true;
                claims_planned();
                if (cx.citus_query)
                    mark_claimed_aggregates(stmt, t);
            }
            if (cx.inline_root) {
                /* the inlined functions: a cached plan is dropped when one
                 * is replaced, and is per role when its body met RLS */
                stmt->invalItems = list_concat(stmt->invalItems, cx.inline_root->glob->invalItems);
                stmt->dependsOnRole |= cx.inline_root->glob->dependsOnRole;
            }
            if (consent_here) {
                mask_scans(stmt, t);
                /* workers decide (and count) in their leader's context */
                if (stmt->parallelModeNeeded && (cx.masked || calls.decides || counted))
                    add_parallel_context(stmt);
            }
            return stmt;
        });
    });
}

post_parse_analyze_hook_type prev_post_parse_analyze = nullptr;

/* The array of a tagged type's base type, for an array of a tagged type
 * (InvalidOid for any other type).  Arrays of other types, the common
 * case, cost one catalog-cache look-up and never load the taxonomy. */
Oid base_array_type(Oid type)
{
    Oid elem = get_element_type(type);
    if (!OidIsValid(elem) || get_typtype(elem) != TYPTYPE_DOMAIN)
        return InvalidOid;
    const Taxonomy &t = taxonomy();
    if (!t.installed || tagged_category(elem) < 0)
        return InvalidOid;
    return get_array_type(getBaseType(elem));
}

/* Arrays of tagged types in a result list become arrays of their base
 * types, as PostgreSQL itself describes a domain column by its base type:
 * drivers know text[], not consent._email. */
void base_array_results(List *targets)
{
    ListCell *lc;
    foreach (lc, targets) {
        auto *te = (TargetEntry *)lfirst(lc);
        if (te->resjunk)
            continue;
        Oid type = exprType((Node *)te->expr);
        if (type_is_array(type) == false)
            continue;
        Oid base = base_array_type(type);
        if (!OidIsValid(base))
            continue;
        Node *cast = coerce_to_target_type(nullptr, (Node *)te->expr, type, base, exprTypmod((Node *)te->expr),
                                           COERCION_EXPLICIT, COERCE_IMPLICIT_CAST, -1);
        if (cast)
            te->expr = (Expr *)cast;
    }
}

/* A statement a client sent (not a query inside a function, a view or a
 * utility statement other than DECLARE CURSOR): its result columns go to
 * the client. */
void client_result_types(ParseState *pstate, Query *query)
{
    if (ActivePortal || !pstate || !debug_query_string || pstate->p_sourcetext != debug_query_string ||
        !ActiveSnapshotSet())
        return;
    if (query->commandType == CMD_UTILITY && query->utilityStmt && IsA(query->utilityStmt, DeclareCursorStmt))
        query = castNode(Query, ((DeclareCursorStmt *)query->utilityStmt)->query);
    if (query->commandType == CMD_SELECT)
        base_array_results(query->targetList);
    else if (query->commandType != CMD_UTILITY)
        base_array_results(query->returningList);
}

/* The call site, described at its first non-NULL cell: what the call
 * names never changes; mask_cell() looks its rule up again whenever the
 * rules change.  Out of line: the per-cell path stays small. */
pg_noinline MaskSite *describe_site(FunctionCallInfo fcinfo, bool strict)
{
    auto *call = reinterpret_cast<FuncExpr *>(fcinfo->flinfo->fn_expr);
    if (!call || !IsA(call, FuncExpr) || !call->funcvariadic)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("consent._mask and consent._mask_strict are called by the masking rewrite only"),
                        errhint("Select the column itself: it is masked automatically.")));
    auto *site = new (MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(MaskSite))) MaskSite();
    site->relid = PG_GETARG_OID(2);
    site->attno = PG_GETARG_INT16(3);
    site->strict = strict;
    if (PG_NARGS() == 5) {
        /* consent._mask_claimed: {role, purpose, as_of, strict} */
        if (PG_ARGISNULL(4))
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("malformed consent claim")));
        site->claim = make_claim(PG_GETARG_DATUM(4), fcinfo->flinfo->fn_mcxt, &site->strict);
    }
    site->value_type = base_type_of(get_fn_expr_argtype(fcinfo->flinfo, 0));
    Oid subject_type = get_fn_expr_argtype(fcinfo->flinfo, 1);
    site->subject_type = OidIsValid(subject_type) ? base_type_of(subject_type) : InvalidOid;
    fcinfo->flinfo->fn_extra = site;
    return site;
}

/* Shared body of the two mask functions (inline in both: one frame per cell). */
pg_attribute_always_inline Datum mask_call(FunctionCallInfo fcinfo, bool strict)
{
    if (PG_ARGISNULL(0))
        PG_RETURN_NULL();
    auto *site = static_cast<MaskSite *>(fcinfo->flinfo->fn_extra);
    if (unlikely(!site))
        site = describe_site(fcinfo, strict);
    MaskedValue m = mask_cell(*site, taxonomy(), PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_ARGISNULL(1));
    if (m.isnull)
        PG_RETURN_NULL();
    return m.value;
}

} // namespace

/* pg_type changed: base types are looked up again. */
void rewrite_types_changed() noexcept
{
    base_types.clear();
}

/* pg_proc changed: which functions are set-returning SQL ones is asked again. */
void rewrite_procs_changed() noexcept
{
    ++proc_generation;
}

/* The site's rule, looked up again because the rules changed. */
void resolve_site(MaskSite &site)
{
    site.rule = column_rule(site.relid, site.attno);
    site.epoch = rules_epoch();
    /* consent._mask is executable by everyone (the rewritten queries of
     * every role call it): a direct call must pass the types of the
     * column it names, or the datums would be misread */
    if (site.rule) {
        bool subject_ok = site.rule->is_protected ? site.subject_type == site.rule->subject_type
                                                  : (site.subject_type == INT8OID || site.subject_type == InvalidOid);
        if (site.value_type != site.rule->value_type || !subject_ok) {
            site.epoch = 0;
            const char *rel = get_rel_name(site.relid);
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("arguments of %s do not match column %d of \"%s\"",
                                   site.strict ? "consent._mask_strict" : "consent._mask", site.attno,
                                   rel ? rel : "?"),
                            errhint("These functions are called by the masking rewrite, not directly.")));
        }
    }
}

/* A masked cell at a strict site: storing its mask would destroy the original. */
void refuse_strict(const MaskSite &site)
{
    const char *rel = get_rel_name(site.relid);
    const char *col = get_attname(site.relid, site.attno, true);
    ereport(ERROR,
            (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("cannot store a value derived from a masked cell"),
             errdetail("Column \"%s\" of \"%s\" is masked for this session; storing its masked value "
                       "would destroy the original.",
                       col ? col : "?", rel ? rel : "?"),
             errhint("Act under a purpose the subject consented to, or leave the column unchanged.")));
    pg_unreachable();
}

void install_planner_hook()
{
    prev_planner = planner_hook;
    planner_hook = planner;
    prev_post_parse_analyze = post_parse_analyze_hook;
    post_parse_analyze_hook = [](ParseState *pstate, Query *query, JumbleState *jstate) {
        if (prev_post_parse_analyze)
            prev_post_parse_analyze(pstate, query, jstate);
        entry([&] { pg([&] { client_result_types(pstate, query); }); });
    };
    prev_fmgr = fmgr_hook;
    fmgr_hook = [](FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg) {
        if (prev_fmgr)
            prev_fmgr(event, flinfo, arg);
        if (event == FHET_END &&
            std::find(distribution_fns.begin(), distribution_fns.end(), flinfo->fn_oid) != distribution_fns.end())
            entry([] { citus::sync_tables(); });
    };
    prev_needs_fmgr = needs_fmgr_hook;
    register_invalidation_callbacks();
    needs_fmgr_hook = [](Oid fn_oid) -> bool {
        if (!prev_needs_fmgr && known_not_sql_srf(fn_oid))
            return false; /* no boundary crossing for what is known */
        return entry([&] { return pg([&] { return needs_fmgr(fn_oid); }); });
    };
}

} // namespace consent

using namespace consent;

/* consent._mask(value, subject, relid, attno): the value or its mask. */
CONSENT_FUNCTION(consent_mask)
{
    return entry([&] { return mask_call(fcinfo, false); });
}

/* consent._mask_strict(...): the value, or 42501 when it is masked. */
CONSENT_FUNCTION(consent_mask_strict)
{
    return entry([&] { return mask_call(fcinfo, true); });
}

/* consent._mask_claimed(value, subject, relid, attno, claim): _mask or
 * _mask_strict (as the claim says) decided in the claimed context. */
CONSENT_FUNCTION(consent_mask_claimed)
{
    return entry([&] { return mask_call(fcinfo, false); });
}

/* consent._mask_remote(value, claim): replaced by the masking rewrite of
 * the node that reads the value's rows; never runs.  If it does (a plan
 * the rewrite did not see), nothing is revealed. */
CONSENT_FUNCTION(consent_mask_remote)
{
    /* in a DISTINCT aggregate of a plan that reads no tagged column on
     * this node: a value the shard's node decided (mark_claimed_aggregates) */
    auto *call = reinterpret_cast<FuncExpr *>(fcinfo->flinfo->fn_expr);
    if (call && IsA(call, FuncExpr) && call->funcvariadic) {
        if (PG_ARGISNULL(0))
            PG_RETURN_NULL();
        return PG_GETARG_DATUM(0);
    }
    return entry([&]() -> Datum {
        throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                    "consent._mask_remote is replaced by the masking rewrite of the node that reads the rows",
                    "This query was not rewritten by pg_consent on the node that ran it.");
    });
}

/* consent._claim(value, claim): true.  The marker of a query sent to the
 * nodes reading a Citus table's shards: its claim decides the query's
 * tagged columns there (add_claim_markers()). */
CONSENT_FUNCTION(consent_claim)
{
    PG_RETURN_BOOL(true);
}
