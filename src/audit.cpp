/*
 * audit.cpp — the disclosure audit: per-statement log lines (consent.audit,
 * modelled on pgaudit) and cumulative counters in shared memory
 * (consent.disclosures, modelled on pg_stat_statements).
 *
 * The mask function calls audit_cell() for every non-NULL tagged cell it
 * decides.  Cells are counted in a small per-backend table keyed by
 * (relation, column, acting role, purpose): no lock, no catalog access, no
 * allocation per cell.  When the top-level statement ends (ExecutorEnd or
 * ProcessUtility back at nesting level 0; transaction end for what a failed
 * or unfinished statement counted) the table is flushed: one log line per
 * column when consent.audit asks for it, and the shared counters are
 * updated under the LWLock taken once per flush.  Cells counted by nested
 * statements (functions, DO blocks, procedures, cursors read by FETCH) are
 * part of the top-level statement that ran them.  A cell counts only when
 * its relation is in the range table of a running executor: the mask
 * function is callable by everyone, and a direct call must not forge a
 * disclosure of a table the caller does not read.
 *
 * Owns: the consent.audit* and consent.*disclosures* settings, the
 * executor/utility hooks that track statement nesting, the shared hash
 * table of counters and the SQL functions behind consent.disclosures.
 * Must never: write to a table (it runs on hot standbys and in read-only
 * transactions), log a cell's value or a statement's text, or raise an
 * error out of a transaction callback.
 */
#include "audit.h"
#include "citus.h"
#include "compat.h"
#include "consent.h"
#include "decision.h"
#include "invalidation.h"

extern "C" {
#include "access/xact.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "port/atomics.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace consent {

namespace detail {
uint64 audit_epoch = 1;
Oid audit_role = InvalidOid;
}

bool audit_counting = true;

namespace {

/* ---- settings ---------------------------------------------------------- */

enum AuditMode { AUDIT_OFF, AUDIT_MASKED, AUDIT_ALL };

const struct config_enum_entry audit_mode_options[] = {
    {"off", AUDIT_OFF, false}, {"masked", AUDIT_MASKED, false}, {"all", AUDIT_ALL, false}, {nullptr, 0, false}};

/* The levels a log line may be written at (no error levels). */
const struct config_enum_entry log_level_options[] = {
    {"debug5", DEBUG5, false},   {"debug4", DEBUG4, false}, {"debug3", DEBUG3, false}, {"debug2", DEBUG2, false},
    {"debug1", DEBUG1, false},   {"debug", DEBUG2, true},   {"info", INFO, false},     {"notice", NOTICE, false},
    {"warning", WARNING, false}, {"log", LOG, false},       {nullptr, 0, false}};

int audit_mode = AUDIT_OFF;
int audit_log_level = LOG;
bool track_disclosures = true;
int disclosures_max = 5000;

/* Assign hooks run before the variable changes: they compute from the new value. */
void assign_audit_mode(int newval, void *)
{
    audit_counting = newval != AUDIT_OFF || track_disclosures;
}
void assign_track_disclosures(bool newval, void *)
{
    audit_counting = audit_mode != AUDIT_OFF || newval;
}

/* ---- per-backend counters of the running statement ---------------------- */

struct DisclosureEntry;

/* One (relation, column, role, purpose) this backend has counted.  Entries
 * outlive statements: the names are resolved when the entry is created (so
 * a flush at transaction abort needs no catalog access) and kept until an
 * invalidation says they may have changed; the counters and the allowed
 * flag belong to the statement that touched the entry last (period). */
struct LocalCount {
    Oid relid;
    AttrNumber attno;
    Oid role;
    int purpose;  /* index in the taxonomy, -1: none */
    int category_index; /* in the taxonomy, -1: none */
    bool allowed; /* the relation is read by a running statement (see relation_active) */
    uint64 revealed;
    uint64 masked;
    std::string relation; /* schema-qualified, quoted as SQL would */
    std::string schema, table, column, category, purpose_key, role_name;
    uint64 period = 0;                       /* counting period that touched it last */
    DisclosureEntry *shared_entry = nullptr; /* its shared counter, valid while ... */
    uint64 shared_generation = 0;            /* ... no shared entry was removed since */
    bool names_published = false;            /* its names were written to the shared entry */
};

std::vector<LocalCount> counts;
/* The relations in the range tables of the executors running in this
 * backend, with the QueryDesc that runs them.  The mask function is
 * callable by every role (the rewritten queries call it as the user), so a
 * direct call could name any relation: a cell counts only when its
 * relation is read by a running statement, so a role cannot forge
 * disclosures of a table it does not read. */
struct ActiveRelation {
    const QueryDesc *desc;
    SubTransactionId subxact; /* where the executor started */
    Oid relid;
};
std::vector<ActiveRelation> active_relations;
std::vector<int32> slots; /* open addressing: index into counts + 1, 0 = empty */
size_t last_hit = SIZE_MAX;
/* The counting period: one top-level statement.  touched lists the entries
 * it counted, in first-touch order. */
uint64 period = 1;
std::vector<size_t> touched;
/* In a parallel worker: how many of the statement's first entries its
 * leader logs and publishes (audit_hand_over). */
size_t handed_over = 0;
/* A new period or moved entries: every AuditSlot is stale. */
void slots_stale()
{
    ++detail::audit_epoch;
}
/* Set by invalidation callbacks: the cached names may be out of date. */
bool names_stale = false;
uint64 names_taxonomy_generation = 0;
uint64 statement_number = 0; /* per backend, like pgaudit's statement ID */
int nesting = 0;             /* executor/utility nesting level */

size_t slot_of(Oid relid, AttrNumber attno, Oid role, int purpose)
{
    uint64 h = (uint64(relid) * 0x9E3779B97F4A7C15ULL) ^ (uint64(uint16(attno)) << 32) ^
               (uint64(role) * 0xC2B2AE3D27D4EB4FULL) ^ uint64(uint32(purpose));
    h ^= h >> 29;
    return size_t(h) & (slots.size() - 1);
}

void rehash(size_t size)
{
    slots.assign(size, 0);
    for (size_t i = 0; i < counts.size(); i++) {
        const LocalCount &c = counts[i];
        size_t s = slot_of(c.relid, c.attno, c.role, c.purpose);
        while (slots[s] != 0)
            s = (s + 1) & (slots.size() - 1);
        slots[s] = int32(i + 1);
    }
}

bool relation_active(Oid relid)
{
    for (const auto &a : active_relations)
        if (a.relid == relid)
            return true;
    return false;
}

/* A new entry: resolves the names once. */
/* Adds a new entry (no catalog access). */
size_t insert_count(LocalCount &&c)
{
    Oid relid = c.relid, role = c.role;
    AttrNumber attno = c.attno;
    int purpose = c.purpose;
    counts.push_back(std::move(c));
    slots_stale(); /* the vector may have moved */
    if ((counts.size() + 1) * 4 > slots.size() * 3)
        rehash(std::max<size_t>(64, slots.size() * 2));
    else {
        size_t s = slot_of(relid, attno, role, purpose);
        while (slots[s] != 0)
            s = (s + 1) & (slots.size() - 1);
        slots[s] = int32(counts.size());
    }
    return counts.size() - 1;
}

size_t add_count(int category, Oid relid, AttrNumber attno, Oid role, int purpose)
{
    LocalCount c{relid, attno, role, purpose, category, false, 0, 0, {}, {}, {}, {}, {}, {}, {}};
    pg([&] {
        char *rel = get_rel_name(relid);
        char *nsp = get_namespace_name(get_rel_namespace(relid));
        char *col = get_attname(relid, attno, true);
        char *user = GetUserNameFromId(role, true);
        c.schema = nsp ? nsp : "";
        c.table = rel ? rel : "";
        c.relation = (rel && nsp) ? quote_qualified_identifier(nsp, rel) : std::to_string(relid);
        c.column = col ? col : std::to_string(attno);
        c.role_name = user ? user : std::to_string(role);
    });
    const Taxonomy &t = taxonomy();
    if (category >= 0 && size_t(category) < t.categories.size())
        c.category = t.categories[size_t(category)].key;
    if (purpose >= 0 && size_t(purpose) < t.purposes.size())
        c.purpose_key = t.purposes[size_t(purpose)].key;
    return insert_count(std::move(c));
}

bool same_key(const LocalCount &c, Oid relid, AttrNumber attno, Oid role, int purpose)
{
    return c.relid == relid && c.attno == attno && c.role == role && c.purpose == purpose;
}

/* The entry of (relation, column, role, purpose), SIZE_MAX when there is none. */
size_t find_count(Oid relid, AttrNumber attno, Oid role, int purpose)
{
    if (slots.empty())
        return SIZE_MAX;
    for (size_t s = slot_of(relid, attno, role, purpose); slots[s] != 0; s = (s + 1) & (slots.size() - 1))
        if (same_key(counts[size_t(slots[s] - 1)], relid, attno, role, purpose))
            return size_t(slots[s] - 1);
    return SIZE_MAX;
}

/* Entry i is counted by the running statement: its counters start from
 * zero at the statement's first count; whether the statement reads its
 * relation (see relation_active). */
bool touch_count(size_t i)
{
    LocalCount &c = counts[i];
    if (c.period != period) {
        c.period = period;
        c.revealed = c.masked = 0;
        c.allowed = false;
        touched.push_back(i);
    }
    if (!c.allowed)
        c.allowed = relation_active(c.relid);
    return c.allowed;
}

/* Ends the counting period: the next statement counts from zero. */
void clear_counts()
{
    touched.clear();
    ++period;
    slots_stale();
}

/* Forgets every entry (their names may have changed); between periods only. */
void drop_counts()
{
    counts.clear();
    slots_stale();
    if (!slots.empty())
        std::fill(slots.begin(), slots.end(), 0);
    last_hit = SIZE_MAX;
}

/* ---- shared counters ---------------------------------------------------- */

constexpr size_t KEY_LEN = 208; /* consent keys are at most 200 characters */
const char *const TRANCHE = "pg_consent disclosures";

/* Hash key: zero-padded, hashed as a blob. */
struct DisclosureKey {
    Oid dbid;
    Oid roleid;
    Oid relid;
    int16 attnum;
    char purpose[KEY_LEN]; /* "" = no purpose */
};

struct DisclosureEntry {
    DisclosureKey key;
    slock_t mutex; /* protects the counters and last_time */
    int64 revealed;
    int64 masked;
    TimestampTz last_time;
    char category[KEY_LEN];
    char schema[NAMEDATALEN];
    char table[NAMEDATALEN];
    char column[NAMEDATALEN];
};

struct DisclosureShared {
    LWLock *lock; /* the hash table: shared to update counters, exclusive to add or remove entries */
    /* bumped (under the exclusive lock) whenever entries are removed: a
     * backend's pointer to an entry stays valid while it is unchanged */
    pg_atomic_uint64 generation;
    slock_t mutex; /* evictions, stats_reset */
    int64 evictions;
    TimestampTz stats_reset;
};

DisclosureShared *shared = nullptr;
HTAB *shared_hash = nullptr;
shmem_request_hook_type prev_shmem_request = nullptr;
shmem_startup_hook_type prev_shmem_startup = nullptr;

Size shared_size()
{
    return add_size(MAXALIGN(sizeof(DisclosureShared)), hash_estimate_size(disclosures_max, sizeof(DisclosureEntry)));
}

void audit_shmem_request()
{
    if (prev_shmem_request)
        prev_shmem_request();
    RequestAddinShmemSpace(shared_size());
    RequestNamedLWLockTranche(TRANCHE, 1);
}

void audit_shmem_startup()
{
    if (prev_shmem_startup)
        prev_shmem_startup();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found;
    shared =
        static_cast<DisclosureShared *>(ShmemInitStruct("pg_consent disclosures", sizeof(DisclosureShared), &found));
    if (!found) {
        shared->lock = &(GetNamedLWLockTranche(TRANCHE))->lock;
        pg_atomic_init_u64(&shared->generation, 1);
        SpinLockInit(&shared->mutex);
        shared->evictions = 0;
        shared->stats_reset = GetCurrentTimestamp();
    }
    HASHCTL info;
    memset(&info, 0, sizeof(info));
    info.keysize = sizeof(DisclosureKey);
    info.entrysize = sizeof(DisclosureEntry);
    shared_hash =
        ShmemInitHash("pg_consent disclosures hash", disclosures_max, disclosures_max, &info, HASH_ELEM | HASH_BLOBS);
    LWLockRelease(AddinShmemInitLock);
}

void fill_key(DisclosureKey *key, const LocalCount &c)
{
    memset(key, 0, sizeof(*key));
    key->dbid = MyDatabaseId;
    key->roleid = c.role;
    key->relid = c.relid;
    key->attnum = c.attno;
    strlcpy(key->purpose, c.purpose_key.c_str(), sizeof(key->purpose));
}

bool older(const DisclosureEntry *a, const DisclosureEntry *b)
{
    return a->last_time < b->last_time;
}

/* The table is full: removes the least recently updated 5% (at least one
 * entry), as pg_stat_statements deallocates its least used entries.  Called
 * with the lock held exclusively; plain C, no C++ object in this frame. */
void evict_entries()
{
    long n = hash_get_num_entries(shared_hash);
    if (n <= 0)
        return;
    DisclosureEntry **all = static_cast<DisclosureEntry **>(palloc(sizeof(DisclosureEntry *) * size_t(n)));
    long i = 0;
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, shared_hash);
    DisclosureEntry *e;
    while ((e = static_cast<DisclosureEntry *>(hash_seq_search(&seq))) != nullptr)
        if (i < n)
            all[i++] = e;
    std::sort(all, all + i, older);
    long victims = std::max<long>(1, i * 5 / 100);
    pg_atomic_fetch_add_u64(&shared->generation, 1);
    for (long j = 0; j < victims && j < i; j++)
        hash_search(shared_hash, &all[j]->key, HASH_REMOVE, nullptr);
    pfree(all);
    SpinLockAcquire(&shared->mutex);
    shared->evictions += std::min(victims, i);
    SpinLockRelease(&shared->mutex);
}

void add_to_entry(DisclosureEntry *e, const LocalCount &c, TimestampTz now)
{
    SpinLockAcquire(&e->mutex);
    e->revealed += int64(c.revealed);
    e->masked += int64(c.masked);
    e->last_time = now;
    SpinLockRelease(&e->mutex);
}

/* Adds the statement's counts to shared memory: the lock is taken shared
 * once for the statement, and exclusively once more only when a column is
 * new.  Plain C calls only (run through pg()). */
void flush_shared()
{
    if (!shared || !shared_hash || touched.empty())
        return;
    TimestampTz now = GetCurrentTimestamp();
    /* reserved before the lock (no allocation under it), and kept: the
     * next statement needs no allocation either */
    static std::vector<size_t> missing;
    missing.clear();
    missing.reserve(touched.size());
    DisclosureKey key;
    pg([&] {
        LWLockAcquire(shared->lock, LW_SHARED);
        uint64 generation = pg_atomic_read_u64(&shared->generation);
        for (size_t i : touched) {
            LocalCount &c = counts[i];
            if (!c.allowed)
                continue;
            /* the entry found by an earlier statement, unless one was removed
             * since; names are written once per local entry, under the
             * exclusive lock below (readers copy them under the shared one) */
            if (!c.names_published) {
                missing.push_back(i);
                continue;
            }
            if (c.shared_entry && c.shared_generation == generation) {
                add_to_entry(c.shared_entry, c, now);
                continue;
            }
            fill_key(&key, c);
            auto *e = static_cast<DisclosureEntry *>(hash_search(shared_hash, &key, HASH_FIND, nullptr));
            if (e) {
                add_to_entry(e, c, now);
                c.shared_entry = e;
                c.shared_generation = generation;
            } else {
                missing.push_back(i);
            }
        }
        LWLockRelease(shared->lock);
        if (missing.empty())
            return;
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        for (size_t i : missing) {
            LocalCount &c = counts[i];
            fill_key(&key, c);
            auto *e = static_cast<DisclosureEntry *>(hash_search(shared_hash, &key, HASH_FIND, nullptr));
            if (!e) {
                if (hash_get_num_entries(shared_hash) >= disclosures_max)
                    evict_entries();
                bool found;
                e = static_cast<DisclosureEntry *>(hash_search(shared_hash, &key, HASH_ENTER_NULL, &found));
                if (!e)
                    continue; /* out of shared memory: the counts are lost, never an error */
                if (!found) {
                    SpinLockInit(&e->mutex);
                    e->revealed = 0;
                    e->masked = 0;
                }
            }
            /* the latest names win (a renamed table, a changed column type) */
            strlcpy(e->category, c.category.c_str(), sizeof(e->category));
            strlcpy(e->schema, c.schema.c_str(), sizeof(e->schema));
            strlcpy(e->table, c.table.c_str(), sizeof(e->table));
            strlcpy(e->column, c.column.c_str(), sizeof(e->column));
            add_to_entry(e, c, now);
            c.shared_entry = e;
            c.shared_generation = pg_atomic_read_u64(&shared->generation);
            c.names_published = true;
        }
        LWLockRelease(shared->lock);
    });
}

/* ---- the log line -------------------------------------------------------- */

/* A CSV field: quoted when it holds a comma, a quote or a line break. */
void append_csv(std::string &out, const std::string &field)
{
    out += ',';
    if (field.find_first_of(",\"\r\n") == std::string::npos) {
        out += field;
        return;
    }
    out += '"';
    for (char ch : field) {
        if (ch == '"')
            out += '"';
        out += ch;
    }
    out += '"';
}

/* CONSENT: AUDIT,<statement>,<role>,<purpose>,<relation>,<column>,<category>,<revealed>,<masked> */
void write_log_lines(uint64 statement)
{
    if (audit_mode == AUDIT_OFF)
        return;
    if (audit_mode == AUDIT_MASKED && std::none_of(touched.begin(), touched.end(),
                                                   [](size_t i) { return counts[i].allowed && counts[i].masked > 0; }))
        return;
    std::vector<const LocalCount *> order;
    order.reserve(touched.size());
    for (size_t i : touched)
        if (counts[i].allowed)
            order.push_back(&counts[i]);
    std::sort(order.begin(), order.end(), [](const LocalCount *a, const LocalCount *b) {
        if (a->relation != b->relation)
            return a->relation < b->relation;
        if (a->attno != b->attno)
            return a->attno < b->attno;
        if (a->role_name != b->role_name)
            return a->role_name < b->role_name;
        return a->purpose_key < b->purpose_key;
    });
    /* LOG goes to the server log only; other levels follow client_min_messages
     * (for tests, like pgaudit's log_level). */
    int level = audit_log_level == LOG ? LOG_SERVER_ONLY : audit_log_level;
    for (const LocalCount *c : order) {
        std::string line = "AUDIT," + std::to_string(statement);
        append_csv(line, c->role_name);
        append_csv(line, c->purpose_key);
        append_csv(line, c->relation);
        append_csv(line, c->column);
        append_csv(line, c->category);
        line += ',' + std::to_string(c->revealed) + ',' + std::to_string(c->masked);
        pg([&] {
            ereport(level, (errmsg_internal("CONSENT: %s", line.c_str()), errhidestmt(true), errhidecontext(true)));
        });
    }
}

/* The top-level statement ended: log and publish what it counted. */
void flush_statement()
{
    if (handed_over > 0) /* a parallel worker: those are its leader's */
        touched.erase(touched.begin(), touched.begin() + ptrdiff_t(std::min(handed_over, touched.size())));
    if (std::none_of(touched.begin(), touched.end(), [](size_t i) { return counts[i].allowed; })) {
        clear_counts();
        return;
    }
    uint64 statement = ++statement_number;
    try {
        write_log_lines(statement);
        if (track_disclosures)
            flush_shared();
    } catch (...) {
        clear_counts();
        throw;
    }
    clear_counts();
}

/* ---- hooks ----------------------------------------------------------------- */

ExecutorStart_hook_type prev_executor_start = nullptr;
ExecutorRun_hook_type prev_executor_run = nullptr;
ExecutorFinish_hook_type prev_executor_finish = nullptr;
ExecutorEnd_hook_type prev_executor_end = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

/* Remembers the relations a statement reads (see active_relations). */
void audit_executor_start(QueryDesc *desc, int eflags)
{
    entry([&] {
        ListCell *lc;
        foreach (lc, desc->plannedstmt->rtable) {
            RangeTblEntry *rte = (RangeTblEntry *)lfirst(lc);
            if (rte->rtekind == RTE_RELATION)
                active_relations.push_back({desc, GetCurrentSubTransactionId(), rte->relid});
        }
    });
    if (prev_executor_start)
        prev_executor_start(desc, eflags);
    else
        standard_ExecutorStart(desc, eflags);
}

void forget_relations(const QueryDesc *desc)
{
    active_relations.erase(std::remove_if(active_relations.begin(), active_relations.end(),
                                          [desc](const ActiveRelation &a) { return a.desc == desc; }),
                           active_relations.end());
}

/* These frames hold no C++ objects: PG_TRY restores the nesting level. */
void audit_executor_run(CONSENT_EXECUTOR_RUN_PARAMS)
{
    nesting++;
    PG_TRY();
    {
        if (prev_executor_run)
            prev_executor_run(CONSENT_EXECUTOR_RUN_ARGS);
        else
            standard_ExecutorRun(CONSENT_EXECUTOR_RUN_ARGS);
    }
    PG_FINALLY();
    {
        nesting--;
    }
    PG_END_TRY();
}

void audit_executor_finish(QueryDesc *desc)
{
    nesting++;
    PG_TRY();
    {
        if (prev_executor_finish)
            prev_executor_finish(desc);
        else
            standard_ExecutorFinish(desc);
    }
    PG_FINALLY();
    {
        nesting--;
    }
    PG_END_TRY();
}

void audit_executor_end(QueryDesc *desc)
{
    if (prev_executor_end)
        prev_executor_end(desc);
    else
        standard_ExecutorEnd(desc);
    forget_relations(desc); /* no allocation: cannot fail */
    if (nesting == 0 && !touched.empty())
        entry([] { flush_statement(); });
}

void audit_process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
                           ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
                           DestReceiver *dest, QueryCompletion *qc)
{
    nesting++;
    PG_TRY();
    {
        if (prev_process_utility)
            prev_process_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
        else
            standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    }
    PG_FINALLY();
    {
        nesting--;
    }
    PG_END_TRY();
    /* FETCH, EXECUTE, COPY (query) TO, CALL, DO, EXPLAIN ANALYZE... */
    if (nesting == 0 && !touched.empty())
        entry([] { flush_statement(); });
}

/* Transaction end: what a failed statement (or one whose cursor stayed open
 * until now) counted is logged and published too — the cells were decided,
 * and possibly sent.  Before commit an error may still abort cleanly; after
 * an abort nothing may escape. */
void audit_xact_callback(XactEvent event, void *) noexcept
{
    /* no executor survives the end of its transaction (a WITH HOLD cursor
     * is materialized before commit); those of a failed subtransaction
     * never reached ExecutorEnd */
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_ABORT ||
        event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
        active_relations.clear();
    if (touched.empty())
        return;
    switch (event) {
    case XACT_EVENT_PRE_COMMIT:
    case XACT_EVENT_PARALLEL_PRE_COMMIT:
    case XACT_EVENT_PRE_PREPARE:
        entry([] { flush_statement(); });
        break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_PREPARE:
        try {
            flush_statement();
        } catch (...) {
            clear_counts();
        }
        break;
    }
}

/* Invalidations that may rename what the cached entries name. */
} // namespace

void audit_relation_changed(Oid relid) noexcept
{
    if (relid == InvalidOid)
        names_stale = true;
    for (const LocalCount &c : counts)
        if (c.relid == relid)
            names_stale = true;
}
void audit_names_changed() noexcept
{
    names_stale = true;
}

namespace {

/* A subtransaction aborted: the executors it started (and those of its
 * children, which have later IDs) are gone without ExecutorEnd. */
void audit_subxact_callback(SubXactEvent event, SubTransactionId my_subid, SubTransactionId, void *) noexcept
{
    if (event != SUBXACT_EVENT_ABORT_SUB)
        return;
    active_relations.erase(std::remove_if(active_relations.begin(), active_relations.end(),
                                          [my_subid](const ActiveRelation &a) { return a.subxact >= my_subid; }),
                           active_relations.end());
}

} // namespace

namespace {
/* The entry of (relation, column, role, purpose) for the running
 * statement: found or made, its counters reset at its first use by the
 * statement.  Whether the statement reads the relation (else the entry
 * counts nothing: see relation_active). */
size_t statement_entry(int category, Oid relid, AttrNumber attno, Oid role, int purpose)
{
    if (touched.empty()) {
        /* the first cell of a statement: names cached by earlier ones may
         * have changed (renamed relation, column, schema or role, changed
         * taxonomy) */
        uint64 generation = taxonomy().generation;
        if (names_stale || generation != names_taxonomy_generation || counts.size() > 4096) {
            drop_counts();
            names_stale = false;
            names_taxonomy_generation = generation;
        }
    }
    size_t i = last_hit;
    if (i >= counts.size() || !same_key(counts[i], relid, attno, role, purpose)) {
        i = find_count(relid, attno, role, purpose);
        if (i == SIZE_MAX)
            i = add_count(category, relid, attno, role, purpose);
        last_hit = i;
    }
    touch_count(i);
    return i;
}
} // namespace

size_t audit_worker_counts(WorkerCount *out, size_t max)
{
    size_t n = std::min(max, touched.size());
    for (size_t j = 0; j < n; j++) {
        const LocalCount &c = counts[touched[j]];
        out[j] = WorkerCount{c.relid,    c.attno, c.role, c.purpose, c.category_index, c.allowed ? c.revealed : 0,
                             c.allowed ? c.masked : 0};
    }
    return n;
}

void audit_hand_over(size_t max)
{
    handed_over = max;
}

namespace {
void copy_name(char *to, size_t size, const std::string &from)
{
    size_t n = std::min(size - 1, from.size());
    memcpy(to, from.data(), n);
    to[n] = '\0';
}
} // namespace

void audit_worker_names(size_t j, WorkerNames &out)
{
    const LocalCount &c = counts[touched[j]];
    copy_name(out.relation, sizeof(out.relation), c.relation);
    copy_name(out.schema, sizeof(out.schema), c.schema);
    copy_name(out.table, sizeof(out.table), c.table);
    copy_name(out.column, sizeof(out.column), c.column);
    copy_name(out.role, sizeof(out.role), c.role_name);
    copy_name(out.category, sizeof(out.category), c.category);
    copy_name(out.purpose, sizeof(out.purpose), c.purpose_key);
}

void audit_add_counts(const WorkerCount &w, const WorkerNames &names, uint64 revealed, uint64 masked) noexcept
{
    try {
        /* the statement's first count: names kept from earlier statements
         * may be out of date (the taxonomy's generation is not checked:
         * that could load it) */
        if (touched.empty() && (names_stale || counts.size() > 4096)) {
            drop_counts();
            names_stale = false;
        }
        size_t i = find_count(w.relid, w.attno, w.role, w.purpose);
        if (i == SIZE_MAX) /* the worker's names: no catalog access here */
            i = insert_count(LocalCount{w.relid, w.attno, w.role, w.purpose, w.category, false, 0, 0, names.relation,
                                        names.schema, names.table, names.column, names.category, names.purpose,
                                        names.role});
        if (!touch_count(i))
            return;
        LocalCount &c = counts[i];
        c.revealed += revealed;
        c.masked += masked;
    } catch (...) {
        /* out of memory: these counts are lost, nothing else */
    }
}

/* Counts one cell for the running statement. */
void audit_count(const ColumnRule &rule, Oid relid, AttrNumber attno, int purpose, uint64 context, bool revealed,
                 AuditSlot &slot)
{
    Oid role = OidIsValid(detail::audit_role) ? detail::audit_role : GetOuterUserId();
    /* a Citus shard's cells count as its distributed table's */
    Oid parent = citus::shard_parent(relid);
    bool shard_read = OidIsValid(parent) && relation_active(relid);
    if (OidIsValid(parent)) {
        AttrNumber parent_attno = pg([&] {
            char *name = get_attname(relid, attno, true);
            return name ? get_attnum(parent, name) : InvalidAttrNumber;
        });
        if (parent_attno != InvalidAttrNumber) {
            relid = parent;
            attno = parent_attno;
        }
    }
    size_t i = statement_entry(rule.category, relid, attno, role, purpose);
    LocalCount &c = counts[i];
    slot.epoch = 0;
    if (shard_read)
        c.allowed = true; /* the statement reads the shard */
    if (!c.allowed)
        return; /* a direct call naming a relation no running statement reads */
    slot = AuditSlot{detail::audit_epoch, &c.revealed, &c.masked, context};
    if (revealed)
        c.revealed++;
    else
        c.masked++;
}

/* Registers consent.audit, consent.audit_log_level, consent.track_disclosures
 * and consent.disclosures_max (called from define_gucs). */
void define_audit_gucs()
{
    DefineCustomEnumVariable("consent.audit", "Logs the consent-tagged cells each statement revealed and masked.",
                             "off: no log; masked: statements that masked at least one cell; all: every "
                             "statement that read a consent-tagged cell. One line per column.",
                             &audit_mode, AUDIT_OFF, audit_mode_options, PGC_SUSET, 0, nullptr, assign_audit_mode,
                             nullptr);
    DefineCustomEnumVariable("consent.audit_log_level", "Message level of consent.audit lines.",
                             "log (the default) writes to the server log only; other levels follow "
                             "client_min_messages and log_min_messages (meant for tests).",
                             &audit_log_level, LOG, log_level_options, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable("consent.track_disclosures", "Counts revealed and masked cells in consent.disclosures.",
                             nullptr, &track_disclosures, true, PGC_SUSET, 0, nullptr, assign_track_disclosures,
                             nullptr);
    DefineCustomIntVariable("consent.disclosures_max", "Number of entries consent.disclosures keeps.",
                            "One entry per database, role, purpose, relation and column; when full, the "
                            "least recently updated entries are evicted.",
                            &disclosures_max, 5000, 100, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
}

/* Installs the shared memory request and the statement hooks; called in
 * _PG_init before install_query_hooks(). */
void install_audit_hooks()
{
    prev_shmem_request = shmem_request_hook;
    shmem_request_hook = audit_shmem_request;
    prev_shmem_startup = shmem_startup_hook;
    shmem_startup_hook = audit_shmem_startup;
    prev_executor_start = ExecutorStart_hook;
    ExecutorStart_hook = audit_executor_start;
    prev_executor_run = ExecutorRun_hook;
    ExecutorRun_hook = audit_executor_run;
    prev_executor_finish = ExecutorFinish_hook;
    ExecutorFinish_hook = audit_executor_finish;
    prev_executor_end = ExecutorEnd_hook;
    ExecutorEnd_hook = audit_executor_end;
    prev_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = audit_process_utility;
    RegisterXactCallback(audit_xact_callback, nullptr);
    RegisterSubXactCallback(audit_subxact_callback, nullptr);
}

} // namespace consent

using namespace consent;

namespace {

void require_shared()
{
    if (!shared || !shared_hash)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("pg_consent must be loaded via shared_preload_libraries"),
                        errhint("Add pg_consent to shared_preload_libraries in postgresql.conf and restart the "
                                "server.")));
}

/* Copies the shared counters into the function's tuplestore.  Plain C:
 * an error releases the lock at abort. */
void read_disclosures(FunctionCallInfo fcinfo)
{
    require_shared();
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
    LWLockAcquire(shared->lock, LW_SHARED);
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, shared_hash);
    DisclosureEntry *e;
    while ((e = static_cast<DisclosureEntry *>(hash_seq_search(&seq))) != nullptr) {
        SpinLockAcquire(&e->mutex);
        int64 revealed = e->revealed, masked = e->masked;
        TimestampTz last = e->last_time;
        SpinLockRelease(&e->mutex);
        Datum values[12];
        bool nulls[12] = {false};
        values[0] = ObjectIdGetDatum(e->key.dbid);
        values[1] = ObjectIdGetDatum(e->key.roleid);
        values[2] = ObjectIdGetDatum(e->key.relid);
        values[3] = Int16GetDatum(e->key.attnum);
        values[4] = CStringGetTextDatum(e->schema);
        values[5] = CStringGetTextDatum(e->table);
        values[6] = CStringGetTextDatum(e->column);
        if (e->key.purpose[0] == '\0')
            nulls[7] = true;
        else
            values[7] = CStringGetTextDatum(e->key.purpose);
        values[8] = CStringGetTextDatum(e->category);
        values[9] = Int64GetDatum(revealed);
        values[10] = Int64GetDatum(masked);
        values[11] = TimestampTzGetDatum(last);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    LWLockRelease(shared->lock);
}

} // namespace

/* consent._disclosures(): the shared counters, one row per entry. */
CONSENT_FUNCTION(consent_disclosures)
{
    return entry([&]() -> Datum {
        pg([&] { read_disclosures(fcinfo); });
        return (Datum)0;
    });
}

/* consent._disclosures_info(): entries, capacity, evictions, last reset. */
CONSENT_FUNCTION(consent_disclosures_info)
{
    return entry([&]() -> Datum {
        return pg([&]() -> Datum {
            require_shared();
            TupleDesc desc;
            if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
                elog(ERROR, "return type must be a row type");
            LWLockAcquire(shared->lock, LW_SHARED);
            long entries = hash_get_num_entries(shared_hash);
            LWLockRelease(shared->lock);
            SpinLockAcquire(&shared->mutex);
            int64 evictions = shared->evictions;
            TimestampTz reset = shared->stats_reset;
            SpinLockRelease(&shared->mutex);
            Datum values[4] = {Int64GetDatum(int64(entries)), Int32GetDatum(disclosures_max), Int64GetDatum(evictions),
                               TimestampTzGetDatum(reset)};
            bool nulls[4] = {false, false, false, false};
            return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
        });
    });
}

/* consent.disclosures_reset(): forgets every counter (all databases). */
CONSENT_FUNCTION(consent_disclosures_reset)
{
    return entry([&]() -> Datum {
        pg([&] {
            require_shared();
            LWLockAcquire(shared->lock, LW_EXCLUSIVE);
            HASH_SEQ_STATUS seq;
            hash_seq_init(&seq, shared_hash);
            DisclosureEntry *e;
            pg_atomic_fetch_add_u64(&shared->generation, 1);
            while ((e = static_cast<DisclosureEntry *>(hash_seq_search(&seq))) != nullptr)
                hash_search(shared_hash, &e->key, HASH_REMOVE, nullptr);
            SpinLockAcquire(&shared->mutex);
            shared->evictions = 0;
            shared->stats_reset = GetCurrentTimestamp();
            SpinLockRelease(&shared->mutex);
            LWLockRelease(shared->lock);
        });
        PG_RETURN_VOID();
    });
}
