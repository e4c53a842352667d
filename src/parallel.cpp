/*
 * parallel.cpp — the ConsentContext custom scan: what a parallel worker
 * needs from its leader to decide consent exactly as the leader would.
 *
 * A parallel worker restores its leader's acting role, settings (purpose,
 * as_of, the consent.* settings) and statement time.  Three things it does
 * not restore, and decisions depend on:
 *  - the snapshot the leader resolves changed subjects with (the shared
 *    state's pending transactions: shared_state.h).  A worker cannot take
 *    one of its own that equals it;
 *  - the subjects the leader's transaction changed: only that transaction
 *    sees them, so they are decided from the table, not the shared state;
 *  - where the cells it counts for the audit go: to the leader's statement,
 *    which logs and publishes them with its own (consent.audit,
 *    consent.disclosures), not to a statement of the worker's own.
 * After planning, every Gather and Gather Merge of a plan that decides
 * consent gets a ConsentContext node right under it.  The node is
 * parallel aware: the leader writes the snapshot and the changed subjects
 * into the parallel query's shared memory, each worker adopts them before
 * it runs its part of the plan, and hands its audit counts back through the
 * same memory after every row it returns (a leader that stops reading
 * early, under a LIMIT, has counted every cell of every row it got).  The
 * node returns its child's rows as they are.
 *
 * Owns: the plan transformation, the node's callbacks and its shared
 * memory layout.
 * Must never: change what a plan returns, or let a worker decide from a
 * context other than its leader's.
 */
#include "parallel.h"
#include "audit.h"
#include "cache.h"
#include "compat.h"
#include "maskscan.h"
#include "plan_tree.h"
#include "shared_state.h"

extern "C" {
#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "port/atomics.h"
#include "storage/dsm.h"
#include "storage/shm_toc.h"
#include "utils/snapmgr.h"
}

#include <algorithm>
#include <string>
#include <vector>

namespace consent {

namespace {

/* Columns of one statement's audit a worker hands over through shared
 * memory; a worker counting more (wide tables read under several roles)
 * logs and publishes the rest itself. */
constexpr uint32 AUDIT_ENTRIES = 32;

struct SharedCount {
    Oid relid;
    AttrNumber attno;
    Oid role;
    int32 purpose;
    int32 category;
    pg_atomic_uint64 revealed;
    pg_atomic_uint64 masked;
    WorkerNames names;
};

struct WorkerAudit {
    pg_atomic_uint32 n; /* entries whose keys are written */
    SharedCount e[AUDIT_ENTRIES];
};

/* The node's shared memory: this header, the changed subjects (4-byte
 * length and bytes each), the serialized snapshot, then one WorkerAudit
 * per planned worker.  Offsets from the header. */
struct Shared {
    uint32 nworkers;
    uint32 n_keys;
    bool everything;
    bool has_snapshot;
    Size keys_at;
    Size snapshot_at;
    Size audit_at;
};

struct ContextState {
    CustomScanState css;
    PlanState *child;
    /* leader: the shared memory of the current launch (nullptr once its
     * counts are taken at shutdown), and the counts already taken */
    Shared *shm;
    dsm_segment *seg; /* its segment, whose detach takes the counts too */
    uint64 *seen;
    uint32 seen_workers;
    bool worker;
};

bool received = false;
/* worker: where it hands its counts over */
WorkerAudit *worker_area = nullptr;
WorkerCount *worker_buf = nullptr;

WorkerAudit *audit_area(Shared *shm, uint32 worker)
{
    return reinterpret_cast<WorkerAudit *>(reinterpret_cast<char *>(shm) + shm->audit_at +
                                           MAXALIGN(sizeof(WorkerAudit)) * worker);
}

Size layout(Shared *out, uint32 nworkers, Snapshot snap)
{
    bool everything = false;
    const std::vector<std::string> &keys = cache_own_changes(everything);
    Size keys_len = 0;
    if (!everything)
        for (const std::string &k : keys)
            keys_len += sizeof(uint32) + k.size();
    Shared s{};
    s.nworkers = nworkers;
    s.n_keys = everything ? 0 : uint32(keys.size());
    s.everything = everything;
    s.has_snapshot = snap != nullptr;
    s.keys_at = MAXALIGN(sizeof(Shared));
    s.snapshot_at = s.keys_at + MAXALIGN(keys_len);
    s.audit_at = s.snapshot_at + (snap ? MAXALIGN(EstimateSnapshotSpace(snap)) : 0);
    if (out)
        *out = s;
    return s.audit_at + MAXALIGN(sizeof(WorkerAudit)) * nworkers;
}

/* The leader's decision snapshot (taken before the plan entered parallel
 * mode: shared_state.cpp). */
Snapshot leader_snapshot()
{
    return shared::statement_snapshot_now();
}

Size estimate_dsm(CustomScanState *, ParallelContext *pcxt)
{
    Size size = 0;
    entry([&] { size = layout(nullptr, uint32(pcxt->nworkers), leader_snapshot()); });
    return size;
}

void reset_audit(ContextState *cs)
{
    Shared *shm = cs->shm;
    for (uint32 w = 0; w < shm->nworkers; w++) {
        WorkerAudit *a = audit_area(shm, w);
        pg_atomic_init_u32(&a->n, 0);
        for (SharedCount &e : a->e) {
            pg_atomic_init_u64(&e.revealed, 0);
            pg_atomic_init_u64(&e.masked, 0);
        }
    }
    if (cs->seen)
        std::fill(cs->seen, cs->seen + size_t(cs->seen_workers) * AUDIT_ENTRIES * 2, 0);
}

void segment_detached(dsm_segment *, Datum arg);

void initialize_dsm(CustomScanState *node, ParallelContext *pcxt, void *coordinate)
{
    auto *cs = reinterpret_cast<ContextState *>(node);
    entry([&] {
        Snapshot snap = leader_snapshot();
        auto *shm = static_cast<Shared *>(coordinate);
        layout(shm, uint32(pcxt->nworkers), snap);
        bool everything = false;
        const std::vector<std::string> &keys = cache_own_changes(everything);
        char *p = reinterpret_cast<char *>(shm) + shm->keys_at;
        if (!everything)
            for (const std::string &k : keys) {
                uint32 len = uint32(k.size());
                memcpy(p, &len, sizeof(len));
                memcpy(p + sizeof(len), k.data(), len);
                p += sizeof(len) + len;
            }
        if (snap)
            pg([&] { SerializeSnapshot(snap, reinterpret_cast<char *>(shm) + shm->snapshot_at); });
        cs->shm = shm;
        if (pcxt->seg && cs->seg != pcxt->seg) {
            pg([&] { on_dsm_detach(pcxt->seg, segment_detached, PointerGetDatum(cs)); });
            cs->seg = pcxt->seg;
        }
        if (!cs->seen || cs->seen_workers < shm->nworkers) {
            cs->seen = static_cast<uint64 *>(pg([&] {
                return MemoryContextAllocZero(node->ss.ps.state->es_query_cxt,
                                              sizeof(uint64) * AUDIT_ENTRIES * 2 * std::max<uint32>(shm->nworkers, 1));
            }));
            cs->seen_workers = shm->nworkers;
        }
        reset_audit(cs);
    });
}

/* Leader: adds what the workers counted since the last time (no catalog
 * access, no error: also while the transaction aborts). */
void take_counts(ContextState *cs) noexcept
{
    Shared *shm = cs->shm;
    if (!shm || !cs->seen)
        return;
    for (uint32 w = 0; w < shm->nworkers && w < cs->seen_workers; w++) {
        WorkerAudit *a = audit_area(shm, w);
        uint32 n = std::min(pg_atomic_read_u32(&a->n), AUDIT_ENTRIES);
        pg_read_barrier();
        uint64 *seen = cs->seen + size_t(w) * AUDIT_ENTRIES * 2;
        for (uint32 j = 0; j < n; j++) {
            SharedCount &e = a->e[j];
            uint64 r = pg_atomic_read_u64(&e.revealed), m = pg_atomic_read_u64(&e.masked);
            uint64 dr = r - seen[2 * j], dm = m - seen[2 * j + 1];
            seen[2 * j] = r;
            seen[2 * j + 1] = m;
            if (dr || dm)
                audit_add_counts(WorkerCount{e.relid, e.attno, e.role, e.purpose, e.category, 0, 0}, e.names, dr, dm);
        }
    }
}

/* The segment goes away: on an error, before the executor shut down (a
 * worker's error, or the leader's), the rows the leader returned until
 * then are counted too. */
void segment_detached(dsm_segment *, Datum arg)
{
    auto *cs = reinterpret_cast<ContextState *>(DatumGetPointer(arg));
    take_counts(cs);
    cs->shm = nullptr;
    cs->seg = nullptr;
}

void reinitialize_dsm(CustomScanState *node, ParallelContext *, void *coordinate)
{
    auto *cs = reinterpret_cast<ContextState *>(node);
    cs->shm = static_cast<Shared *>(coordinate);
    take_counts(cs); /* the workers of the last launch have finished */
    reset_audit(cs);
}

void worker_emit_log(ErrorData *edata);
extern emit_log_hook_type prev_emit_log_hook;

void initialize_worker(CustomScanState *node, shm_toc *, void *coordinate)
{
    auto *cs = reinterpret_cast<ContextState *>(node);
    auto *shm = static_cast<Shared *>(coordinate);
    entry([&] {
        if (shm->has_snapshot) {
            Snapshot snap = pg([&] { return RestoreSnapshot(reinterpret_cast<char *>(shm) + shm->snapshot_at); });
            shared::adopt_statement_snapshot(snap);
        }
        std::vector<std::string> keys;
        keys.reserve(shm->n_keys);
        const char *p = reinterpret_cast<const char *>(shm) + shm->keys_at;
        for (uint32 i = 0; i < shm->n_keys; i++) {
            uint32 len;
            memcpy(&len, p, sizeof(len));
            keys.emplace_back(p + sizeof(len), len);
            p += sizeof(len) + len;
        }
        cache_adopt_leader_changes(shm->everything, keys);
        received = true;
        cs->worker = true;
        if (ParallelWorkerNumber >= 0 && uint32(ParallelWorkerNumber) < shm->nworkers && !worker_area) {
            worker_buf = static_cast<WorkerCount *>(
                pg([] { return MemoryContextAlloc(TopMemoryContext, sizeof(WorkerCount) * AUDIT_ENTRIES); }));
            worker_area = audit_area(shm, uint32(ParallelWorkerNumber));
            audit_hand_over(AUDIT_ENTRIES);
            prev_emit_log_hook = emit_log_hook; /* a worker is a process of its own */
            emit_log_hook = worker_emit_log;
        }
    });
}

/* Worker: hands the statement's counts so far to the leader. */
void hand_over() noexcept
{
    WorkerAudit *a = worker_area;
    if (!a)
        return;
    size_t n = audit_worker_counts(worker_buf, AUDIT_ENTRIES);
    uint32 have = pg_atomic_read_u32(&a->n);
    for (size_t j = 0; j < n; j++) {
        SharedCount &e = a->e[j];
        const WorkerCount &w = worker_buf[j];
        if (j >= have) {
            e.relid = w.relid;
            e.attno = w.attno;
            e.role = w.role;
            e.purpose = w.purpose;
            e.category = w.category;
            audit_worker_names(j, e.names);
        }
        pg_atomic_write_u64(&e.revealed, w.revealed);
        pg_atomic_write_u64(&e.masked, w.masked);
    }
    if (n > have) {
        pg_write_barrier();
        pg_atomic_write_u32(&a->n, uint32(n));
    }
}

void begin_scan(CustomScanState *node, EState *estate, int eflags)
{
    auto *cs = reinterpret_cast<ContextState *>(node);
    auto *plan = (CustomScan *)node->ss.ps.plan;
    cs->child = ExecInitNode((Plan *)linitial(plan->custom_plans), estate, eflags);
    node->custom_ps = list_make1(cs->child);
    /* the child's rows are returned as they are, in the child's slots */
    node->ss.ps.resultopsset = true;
    node->ss.ps.resultopsfixed = false;
}

TupleTableSlot *exec_scan(CustomScanState *node)
{
    auto *cs = reinterpret_cast<ContextState *>(node);
    TupleTableSlot *slot = ExecProcNode(cs->child);
    if (cs->worker)
        hand_over(); /* before the row reaches the leader */
    return slot;
}

void shutdown_scan(CustomScanState *node)
{
    auto *cs = reinterpret_cast<ContextState *>(node);
    if (cs->worker) {
        hand_over();
        return;
    }
    /* leader: the shared memory goes away after this (Gather shuts down
     * after its children) */
    take_counts(cs);
    cs->shm = nullptr;
}

void end_scan(CustomScanState *node)
{
    auto *cs = reinterpret_cast<ContextState *>(node);
    if (cs->worker)
        hand_over();
    else
        take_counts(cs); /* not shut down: Gather still holds its memory */
    ExecEndNode(cs->child);
}

const CustomExecMethods exec_methods = {
    "ConsentContext", begin_scan,     exec_scan,       end_scan,          rescan_child,        nullptr, nullptr,
    estimate_dsm,     initialize_dsm, reinitialize_dsm, initialize_worker, shutdown_scan, nullptr,
};

Node *create_state(CustomScan *)
{
    auto *cs = static_cast<ContextState *>(palloc0(sizeof(ContextState)));
    NodeSetTag(&cs->css, T_CustomScanState);
    cs->css.methods = &exec_methods;
    return (Node *)cs;
}

const CustomScanMethods plan_methods = {"ConsentContext", create_state};

/* ---- the plan --------------------------------------------------------- */

Plan *context_over(Plan *child, int &next_id)
{
    auto *cs = makeNode(CustomScan);
    Plan *plan = &cs->scan.plan;
    plan->startup_cost = child->startup_cost;
    plan->total_cost = child->total_cost;
    plan->plan_rows = child->plan_rows;
    plan->plan_width = child->plan_width;
    plan->parallel_aware = true; /* for its shared memory */
    plan->parallel_safe = true;
    plan->plan_node_id = next_id++;
    plan->extParam = bms_copy(child->extParam);
    plan->allParam = bms_copy(child->allParam);
    /* The node's scan tuple is the child's row: custom_scan_tlist names its
     * columns as the child's outputs (OUTER_VAR), and the child is also the
     * plan's lefttree, which is where EXPLAIN looks them up (as it does for
     * a Gather's).  The executor runs the child from custom_plans only. */
    int i = 0;
    ListCell *lc;
    foreach (lc, child->targetlist) {
        auto *tle = (TargetEntry *)lfirst(lc);
        Node *e = (Node *)tle->expr;
        i++;
        Var *in = makeVar(OUTER_VAR, AttrNumber(i), exprType(e), exprTypmod(e), exprCollation(e), 0);
        cs->custom_scan_tlist =
            lappend(cs->custom_scan_tlist, makeTargetEntry((Expr *)in, AttrNumber(i), tle->resname, tle->resjunk));
        Var *v = makeVar(INDEX_VAR, AttrNumber(i), exprType(e), exprTypmod(e), exprCollation(e), 0);
        TargetEntry *out = makeTargetEntry((Expr *)v, AttrNumber(i), tle->resname, tle->resjunk);
        out->ressortgroupref = tle->ressortgroupref;
        out->resorigtbl = tle->resorigtbl;
        out->resorigcol = tle->resorigcol;
        plan->targetlist = lappend(plan->targetlist, out);
    }
    cs->scan.scanrelid = 0;
    plan->lefttree = child;
    cs->custom_plans = list_make1(child);
    cs->custom_private = NIL;
    cs->methods = &plan_methods;
    return plan;
}

void add_to(Plan *&p, int &next_id)
{
    if (IsA(p, Gather) || IsA(p, GatherMerge)) {
        /* not over a lone Result (force_parallel_mode puts a Gather over a
         * PL/pgSQL simple expression, and PL/pgSQL expects the Result right
         * under it): its worker decides on its own (cache.cpp) */
        Plan *child = p->lefttree;
        if (child && !(IsA(child, Result) && !child->lefttree))
            p->lefttree = context_over(child, next_id);
        return; /* no Gather runs under another */
    }
    for_each_child_plan(p, [&](Plan *&child) { add_to(child, next_id); });
}

} // namespace

void add_parallel_context(PlannedStmt *stmt)
{
    int next_id = max_plan_node_id(stmt) + 1;
    add_to(stmt->planTree, next_id);
    for_each_plan_in(stmt->subplans, [&](Plan *&sub) { add_to(sub, next_id); });
}

namespace {
/* A worker's statement fails: what it counted until then (rows its leader
 * may have returned, cells read before the error) goes to the leader, which
 * takes it when the segment goes away.  The leader may detach the segment
 * as soon as it has the worker's error, so the worker hands its counts
 * over when it reports the error (emit_log_hook runs before the report is
 * sent; with log_min_messages above ERROR it does not run, and the
 * transaction's abort hands them over, maybe too late). */
void worker_xact_callback(XactEvent event, void *) noexcept
{
    if (event == XACT_EVENT_PARALLEL_ABORT)
        hand_over();
}

emit_log_hook_type prev_emit_log_hook = nullptr;

void worker_emit_log(ErrorData *edata)
{
    if (edata->elevel >= ERROR)
        hand_over();
    if (prev_emit_log_hook)
        prev_emit_log_hook(edata);
}
} // namespace

void register_parallel_context()
{
    RegisterCustomScanMethods(&plan_methods);
    /* registered after the audit's callback, so called before it */
    RegisterXactCallback(worker_xact_callback, nullptr);
}

bool leader_context_received()
{
    return received;
}

} // namespace consent
