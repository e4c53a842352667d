/*
 * shared_state.cpp — the server's one consent state (see shared_state.h).
 *
 * Layout: one region reserved at server start (consent.shared_size):
 *     [header] [slots: 8 bytes each, a power of two] [arena of 8-byte words]
 * Each subject has one record in the arena:
 *     [key_len, n_ev, n_pend, flags] [key, zero-padded to words] [events] [pending full xids]
 * and one slot: the high 32 bits of its hash, and its record offset + 1.
 *
 * Readers take no lock.  Records are never changed once a slot points to
 * them: a change appends a new record and then swaps the slot (a single
 * 8-byte store after a write barrier), so a reader sees the old record or
 * the new one, whole.  Only compaction and builds rewrite records in place;
 * they make the generation counter odd while they do, and a reader that
 * saw the generation move retries (every offset a reader follows is bounds
 * checked, so reading a region being rewritten is harmless).  Writers
 * (marks, installs, builds, compaction) take one LWLock.
 *
 * What a record says is the state as of its last load, plus the full xids
 * of the transactions that changed the subject since (pending): a
 * transaction marks its subjects before its commit record is written (and
 * a standby marks them when it replays that transaction's WAL record, which
 * precedes the commit record).  A reader whose statement snapshot no longer
 * sees one of those transactions running (it committed, or aborted) loads
 * the subject again with a newer snapshot and installs the result — unless
 * a mark replaced the record meanwhile.  So a decision never misses a
 * change its statement's snapshot can see, and an aborted change never
 * applies.
 */
#include "shared_state.h"
#include "consent.h"
#include "taxonomy.h"
#include "wal.h"

extern "C" {
#include "access/clog.h"
#include "access/parallel.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

#include "compat.h"

#include <algorithm>
#include <csignal>
#include <cstring>

namespace consent::shared {

int size_mb = 128;

namespace {

enum Status : int { EMPTY, BUILDING, READY, OFF };
const char *status_name(int s)
{
    switch (s) {
    case EMPTY:
        return "empty";
    case BUILDING:
        return "building";
    case READY:
        return "ready";
    default:
        return "off";
    }
}

/* Marks made while the table is not ready, applied by the next build. */
constexpr int EARLY_MAX = 4096;
constexpr int EARLY_KEY = 84;
struct EarlyMark {
    uint64_t fxid;
    Oid database;
    uint16_t len;
    bool everything;
    char key[EARLY_KEY];
};
/* Transactions that changed every subject (TRUNCATE of subject_state). */
constexpr int GLOBAL_MAX = 64;

/* The table's own category and purpose numbering: names appended in the
 * order first used, never removed, so a record's indexes keep their
 * meaning whatever taxonomy a backend has loaded (each backend translates). */
constexpr int NAMES_BYTES = 64 * 1024;
struct Names {
    pg_atomic_uint32 used; /* bytes of buf in use, written after the bytes */
    char buf[NAMES_BYTES]; /* entries: 'c' or 'p', the name, '\0' */
};

/* Consent state is per database: each database that uses the table has a
 * slot here (freed when the database is dropped), and its records' keys
 * start with its OID. */
constexpr int MAX_DATABASES = 64;
struct Db {
    Oid database; /* InvalidOid: a free slot */
    int status;   /* EMPTY, BUILDING, READY */
    int builder;  /* the building backend's pid */
    uint64_t builds;
    uint64_t build_ms;
    uint64_t subjects;
    TimestampTz retry_at; /* a build that could not be trusted: not again before */
    int n_global;
    uint64_t global[GLOBAL_MAX];
    /* The records the last build wrote, in subject order: arena words
     * [run_start, run_end) while run_valid (compaction moves them with the
     * rest).  A subject with a record outside them (a new one, or one whose
     * record there compaction dropped) has its bit set in the database's
     * absence filter; see absent_in_run(). */
    bool run_valid;
    uint64_t run_start, run_end;
};
/* Bits of a database's absence filter (1 kB each). */
constexpr int FILTER_WORDS = 128;

struct Header {
    slock_t mutex; /* status, the databases' status and builder, claiming a database slot */
    int status;    /* READY or OFF: the whole table */
    Db dbs[MAX_DATABASES];
    pg_atomic_uint64 gen;     /* odd while records or slots are rewritten in place */
    pg_atomic_uint64 changes; /* moves at every change of a record */
    pg_atomic_uint32 claims;  /* moves whenever a database takes a slot */
    ConditionVariable built;
    /* below: under the LWLock */
    uint64_t nslots;      /* slots reserved */
    uint64_t slots_used;  /* slots in use: a power of two, at least twice the subjects (grows) */
    uint64_t arena_words;
    uint64_t used;    /* words appended */
    uint64_t garbage; /* words of replaced records */
    uint64_t subjects;
    int n_early;
    bool early_overflow;
    uint64_t early_dropped_max;
    EarlyMark early[EARLY_MAX];
    Names names;
    pg_atomic_uint64 filter[MAX_DATABASES][FILTER_WORDS]; /* per slot of dbs */
};

Header *H = nullptr;
pg_atomic_uint64 *slots = nullptr;
uint64_t *arena = nullptr;
LWLock *lock = nullptr;
shmem_request_hook_type prev_request = nullptr;
shmem_startup_hook_type prev_startup = nullptr;

constexpr const char *TRANCHE = "pg_consent shared state";

/* Holds the LWLock for a C++ scope (LWLockAcquire and LWLockRelease do not
 * raise errors; an error raised while it is held releases it too). */
struct Locked {
    Locked() { LWLockAcquire(lock, LW_EXCLUSIVE); }
    ~Locked()
    {
        if (LWLockHeldByMe(lock))
            LWLockRelease(lock);
    }
    Locked(const Locked &) = delete;
    Locked &operator=(const Locked &) = delete;
};

size_t header_bytes()
{
    return MAXALIGN(sizeof(Header));
}
size_t total_bytes()
{
    return size_t(size_mb) * 1024 * 1024;
}

/* ---- records ------------------------------------------------------------ */

struct RecHeader {
    uint16_t key_len;
    uint16_t n_ev;
    uint16_t n_pend;
    uint16_t flags;
};
static_assert(sizeof(RecHeader) == 8 && sizeof(Event) == 8, "records are made of 8-byte words");
constexpr uint16_t SUPERSEDED = 1; /* no slot points here any more: compaction drops it */

inline uint64_t key_words(size_t len)
{
    return len == 0 ? 1 : (len + 7) / 8;
}
inline uint64_t record_words(const RecHeader &h)
{
    return 1 + key_words(h.key_len) + h.n_ev + h.n_pend;
}
inline RecHeader rec_header(uint64_t r)
{
    RecHeader h;
    memcpy(&h, &arena[r], sizeof h);
    return h;
}

/* Where the record after the last one read starts (a scan in subject
 * order finds its next subject there), and the generation it was read in;
 * where the last one read starts. */
uint64_t next_record = UINT64_MAX;
uint64_t last_record = UINT64_MAX;
uint64_t next_record_gen = UINT64_MAX;
/* Whether the look-ups follow the records' order: only then is the next
 * record worth reading first (in random order it would be one more cache
 * miss per look-up). */
bool in_order = true;
uint64_t n_unordered = 0;

/* Reads the record at r into out if it holds key; bounds checked, so a
 * region being rewritten is read harmlessly (the caller retries). */
bool read_record(uint64_t r, std::string_view key, Copy &out, const Oid *database = nullptr)
{
    if (r >= H->arena_words)
        return false;
    RecHeader h = rec_header(r);
    /* key, or (with database) the database's OID then key */
    size_t prefix = database ? 4 : 0;
    if (h.key_len != key.size() + prefix || r + record_words(h) > H->arena_words)
        return false;
    const char *stored = reinterpret_cast<const char *>(&arena[r + 1]);
    if ((database && memcmp(stored, database, 4) != 0) || memcmp(stored + prefix, key.data(), key.size()) != 0)
        return false;
    last_record = r;
    next_record = r + record_words(h);
    uint64_t b = r + 1 + key_words(h.key_len);
    out.record = uint32_t(r);
    const Event *ev = reinterpret_cast<const Event *>(&arena[b]);
    out.events.assign(ev, ev + h.n_ev);
    if (h.n_pend || !out.pending.empty())
        out.pending.assign(&arena[b + h.n_ev], &arena[b + h.n_ev + h.n_pend]);
    return true;
}

/* The slot index holding key, or -1 (readers and writers). */
int64_t probe(std::string_view key, uint64_t hash, Copy *out)
{
    uint64_t size = *reinterpret_cast<volatile uint64_t *>(&H->slots_used);
    if (size == 0 || size > H->nslots)
        return -1; /* being rewritten: the caller retries */
    uint64_t mask = size - 1;
    uint32_t tag = uint32_t(hash >> 32);
    Copy scratch;
    for (uint64_t n = 0; n < size; n++) {
        uint64_t i = (hash + n) & mask;
        uint64_t s = pg_atomic_read_u64(&slots[i]);
        if (s == 0)
            return -1;
        if (uint32_t(s >> 32) != tag)
            continue;
        if (read_record(uint32_t(s) - 1, key, out ? *out : scratch))
            return int64_t(i);
    }
    return -1;
}

/* ---- absence proofs ----------------------------------------------------- */

/* The key of the record at r (the caller checked r + its words <= used). */
std::string_view record_key(uint64_t r, const RecHeader &h)
{
    return {reinterpret_cast<const char *>(&arena[r + 1]), h.key_len};
}

/* A key's bit in its database's absence filter. */
inline uint64_t filter_bit(uint64_t hash)
{
    return (hash >> 32) % (FILTER_WORDS * 64);
}
inline pg_atomic_uint64 &filter_word(const Db *db, uint64_t bit)
{
    return H->filter[db - H->dbs][bit / 64];
}

/* Whether key (of database db, hash its hash), which is not the record
 * after the last one read, certainly has no record.  The build writes a
 * database's records in subject order, and they stay in that order (a
 * replaced record stays where it is, marked, until compaction drops it
 * and sets its subject's filter bit; a new subject's record goes
 * elsewhere and sets its bit).  So when the last record read is one of the
 * build's, key sorts after it and before the record after it (or it was
 * the build's last), and key's bit is clear, no record holds key: a scan
 * in subject order skips the hash probe for subjects without consent.
 * Read without the lock like the rest of a look-up, which checks the
 * generation afterwards (a build or compaction moves the generation); a
 * subject that a transaction adds meanwhile is one that transaction has
 * not committed for the statement's snapshot (its mark precedes its
 * commit), so the statement decides it without events either way. */
bool absent_in_run(const Db *db, std::string_view key, uint64_t hash, uint64_t used)
{
    const volatile Db *v = db;
    if (!v->run_valid)
        return false;
    uint64_t start = v->run_start, end = v->run_end, prev = last_record;
    if (prev < start || prev >= end || end > used)
        return false;
    RecHeader ph = rec_header(prev);
    uint64_t next = prev + record_words(ph);
    if (next > end || !subject_less(record_key(prev, ph), key))
        return false;
    if (next < end) {
        RecHeader nh = rec_header(next);
        if (next + record_words(nh) > end || !subject_less(key, record_key(next, nh)))
            return false;
    }
    uint64_t bit = filter_bit(hash);
    return ((pg_atomic_read_u64(&filter_word(db, bit)) >> (bit % 64)) & 1) == 0;
}

Db *find_db(Oid database, bool claim);

/* Key has a record outside its database's build run now (under the LWLock):
 * its filter bit is set. */
void note_outside_run(std::string_view key, uint64_t hash, Db *db = nullptr)
{
    if (!db && key.size() >= 4) {
        Oid database;
        memcpy(&database, key.data(), 4);
        db = find_db(database, false);
    }
    if (!db || !db->run_valid)
        return;
    uint64_t bit = filter_bit(hash);
    pg_atomic_fetch_or_u64(&filter_word(db, bit), uint64_t(1) << (bit % 64));
}

/* ---- numbering ---------------------------------------------------------- */

/* This backend's translation between its taxonomy's indexes and the table's. */
struct Translation {
    uint64_t generation = 0;
    uint32_t used = UINT32_MAX;
    std::vector<int> cat_mine, pur_mine;   /* table index -> mine (-1: not in my taxonomy) */
    std::vector<int> cat_table, pur_table; /* mine -> table index (-1: not in the table yet) */
    bool identity = false;                 /* every table index is mine: nothing to translate */
} tr;

void refresh_translation()
{
    const Taxonomy &t = taxonomy_in_use();
    uint32_t used = pg_atomic_read_u32(&H->names.used);
    if (tr.generation == t.generation && tr.used == used)
        return;
    pg_read_barrier();
    tr.cat_mine.clear();
    tr.pur_mine.clear();
    tr.cat_table.assign(t.categories.size(), -1);
    tr.pur_table.assign(t.purposes.size(), -1);
    for (uint32_t at = 0; at < used;) {
        char kind = H->names.buf[at];
        const char *name = &H->names.buf[at + 1];
        size_t len = strnlen(name, used - at - 1);
        std::string n(name, len);
        if (kind == 'c') {
            auto it = t.category_index.find(n);
            int mine = it == t.category_index.end() ? -1 : it->second;
            if (mine >= 0)
                tr.cat_table[size_t(mine)] = int(tr.cat_mine.size());
            tr.cat_mine.push_back(mine);
        } else {
            auto it = t.purpose_index.find(n);
            int mine = it == t.purpose_index.end() ? -1 : it->second;
            if (mine >= 0)
                tr.pur_table[size_t(mine)] = int(tr.pur_mine.size());
            tr.pur_mine.push_back(mine);
        }
        at += uint32_t(len) + 2;
    }
    tr.identity = true;
    for (size_t i = 0; i < tr.cat_mine.size(); i++)
        tr.identity = tr.identity && tr.cat_mine[i] == int(i);
    for (size_t i = 0; i < tr.pur_mine.size(); i++)
        tr.identity = tr.identity && tr.pur_mine[i] == int(i);
    tr.generation = t.generation;
    tr.used = used;
}

/* Events read from the table, in this backend's numbering (events about
 * categories or purposes it does not know are left out, as a load does). */
void to_mine(std::vector<Event> &ev)
{
    refresh_translation();
    if (tr.identity)
        return;
    size_t n = 0;
    for (const Event &e : ev) {
        int c = e.category < tr.cat_mine.size() ? tr.cat_mine[e.category] : -1;
        int p = e.purpose < tr.pur_mine.size() ? tr.pur_mine[e.purpose] : -1;
        if (c >= 0 && p >= 0)
            ev[n++] = Event{uint16_t(c), uint16_t(p), e.until};
    }
    ev.resize(n);
}

bool give_up(const char *why);
void rehash();

/* The table's index of one of my categories or purposes, appending its name
 * (under the LWLock); -1 when the names do not fit. */
int table_index(bool purpose, int mine)
{
    refresh_translation();
    std::vector<int> &map = purpose ? tr.pur_table : tr.cat_table;
    if (map[size_t(mine)] >= 0)
        return map[size_t(mine)];
    const Taxonomy &t = taxonomy_in_use();
    const std::string &name = purpose ? t.purposes[size_t(mine)].key : t.categories[size_t(mine)].key;
    uint32_t used = pg_atomic_read_u32(&H->names.used);
    if (used + name.size() + 2 > NAMES_BYTES) {
        give_up("the names of categories and purposes do not fit");
        return -1;
    }
    H->names.buf[used] = purpose ? 'p' : 'c';
    memcpy(&H->names.buf[used + 1], name.data(), name.size());
    H->names.buf[used + 1 + name.size()] = '\0';
    pg_write_barrier();
    pg_atomic_write_u32(&H->names.used, used + uint32_t(name.size()) + 2);
    refresh_translation();
    return map[size_t(mine)];
}

/* Events in my numbering, in the table's (under the LWLock). */
bool to_table(const Event *ev, size_t n, std::vector<Event> &out)
{
    out.clear();
    for (size_t i = 0; i < n; i++) {
        int c = table_index(false, ev[i].category);
        int p = table_index(true, ev[i].purpose);
        if (c < 0 || p < 0)
            return false;
        out.push_back(Event{uint16_t(c), uint16_t(p), ev[i].until});
    }
    return true;
}

/* ---- writing (under the LWLock) ------------------------------------------ */

/* Appends a record; NONE when the arena is full even after compaction. */
constexpr uint64_t NONE = UINT64_MAX;
void compact();
uint64_t append(std::string_view key, const Event *ev, size_t n, const uint64_t *pend, size_t np)
{
    RecHeader h{uint16_t(key.size()), uint16_t(n), uint16_t(np), 0};
    uint64_t words = record_words(h);
    if (H->used + words > H->arena_words) {
        if (H->garbage > 0)
            compact();
        if (H->used + words > H->arena_words)
            return NONE;
    }
    uint64_t r = H->used;
    memcpy(&arena[r], &h, sizeof h);
    arena[r + 1 + key_words(key.size()) - 1] = 0; /* zero padding of the last key word */
    memcpy(&arena[r + 1], key.data(), key.size());
    uint64_t b = r + 1 + key_words(key.size());
    if (n)
        memcpy(&arena[b], ev, n * sizeof(Event));
    if (np)
        memcpy(&arena[b + n], pend, np * sizeof(uint64_t));
    pg_write_barrier(); /* readers of the next record check it against used */
    H->used += words;
    return r;
}

/* Points key's slot at record r (a new slot for a new subject). */
bool publish(std::string_view key, uint64_t hash, uint64_t r)
{
    pg_write_barrier(); /* the record before the slot that points to it */
    uint64_t value = (hash >> 32 << 32) | (r + 1);
    int64_t i = probe(key, hash, nullptr);
    if (i >= 0) {
        uint64_t old = uint32_t(pg_atomic_read_u64(&slots[i])) - 1;
        RecHeader oh = rec_header(old);
        oh.flags |= SUPERSEDED;
        memcpy(&arena[old], &oh, sizeof oh);
        H->garbage += record_words(oh);
        pg_atomic_write_u64(&slots[i], value);
    } else {
        /* few subjects use few slots, so that a look-up touches a small
         * array; they double as the subjects grow */
        if ((H->subjects + 1) * 2 > H->slots_used) {
            if (H->slots_used >= H->nslots) {
                if ((H->subjects + 1) * 4 > H->nslots * 3)
                    return false;
            } else {
                H->slots_used *= 2;
                rehash();
            }
        }
        note_outside_run(key, hash);
        uint64_t mask = H->slots_used - 1;
        uint64_t j = hash & mask;
        while (pg_atomic_read_u64(&slots[j]) != 0)
            j = (j + 1) & mask;
        pg_atomic_write_u64(&slots[j], value);
        H->subjects++;
    }
    pg_atomic_fetch_add_u64(&H->changes, 1);
    return true;
}

bool put(std::string_view key, uint64_t hash, const Event *ev, size_t n, const uint64_t *pend, size_t np)
{
    uint64_t r = append(key, ev, n, pend, np);
    if (r == NONE)
        return give_up("its records do not fit");
    if (!publish(key, hash, r))
        return give_up("it has more subjects than slots");
    return true;
}

void begin_rewrite()
{
    pg_atomic_fetch_add_u64(&H->gen, 1);
    pg_memory_barrier();
}
void end_rewrite()
{
    pg_memory_barrier();
    pg_atomic_fetch_add_u64(&H->gen, 1);
}

void clear_slots()
{
    for (uint64_t i = 0; i < H->slots_used; i++)
        pg_atomic_write_u64(&slots[i], 0);
}

/* Slots for every live record (inside a rewrite). */
void fill_slots()
{
    clear_slots();
    uint64_t mask = H->slots_used - 1;
    for (uint64_t r = 0; r < H->used;) {
        RecHeader h = rec_header(r);
        if (!(h.flags & SUPERSEDED)) {
            uint64_t hash = subject_hash({reinterpret_cast<const char *>(&arena[r + 1]), h.key_len});
            uint64_t j = hash & mask;
            while (pg_atomic_read_u64(&slots[j]) != 0)
                j = (j + 1) & mask;
            pg_atomic_write_u64(&slots[j], (hash >> 32 << 32) | (r + 1));
        }
        r += record_words(h);
    }
}

/* The slots again, after slots_used changed (it is set by the caller). */
void rehash()
{
    begin_rewrite();
    fill_slots();
    end_rewrite();
}

/* Slides the live records to the front and rebuilds the slots.  The
 * databases' build runs move with their records; a replaced record it
 * drops from a run sets its subject's filter bit. */
void compact()
{
    struct Run {
        Db *db;
        uint64_t start, end, new_start, new_end;
    } runs[MAX_DATABASES];
    int n = 0;
    for (Db &db : H->dbs)
        if (OidIsValid(db.database) && db.run_valid)
            runs[n++] = {&db, db.run_start, db.run_end, NONE, NONE};
    std::sort(runs, runs + n, [](const Run &a, const Run &b) { return a.start < b.start; });
    begin_rewrite();
    uint64_t to = 0;
    int k = 0; /* runs[k]: the first run not yet passed */
    for (uint64_t r = 0;;) {
        for (; k < n && runs[k].end <= r; k++)
            if (runs[k].end == r) /* else not on a record's start: dropped below */
                runs[k].new_end = to;
        if (k < n && runs[k].start == r)
            runs[k].new_start = to;
        if (r >= H->used)
            break;
        RecHeader h = rec_header(r);
        uint64_t w = record_words(h);
        if (!(h.flags & SUPERSEDED)) {
            if (to != r)
                memmove(&arena[to], &arena[r], w * sizeof(uint64_t));
            to += w;
        } else if (k < n && r >= runs[k].start) {
            std::string_view key = record_key(r, h);
            note_outside_run(key, subject_hash(key), runs[k].db);
        }
        r += w;
    }
    for (int i = 0; i < n; i++) {
        runs[i].db->run_valid = runs[i].new_start != NONE && runs[i].new_end != NONE;
        runs[i].db->run_start = runs[i].new_start;
        runs[i].db->run_end = runs[i].new_end;
    }
    H->used = to;
    H->garbage = 0;
    fill_slots();
    end_rewrite();
    elog(DEBUG1, "pg_consent: shared consent state compacted to %llu words", (unsigned long long)H->used);
}

void set_status(Db *db, int s)
{
    SpinLockAcquire(&H->mutex);
    db->status = s;
    if (s != BUILDING)
        db->builder = 0;
    SpinLockRelease(&H->mutex);
    ConditionVariableBroadcast(&H->built);
}

/* Without the spinlock: readers ask for every look-up (an aligned int is
 * read whole; the generation check orders it with the records). */
int get_status()
{
    return *reinterpret_cast<volatile int *>(&H->status);
}
int db_status(const Db *db)
{
    return *reinterpret_cast<const volatile int *>(&db->status);
}

/* The slot of a database (nullptr when it has none; claim: take a free one,
 * nullptr when none is free). */
Db *find_db(Oid database, bool claim)
{
    for (Db &db : H->dbs)
        if (*reinterpret_cast<volatile Oid *>(&db.database) == database)
            return &db;
    if (!claim)
        return nullptr;
    Db *found = nullptr;
    SpinLockAcquire(&H->mutex);
    for (Db &db : H->dbs)
        if (db.database == database) {
            found = &db;
            break;
        }
    for (Db &db : H->dbs) {
        if (found)
            break;
        if (!OidIsValid(db.database)) {
            db.status = EMPTY;
            db.database = database;
            found = &db;
            pg_atomic_fetch_add_u32(&H->claims, 1);
        }
    }
    SpinLockRelease(&H->mutex);
    return found;
}

/* Record keys: the database's OID, then the subject. */
std::string &db_key(Oid database, std::string_view key, std::string &buf)
{
    buf.resize(4);
    memcpy(&buf[0], &database, 4);
    buf.append(key);
    return buf;
}

/* The table cannot hold the state: every backend keeps its own cache from
 * now on (cache.cpp), as with consent.shared_size = 0, until restart. */
bool give_up(const char *why)
{
    begin_rewrite();
    SpinLockAcquire(&H->mutex);
    H->status = OFF;
    SpinLockRelease(&H->mutex);
    ConditionVariableBroadcast(&H->built);
    end_rewrite();
    pg_atomic_fetch_add_u64(&H->changes, 1);
    ereport(WARNING, (errmsg("pg_consent: the shared consent state is turned off: %s", why),
                      errdetail("consent.shared_size is %d MB; every backend now keeps its own consent cache "
                                "(consent.cache_size) until the server restarts.",
                                size_mb),
                      errhint("Raise consent.shared_size and restart the server.")));
    return false;
}

/* Adds fxid to the record of key (a record without events for a subject
 * that had none: returns true then). */
bool mark_one(std::string_view key, uint64_t fxid)
{
    uint64_t hash = subject_hash(key);
    Copy c;
    bool is_new = probe(key, hash, &c) < 0;
    if (is_new)
        c = Copy{};
    if (std::find(c.pending.begin(), c.pending.end(), fxid) == c.pending.end())
        c.pending.push_back(fxid);
    put(key, hash, c.events.data(), c.events.size(), c.pending.data(), c.pending.size());
    return is_new;
}

void add_global(Db *db, uint64_t fxid)
{
    for (int i = 0; i < db->n_global; i++)
        if (db->global[i] == fxid)
            return;
    if (db->n_global == GLOBAL_MAX) {
        give_up("too many transactions changing every subject at once");
        return;
    }
    db->global[db->n_global++] = fxid;
    pg_atomic_fetch_add_u64(&H->changes, 1);
}

void add_early(std::string_view key, uint64_t fxid, bool everything, Oid database)
{
    if (H->n_early == EARLY_MAX || key.size() > size_t(EARLY_KEY)) {
        H->early_overflow = true;
        H->early_dropped_max = std::max(H->early_dropped_max, fxid);
        return;
    }
    EarlyMark &e = H->early[H->n_early++];
    e.fxid = fxid;
    e.database = database;
    e.everything = everything;
    e.len = uint16_t(key.size());
    memcpy(e.key, key.data(), key.size());
}

/* ---- snapshots ---------------------------------------------------------- */

/* Whether fxid is running as snap sees it.  On a hot standby a transaction
 * whose commit is not replayed yet is running even when the snapshot does
 * not list it (its xid may precede the standby's first snapshot). */
bool running_in(uint64_t fxid, Snapshot snap)
{
    FullTransactionId f = FullTransactionIdFromU64(fxid);
    FullTransactionId next = ReadNextFullTransactionId();
    if (U64FromFullTransactionId(next) > fxid + (uint64_t(1) << 31))
        return false; /* too old to be running */
    TransactionId xid = XidFromFullTransactionId(f);
    return pg([&] {
        if (XidInMVCCSnapshot(xid, snap))
            return true;
        if (RecoveryInProgress()) {
            if (TransactionIdPrecedes(xid, CONSENT_TRANSAM->oldestClogXid))
                return false;
            return !TransactionIdDidCommit(xid) && !TransactionIdDidAbort(xid);
        }
        return false;
    });
}

/* Whether every transaction up to fxid has ended as snap sees it. */
bool all_ended_before(uint64_t fxid, Snapshot snap)
{
    FullTransactionId next = ReadNextFullTransactionId();
    if (U64FromFullTransactionId(next) > fxid + (uint64_t(1) << 31))
        return true; /* too old to be running */
    return TransactionIdPrecedes(XidFromFullTransactionId(FullTransactionIdFromU64(fxid)), snap->xmin);
}

/* A private copy of a snapshot (CopySnapshot is not exported). */
Snapshot copy_snapshot(Snapshot s, MemoryContext cxt)
{
    size_t size = sizeof(SnapshotData) + sizeof(TransactionId) * (s->xcnt + std::max<int32>(s->subxcnt, 0));
    auto *c = static_cast<Snapshot>(MemoryContextAlloc(cxt, size));
    *c = *s;
    auto *x = reinterpret_cast<TransactionId *>(c + 1);
    c->xip = x;
    if (s->xcnt)
        memcpy(x, s->xip, sizeof(TransactionId) * s->xcnt);
    c->subxip = x + s->xcnt;
    if (s->subxcnt > 0)
        memcpy(c->subxip, s->subxip, sizeof(TransactionId) * s->subxcnt);
    c->regd_count = 0;
    c->active_count = 0;
    c->copied = false; /* not the snapshot manager's: registering or pushing it copies it */
    return c;
}

MemoryContext statement_cxt = nullptr;
Snapshot statement_snap = nullptr;

Snapshot statement_snapshot()
{
    if (!statement_snap) {
        if (!statement_cxt)
            statement_cxt = AllocSetContextCreate(TopMemoryContext, "consent statement snapshot",
                                                  ALLOCSET_SMALL_SIZES);
        /* in parallel mode GetLatestSnapshot() refuses: executor_start takes
         * the leader's before a parallel plan enters that mode; a parallel
         * worker (or a statement run inside a parallel plan) takes a fresh
         * catalog snapshot, an MVCC snapshot of now, never older than the
         * statement's start (the transaction's snapshot may be, under
         * REPEATABLE READ); so does a statement run before the
         * transaction's first snapshot (latest_snapshot()) */
        Snapshot s;
        if (IsInParallelMode() || !FirstSnapshotSet) {
            InvalidateCatalogSnapshot();
            s = GetCatalogSnapshot(InvalidOid);
        } else {
            s = GetLatestSnapshot();
        }
        statement_snap = copy_snapshot(s, statement_cxt);
    }
    return statement_snap;
}

} // namespace

/* Before a transaction's first snapshot (BEGIN, SET TRANSACTION, LOCK, SET,
 * FETCH of a held cursor: statements PostgreSQL runs without one),
 * GetLatestSnapshot() would take the transaction snapshot: SET TRANSACTION
 * ISOLATION LEVEL and SET TRANSACTION SNAPSHOT would then fail, and a
 * REPEATABLE READ transaction would see the data as of that statement
 * instead of its first query (a LOCK before the first query would no
 * longer protect what it reads).  There the statement's snapshot stands
 * in: a copy of a fresh catalog snapshot, of now, that does not become the
 * transaction's.  So it does in parallel mode, where no new snapshot can
 * be taken. */
Snapshot latest_snapshot()
{
    return pg([] { return FirstSnapshotSet && !IsInParallelMode() ? GetLatestSnapshot() : statement_snapshot(); });
}

namespace {

/* ---- building ----------------------------------------------------------- */

/* Resets the status when the building backend exits mid-build. */
void builder_exit(int, Datum)
{
    if (!H)
        return;
    for (Db &db : H->dbs)
        if (db.builder == MyProcPid && db.status == BUILDING)
            set_status(&db, EMPTY);
}

/* Drops the records of the database of slot db (under the LWLock): they
 * are marked replaced, and compaction removes them with their slots. */
void drop_records(Db *db)
{
    Oid database = db->database;
    db->run_valid = false;
    uint64_t dropped = 0;
    for (uint64_t r = 0; r < H->used;) {
        RecHeader h = rec_header(r);
        uint64_t w = record_words(h);
        Oid owner;
        memcpy(&owner, &arena[r + 1], 4);
        if (!(h.flags & SUPERSEDED) && h.key_len >= 4 && owner == database) {
            h.flags |= SUPERSEDED;
            memcpy(&arena[r], &h, sizeof h);
            H->garbage += w;
            dropped++;
        }
        r += w;
    }
    H->subjects -= std::min(H->subjects, dropped);
    if (dropped)
        compact();
}

void build_now(Db *db)
{
    TimestampTz started = GetCurrentTimestamp();
    Oid database = db->database;
    ScanSnapshot scan_snapshot;
    Snapshot snap = scan_snapshot.get();
    /* the subjects, in subject order, outside the lock */
    std::vector<std::pair<uint32_t, uint32_t>> groups; /* (offset in events, count) per subject */
    std::vector<Event> events;
    std::string keys;
    std::vector<uint32_t> key_offsets;
    read_subject_state(snap, size_t(-1), [&](std::string_view key, const Event *ev, size_t n) {
        key_offsets.push_back(uint32_t(keys.size()));
        keys.append(reinterpret_cast<const char *>(&database), 4);
        keys.append(key);
        groups.emplace_back(uint32_t(events.size()), uint32_t(n));
        events.insert(events.end(), ev, ev + n);
    });
    key_offsets.push_back(uint32_t(keys.size()));
    {
        Locked held;
        drop_records(db);
        uint64_t before = H->subjects;
        bool fits = to_table(events.data(), events.size(), events);
        /* the records in one run, in subject order: no compaction in between */
        if (H->garbage > 0)
            compact();
        uint64_t run_start = H->used;
        bool ordered = true;
        for (size_t i = 0; i < groups.size() && fits; i++) {
            std::string_view key(keys.data() + key_offsets[i], key_offsets[i + 1] - key_offsets[i]);
            if (i > 0)
                ordered = ordered &&
                          subject_less({keys.data() + key_offsets[i - 1], key_offsets[i] - key_offsets[i - 1]}, key);
            fits = put(key, subject_hash(key), events.data() + groups[i].first, groups[i].second, nullptr, 0);
        }
        if (fits && ordered && H->used > run_start && H->garbage == 0) {
            /* readers of this database wait for the build (NOT_READY) */
            begin_rewrite();
            for (pg_atomic_uint64 &w : H->filter[db - H->dbs])
                pg_atomic_write_u64(&w, 0);
            db->run_start = run_start;
            db->run_end = H->used;
            db->run_valid = true;
            end_rewrite();
        }
        if (fits) {
            /* marks of transactions the build's snapshot does not see */
            int n = 0;
            for (int i = 0; i < db->n_global; i++)
                if (running_in(db->global[i], snap))
                    db->global[n++] = db->global[i];
            db->n_global = n;
            std::string k;
            for (int i = 0; i < H->n_early && H->status != OFF; i++) {
                const EarlyMark &e = H->early[i];
                if (e.database != database || !running_in(e.fxid, snap))
                    continue;
                if (e.everything)
                    add_global(db, e.fxid);
                else
                    mark_one(db_key(database, {e.key, e.len}, k), e.fxid);
            }
        }
        /* this database's early marks are applied; the others' stay */
        int kept = 0;
        for (int i = 0; i < H->n_early; i++)
            if (H->early[i].database != database)
                H->early[kept++] = H->early[i];
        H->n_early = kept;
        /* the marks dropped were of transactions up to early_dropped_max:
         * the build is trusted only when every transaction up to it has
         * ended for this snapshot (its xmin is past it; the latest one
         * having ended is not enough, an older one may still run); then
         * they have for every later snapshot too */
        bool trusted = !H->early_overflow || all_ended_before(H->early_dropped_max, snap);
        if (trusted) {
            H->early_overflow = false;
            H->early_dropped_max = 0;
        }
        if (get_status() == OFF) {
            /* given up: stays off */
        } else if (!trusted) {
            /* marks were lost for a transaction still running: build again
             * later (its backends decide from their own caches meanwhile) */
            db->retry_at = GetCurrentTimestamp() + USECS_PER_SEC;
            set_status(db, EMPTY);
        } else {
            db->builds++;
            db->build_ms = uint64_t((GetCurrentTimestamp() - started) / 1000);
            db->subjects = H->subjects - before;
            pg_atomic_fetch_add_u64(&H->changes, 1);
            set_status(db, READY);
            elog(LOG, "pg_consent: shared consent state of database %u built: %llu subjects, %llu kB in all, %llu ms",
                 database, (unsigned long long)db->subjects, (unsigned long long)(H->used * 8 / 1024),
                 (unsigned long long)db->build_ms);
        }
    }
}

} // namespace

void define_guc()
{
    DefineCustomIntVariable("consent.shared_size", "Shared memory for the server's consent state.",
                            "One table of every subject's consent events, shared by all backends. "
                            "0 turns it off: every backend keeps its own cache (consent.cache_size).",
                            &size_mb, 128, 0, 65536, PGC_POSTMASTER, GUC_UNIT_MB, nullptr, nullptr, nullptr);
}

void shmem_request()
{
    if (prev_request)
        prev_request();
    if (size_mb > 0) {
        RequestAddinShmemSpace(total_bytes());
        RequestNamedLWLockTranche(TRANCHE, 1);
    }
}

void shmem_startup()
{
    if (prev_startup)
        prev_startup();
    if (size_mb <= 0)
        return;
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    char *base = static_cast<char *>(ShmemInitStruct("pg_consent shared state", total_bytes(), &found));
    H = reinterpret_cast<Header *>(base);
    /* a quarter of the region for slots (at most 3/4 used), the rest for records */
    uint64_t nslots = 1024;
    while (nslots * 2 * 8 <= (total_bytes() - header_bytes()) / 4)
        nslots *= 2;
    slots = reinterpret_cast<pg_atomic_uint64 *>(base + header_bytes());
    arena = reinterpret_cast<uint64_t *>(base + header_bytes() + nslots * 8);
    lock = &GetNamedLWLockTranche(TRANCHE)->lock;
    if (!found) {
        memset(H, 0, sizeof(Header));
        SpinLockInit(&H->mutex);
        H->status = READY;
        pg_atomic_init_u32(&H->claims, 0);
        pg_atomic_init_u64(&H->gen, 0);
        pg_atomic_init_u64(&H->changes, 1);
        pg_atomic_init_u32(&H->names.used, 0);
        ConditionVariableInit(&H->built);
        H->nslots = nslots;
        H->slots_used = 1024;
        H->arena_words = (total_bytes() - header_bytes() - nslots * 8) / 8;
        for (uint64_t i = 0; i < nslots; i++)
            pg_atomic_init_u64(&slots[i], 0);
        for (auto &f : H->filter)
            for (pg_atomic_uint64 &w : f)
                pg_atomic_init_u64(&w, 0);
    }
    LWLockRelease(AddinShmemInitLock);
}

void turn_off(const char *why) noexcept
{
    if (H && get_status() != OFF)
        give_up(why);
}

namespace {

void free_database(Oid database) noexcept;

/* The claims count at this backend's last look for slots of dropped
 * databases. */
uint32_t dropped_searched = UINT32_MAX;

/* No slot was free: the slots of databases no longer in pg_database are
 * freed.  A primary frees a slot when DROP DATABASE commits; a standby
 * replays the drop without that hook, and would keep the slot until a
 * restart.  Reads the catalog: only in a transaction, outside the lock;
 * once per backend until a database takes a slot. */
bool free_dropped_slots()
{
    uint32_t claims = pg_atomic_read_u32(&H->claims);
    if (claims == dropped_searched || !IsTransactionState() || !OidIsValid(MyDatabaseId))
        return false;
    dropped_searched = claims;
    Oid gone[MAX_DATABASES];
    int n = 0;
    for (Db &db : H->dbs) {
        Oid d = *reinterpret_cast<volatile Oid *>(&db.database);
        /* a database with a slot had a backend connected: it was committed */
        if (OidIsValid(d) && d != MyDatabaseId &&
            !pg([&] { return SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(d)); }))
            gone[n++] = d;
    }
    for (int i = 0; i < n; i++)
        free_database(gone[i]);
    return n > 0;
}

} // namespace

/* This backend's database slot (found once: a database's slot is freed
 * only when it is dropped, with no backend connected to it).  Until it has
 * one, a look-up without claiming searches the slots again only when a
 * database took one since the last search (every statement asks). */
Db *mine = nullptr;
uint32_t claims_searched = UINT32_MAX;
Db *my_db(bool claim)
{
    if (mine)
        return mine;
    uint32_t claims = pg_atomic_read_u32(&H->claims);
    if (!claim && claims == claims_searched)
        return nullptr;
    mine = find_db(MyDatabaseId, claim);
    if (!mine && claim && free_dropped_slots())
        mine = find_db(MyDatabaseId, claim);
    if (!mine)
        claims_searched = claims;
    return mine;
}

/* The prefixed key of the last look-up. */
std::string key_buf;

bool enabled()
{
    if (!H || size_mb <= 0 || get_status() == OFF)
        return false;
    /* a database beyond the slots keeps its own cache */
    return my_db(true) != nullptr;
}

bool ready()
{
    return enabled() && db_status(my_db(true)) == READY;
}

Found lookup(std::string_view subject, Copy &out)
{
    if (!H)
        return Found::OFF;
    Db *db = my_db(true);
    if (!db)
        return Found::OFF;
    for (;;) {
        uint64_t g = pg_atomic_read_u64(&H->gen);
        if (get_status() == OFF)
            return Found::OFF;
        if (db_status(db) != READY)
            return Found::NOT_READY;
        if (g & 1) {
            pg([] {
                CHECK_FOR_INTERRUPTS();
                pg_usleep(200);
            });
            continue;
        }
        pg_read_barrier();
        /* a scan in subject order: the subject after the last one read
         * (written in subject order by the build, still live) */
        bool found = false;
        uint64_t used = *reinterpret_cast<volatile uint64_t *>(&H->used);
        pg_read_barrier();
        uint64_t expected = next_record;
        bool sequence = in_order && next_record_gen == g && expected < used;
        RecHeader eh{};
        if (sequence)
            eh = rec_header(expected);
        bool absent = false;
        std::string_view key;
        uint64_t hash = 0;
        if (sequence && !(eh.flags & SUPERSEDED) && read_record(expected, subject, out, &MyDatabaseId)) {
            found = true;
        } else {
            key = db_key(MyDatabaseId, subject, key_buf);
            hash = subject_hash(key);
            /* in order, a subject without a record needs no probe either
             * (and the sequence goes on from the last record read) */
            absent = sequence && absent_in_run(db, key, hash, used);
        }
        if (!found && !absent) {
            found = probe(key, hash, &out) >= 0;
            /* In order again when the record found was the expected one.
             * A subject without a record (no consent at all) leaves the
             * order as it was: the next subject is still the next record.
             * So does a subject changed since the sequence was written:
             * its new record is elsewhere, and the expected one is its
             * old record, superseded; the sequence goes on after that. */
            uint64_t after = expected + record_words(eh);
            if (found && sequence && (eh.flags & SUPERSEDED) && eh.key_len == key.size() && after <= used &&
                memcmp(&arena[expected + 1], key.data(), key.size()) == 0) {
                if (out.record != after) { /* else read_record() moved past it */
                    last_record = expected;
                    next_record = after;
                }
            } else if (found) {
                in_order = out.record == expected;
            }
            ++n_unordered;
        }
        next_record_gen = g;
        pg_read_barrier();
        if (pg_atomic_read_u64(&H->gen) == g) {
            out.generation = g;
            if (found)
                to_mine(out.events);
            return found ? Found::YES : Found::NO;
        }
    }
}

uint64_t prefetch_slot(std::string_view subject) noexcept
{
    /* the key as db_key() makes it, on the stack (no allocation: called
     * outside entry()); longer subjects are not read ahead */
    char key[68];
    if (!H || subject.size() > sizeof key - 4)
        return 0;
    memcpy(key, &MyDatabaseId, 4);
    memcpy(key + 4, subject.data(), subject.size());
    uint64_t hash = subject_hash({key, subject.size() + 4});
    uint64_t size = *reinterpret_cast<volatile uint64_t *>(&H->slots_used);
    if (size != 0 && size <= H->nslots)
        __builtin_prefetch(&slots[hash & (size - 1)]);
    return hash;
}

void prefetch_record(uint64_t hash) noexcept
{
    if (!H)
        return;
    uint64_t size = *reinterpret_cast<volatile uint64_t *>(&H->slots_used);
    if (size == 0 || size > H->nslots)
        return;
    /* the first slot with the key's tag, as probe() goes (the slots after
     * the first are mostly in the same cache line) */
    uint32_t tag = uint32_t(hash >> 32);
    for (uint64_t n = 0; n < 8; n++) {
        uint64_t s = pg_atomic_read_u64(&slots[(hash + n) & (size - 1)]);
        if (s == 0)
            return;
        if (uint32_t(s >> 32) != tag)
            continue;
        /* the record's header and key, and what follows (most subjects' events) */
        uint64_t r = uint32_t(s) - 1;
        if (r + 8 < H->arena_words) {
            __builtin_prefetch(&arena[r]);
            __builtin_prefetch(&arena[r + 8]);
        }
        return;
    }
}

uint64_t unordered_lookups() noexcept
{
    return n_unordered;
}

void install(std::string_view subject, const Copy &seen, const std::vector<Event> &events,
             const std::vector<uint64_t> &pending)
{
    Db *db = my_db(true);
    if (!db)
        return;
    std::string buf;
    std::string_view key = db_key(MyDatabaseId, subject, buf);
    uint64_t hash = subject_hash(key);
    Locked held;
    /* a compaction or build since the read may have put another record
     * of the subject at the offset read: install only if none ran */
    if (get_status() == READY && db->status == READY && pg_atomic_read_u64(&H->gen) == seen.generation) {
        int64_t i = probe(key, hash, nullptr);
        bool same = i >= 0 ? uint32_t(pg_atomic_read_u64(&slots[i])) - 1 == seen.record : false;
        std::vector<Event> mapped;
        if (same && to_table(events.data(), events.size(), mapped))
            put(key, hash, mapped.data(), mapped.size(), pending.data(), pending.size());
    }
}

bool build()
{
    Db *db = my_db(true);
    if (!db)
        return false;
    for (;;) {
        bool building = false;
        pg([&] {
            SpinLockAcquire(&H->mutex);
            int s = H->status == OFF ? OFF : db->status;
            /* a builder that died without its exit callback (it cannot: a
             * crash restarts the server) is not waited for */
            if (s == BUILDING && db->builder != 0 && kill(db->builder, 0) != 0 && errno == ESRCH)
                s = db->status = EMPTY;
            bool later = s == EMPTY && GetCurrentTimestamp() < db->retry_at;
            if (s == EMPTY && !later) {
                db->status = BUILDING;
                db->builder = MyProcPid;
                building = true;
            }
            SpinLockRelease(&H->mutex);
            if (s == READY || s == OFF || later)
                return;
            if (!building) {
                ConditionVariablePrepareToSleep(&H->built);
                (void)ConditionVariableTimedSleep(&H->built, 100, PG_WAIT_EXTENSION);
                ConditionVariableCancelSleep();
            }
        });
        if (building) {
            static bool exit_registered = false;
            if (!exit_registered) {
                pg([] { before_shmem_exit(builder_exit, 0); });
                exit_registered = true;
            }
            struct Reset {
                Db *db;
                bool done = false;
                ~Reset()
                {
                    if (!done && db->builder == MyProcPid)
                        set_status(db, EMPTY);
                }
            } reset{db};
            build_now(db);
            reset.done = true;
            /* built, given up, or not trusted (tried again later) */
            return get_status() != OFF && db_status(db) == READY;
        }
        if (get_status() == OFF || db_status(db) != BUILDING)
            return get_status() != OFF && db_status(db) == READY;
    }
}

void mark(const std::vector<std::string> &keys, uint64_t fxid, bool everything, Oid database)
{
    if (!H)
        return;
    Locked held;
    if (get_status() == OFF)
        return;
    Db *db = find_db(database, false);
    if (!db) {
        /* a database without a slot, and none free: its backends keep
         * their own caches; a build once a slot is freed must not trust
         * what it reads while the transaction may still run */
        bool free_slot = false;
        for (const Db &d : H->dbs)
            free_slot = free_slot || !OidIsValid(d.database);
        if (!free_slot) {
            H->early_overflow = true;
            H->early_dropped_max = std::max(H->early_dropped_max, fxid);
            return;
        }
    }
    if (db && db->status == READY) {
        if (everything) {
            add_global(db, fxid);
        } else {
            std::string k;
            for (const std::string &key : keys) {
                db->subjects += mark_one(db_key(database, key, k), fxid) ? 1 : 0;
                if (get_status() == OFF)
                    break;
            }
        }
    } else {
        /* not built (or building): kept for the build */
        if (everything)
            add_early({}, fxid, true, database);
        else
            for (const std::string &k : keys)
                add_early(k, fxid, false, database);
    }
}

bool in_progress(uint64_t fxid)
{
    return running_in(fxid, pg([] { return statement_snapshot(); }));
}

ScanSnapshot::ScanSnapshot()
{
    pg([&] {
        if (IsInParallelMode()) {
            snap_ = statement_snapshot();
        } else {
            snap_ = RegisterSnapshot(latest_snapshot());
            registered_ = true;
        }
    });
}

ScanSnapshot::~ScanSnapshot()
{
    if (registered_)
        UnregisterSnapshot(snap_);
}

Snapshot statement_snapshot_now()
{
    return pg([] { return statement_snapshot(); });
}

void adopt_statement_snapshot(Snapshot leader)
{
    pg([&] {
        if (!statement_cxt)
            statement_cxt = AllocSetContextCreate(TopMemoryContext, "consent statement snapshot",
                                                  ALLOCSET_SMALL_SIZES);
        MemoryContextReset(statement_cxt);
        statement_snap = copy_snapshot(leader, statement_cxt);
    });
}

void statement_start(bool parallel_plan)
{
    /* a statement run in parallel mode keeps the snapshot taken before */
    if (statement_cxt && !IsInParallelMode()) {
        MemoryContextReset(statement_cxt);
        statement_snap = nullptr;
    }
    if (parallel_plan && !IsInParallelMode())
        (void)statement_snapshot_now();
    Db *db = H ? my_db(false) : nullptr;
    if (!db || db->n_global == 0 || get_status() != READY || db_status(db) != READY)
        return;
    /* a committed TRUNCATE of subject_state: build again */
    bool finished = false;
    for (int i = 0; i < db->n_global && !finished; i++)
        finished = !in_progress(db->global[i]);
    if (!finished)
        return;
    Locked held;
    if (db->status == READY) {
        begin_rewrite();
        set_status(db, EMPTY);
        end_rewrite();
        pg_atomic_fetch_add_u64(&H->changes, 1);
    }
}

uint64_t change_count()
{
    return H ? pg_atomic_read_u64(&H->changes) : 0;
}

Stats stats()
{
    if (!H || size_mb <= 0)
        return {"off", InvalidOid, 0, 0, 0, 0, 0};
    Db *db = my_db(false);
    const char *status = get_status() == OFF ? "off" : db ? status_name(db_status(db)) : "empty";
    return {status,
            db ? MyDatabaseId : InvalidOid,
            db ? db->subjects : 0,
            (H->used - H->garbage) * 8,
            H->arena_words * 8 + H->nslots * 8,
            db ? db->builds : 0,
            db ? db->build_ms : 0};
}

namespace {

object_access_hook_type prev_object_access = nullptr;
/* Databases the running transaction drops (DROP DATABASE runs in a
 * transaction of its own); their slots are freed once it commits. */
std::vector<Oid> dropping;

void object_access(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void *arg)
{
    if (prev_object_access)
        prev_object_access(access, class_id, object_id, sub_id, arg);
    if (access == OAT_DROP && class_id == DatabaseRelationId && H)
        entry([&] { dropping.push_back(object_id); });
}

/* A dropped database's records go, and its slot is free for another.  No
 * backend is connected to it (DROP DATABASE waits for none), and a build
 * of a database that takes the slot later starts from an empty slot. */
void free_database(Oid database) noexcept
{
    Locked held;
    Db *db = find_db(database, false);
    if (!db)
        return;
    if (get_status() != OFF)
        drop_records(db);
    SpinLockAcquire(&H->mutex);
    *db = Db{}; /* as at start-up: no database, EMPTY, no builds, no global marks */
    SpinLockRelease(&H->mutex);
}

void xact_callback(XactEvent event, void *) noexcept
{
    if (dropping.empty())
        return;
    /* for standbys, which replay the drop without the hook */
    if (event == XACT_EVENT_PRE_COMMIT)
        entry([&] {
            for (Oid database : dropping)
                wal::log_database_dropped(database);
        });
    if (event == XACT_EVENT_COMMIT)
        for (Oid database : dropping)
            free_database(database);
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
        dropping.clear();
}

} // namespace

void forget_database(Oid database) noexcept
{
    if (H)
        free_database(database);
}

void install_hooks()
{
    prev_request = shmem_request_hook;
    shmem_request_hook = shmem_request;
    prev_startup = shmem_startup_hook;
    shmem_startup_hook = shmem_startup;
    prev_object_access = object_access_hook;
    object_access_hook = object_access;
    RegisterXactCallback(xact_callback, nullptr);
}

} // namespace consent::shared
