/*
 * cursor.cpp — the guard for portals read in parts whose rows were computed
 * ahead of the fetch that returns them (see cursor.h).
 *
 * A portal is tracked from its first run in parts (a row limit, a SCROLL
 * cursor, a WITH HOLD cursor) when its plan holds a node that computes rows
 * ahead.  While it runs, every subject whose consent events are looked up
 * is recorded (cache.cpp calls cursor_record()), whichever query of the
 * statement looks it up.  The cache tells the guard which subjects changed
 * (cache_sync(), this session's own changes); the next run of a portal that
 * decided one of them fails instead of returning rows decided before.
 *
 * Owns: the trackers (one per tracked portal, freed with the portal's memory
 * context) and the list of trackers recording.
 * Must never: throw from the cache's notifications or the memory context
 * callback; keep a tracker after its portal is gone.
 */
#include "cursor.h"
#include "decision.h"
#include "taxonomy.h"

extern "C" {
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "tcop/pquery.h"
#include "utils/portal.h"
}

#include <unordered_set>
#include <vector>

namespace consent {

/* What a tracked portal decided and under which context. */
struct CursorTracker {
    Portal portal = nullptr;
    bool stale = false;        /* a decided subject changed */
    bool decided_any = false;  /* anything decided (or everything revealed to a bypass role) */
    bool overflow = false;     /* too many subjects to list: any change makes it stale */
    std::unordered_set<uint64_t> subjects;
    TimestampTz expires = DT_NOEND; /* the earliest expiry of a grant of a decided subject */
    bool bypass = false;
    int purpose = -1;
    TimestampTz as_of = NOW;
    uint64_t taxonomy_generation = 0;
};

namespace {

/* Listed subjects per portal; past it, any change of any subject stops it. */
constexpr size_t MAX_SUBJECTS = 1 << 16;

std::vector<CursorTracker *> trackers; /* every tracked portal alive */
std::vector<CursorTracker *> running;  /* tracked portals whose executor runs */

/* The portal's memory is going: so is its tracker. */
void portal_gone(void *arg)
{
    auto *t = static_cast<CursorTracker *>(arg);
    for (size_t i = 0; i < trackers.size(); i++)
        if (trackers[i] == t) {
            trackers[i] = trackers.back();
            trackers.pop_back();
            break;
        }
    delete t; /* never while it runs: a running portal is not dropped */
}

CursorTracker *tracker_of(Portal portal)
{
    for (CursorTracker *t : trackers)
        if (t->portal == portal)
            return t;
    return nullptr;
}

/* Whether a node returns rows computed before the call that returns them. */
bool computes_ahead(const Plan *plan)
{
    switch (nodeTag(plan)) {
    case T_Sort:
    case T_IncrementalSort:
    case T_Material:
    case T_Hash:
    case T_Agg:
    case T_WindowAgg:
    case T_SetOp:
    case T_RecursiveUnion:
    case T_Memoize:
    case T_CteScan:
    case T_FunctionScan:
    case T_TableFuncScan:
        return true;
    default:
        return false;
    }
}

bool plan_computes_ahead(const Plan *plan)
{
    if (!plan)
        return false;
    if (computes_ahead(plan) || plan->initPlan)
        return true;
    if (plan_computes_ahead(plan->lefttree) || plan_computes_ahead(plan->righttree))
        return true;
    const List *children = NIL;
    switch (nodeTag(plan)) {
    case T_Append:
        children = ((const Append *)plan)->appendplans;
        break;
    case T_MergeAppend:
        children = ((const MergeAppend *)plan)->mergeplans;
        break;
    case T_BitmapAnd:
        children = ((const BitmapAnd *)plan)->bitmapplans;
        break;
    case T_BitmapOr:
        children = ((const BitmapOr *)plan)->bitmapplans;
        break;
    case T_CustomScan:
        children = ((const CustomScan *)plan)->custom_plans;
        break;
    case T_SubqueryScan:
        return plan_computes_ahead(((const SubqueryScan *)plan)->subplan);
    default:
        break;
    }
    const ListCell *lc;
    foreach (lc, children)
        if (plan_computes_ahead((const Plan *)lfirst(lc)))
            return true;
    return false;
}

/* Sub-plans (SubPlan expressions, CTEs) compute ahead too: any makes the
 * statement's rows computed ahead. */
bool statement_computes_ahead(const PlannedStmt *stmt)
{
    return stmt->subplans != NIL || plan_computes_ahead(stmt->planTree);
}

/* Why a tracked portal may not return its rows now; nullptr when it may. */
const char *why_stale(const CursorTracker &t)
{
    if (t.stale)
        return "consent of a subject whose rows it computed ahead changed since";
    const SessionContext &ctx = session_context();
    if (t.bypass) /* it saw everything: only losing that matters */
        return ctx.bypass ? nullptr : "the role this session acts under changed since";
    if (!t.decided_any)
        return nullptr; /* everything it computed was masked: masking more is fine */
    if (ctx.bypass != t.bypass || ctx.purpose != t.purpose || ctx.as_of != t.as_of)
        return "the role or purpose this session acts under changed since";
    if (taxonomy().generation != t.taxonomy_generation)
        return "the consent catalog (purposes, masks, protected tables) changed since";
    if (t.as_of == NOW && decision_time(ctx) >= t.expires)
        return "a grant it relied on expired since";
    return nullptr;
}

void refuse(const CursorTracker &t, const char *why)
{
    const char *name = t.portal->name && t.portal->name[0] ? t.portal->name : "(unnamed portal)";
    throw Error(t.stale ? ERRCODE_T_R_SERIALIZATION_FAILURE : ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                std::string("cursor \"") + name + "\" cannot return rows decided under earlier consent",
                std::string("Its plan computed rows ahead (a sort, hash, aggregate, materialization, sub-plan or a "
                            "WITH HOLD cursor), and ") +
                    why + ". Returning them could reveal values no longer agreed to.",
                "Close the cursor and run the query again.");
}

} // namespace

namespace detail {
int cursor_collecting = 0;

void cursor_record(uint64_t subject_hash, const SubjectEvents *ev)
{
    TimestampTz expires = DT_NOEND;
    if (ev) {
        TimestampTz now = GetCurrentStatementStartTimestamp();
        for (uint32_t i = 0; i < ev->count; i++) {
            uint32_t until = ev->events[i].until;
            if (until == 0 || until == UINT32_MAX)
                continue;
            TimestampTz at = TimestampTz(until) * USECS_PER_SEC;
            if (at > now && at < expires)
                expires = at;
        }
    }
    for (CursorTracker *t : running) {
        t->decided_any = true;
        if (expires < t->expires)
            t->expires = expires;
        if (t->overflow)
            continue;
        if (t->subjects.size() >= MAX_SUBJECTS) {
            t->overflow = true;
            t->subjects.clear();
            continue;
        }
        t->subjects.insert(subject_hash);
    }
}
} // namespace detail

CursorTracker *cursor_run_begin(QueryDesc *desc, uint64 count)
{
    Portal portal = ActivePortal;
    if (!portal || portal->queryDesc != desc)
        return nullptr; /* a query run inside a statement, not a portal's run */
    CursorTracker *t = tracker_of(portal);
    if (t) {
        if (const char *why = pg([&] { return why_stale(*t); }))
            refuse(*t, why);
    } else {
        /* the common case, a portal run to completion, stops here */
        bool hold = portal->cursorOptions & CURSOR_OPT_HOLD;
        bool in_parts = count != 0 || (portal->cursorOptions & CURSOR_OPT_SCROLL);
        if (!(hold || (in_parts && statement_computes_ahead(desc->plannedstmt))))
            return nullptr;
        if (!pg([] { return taxonomy().installed; }))
            return nullptr; /* no consent here: nothing to guard */
        bool bypass = false;
        int purpose = -1;
        TimestampTz as_of = NOW;
        uint64_t generation = 0;
        pg([&] {
            const SessionContext &ctx = session_context();
            bypass = ctx.bypass;
            purpose = ctx.purpose;
            as_of = ctx.as_of;
            generation = taxonomy().generation;
        });
        auto *cb = static_cast<MemoryContextCallback *>(
            pg([&] { return MemoryContextAllocZero(portal->portalContext, sizeof(MemoryContextCallback)); }));
        trackers.reserve(trackers.size() + 1);
        t = new CursorTracker();
        t->portal = portal;
        t->bypass = bypass;
        t->purpose = purpose;
        t->as_of = as_of;
        t->taxonomy_generation = generation;
        trackers.push_back(t);
        cb->func = portal_gone;
        cb->arg = t;
        MemoryContextRegisterResetCallback(portal->portalContext, cb);
    }
    running.reserve(running.size() + 1);
    running.push_back(t);
    ++detail::cursor_collecting;
    /* decisions remembered for the last row were looked up before: look
     * them up again so the first row's subject is recorded too */
    detail::row.stamp = 0;
    detail::row.cache_epoch = 0;
    return t;
}

void cursor_run_end(CursorTracker *tracker) noexcept
{
    for (size_t i = running.size(); tracker && i-- > 0;)
        if (running[i] == tracker) {
            running.erase(running.begin() + long(i));
            --detail::cursor_collecting;
            return;
        }
}

void cursor_fetch_check(const FetchStmt *stmt)
{
    if (stmt->ismove || trackers.empty() || !stmt->portalname)
        return;
    Portal portal = pg([&] { return GetPortalByName(stmt->portalname); });
    if (!portal || !portal->holdStore || portal->queryDesc)
        return; /* not read from its store: the executor run checks */
    CursorTracker *t = tracker_of(portal);
    if (!t)
        return;
    if (const char *why = pg([&] { return why_stale(*t); }))
        refuse(*t, why);
}

void cursor_subject_changed(uint64_t subject_hash) noexcept
{
    for (CursorTracker *t : trackers)
        if (t->overflow ? t->decided_any : t->subjects.count(subject_hash) > 0)
            t->stale = true;
}

void cursor_everything_changed() noexcept
{
    for (CursorTracker *t : trackers)
        if (t->decided_any)
            t->stale = true;
}

} // namespace consent
