/*
 * cache.cpp — the per-backend consent state and its cross-backend
 * invalidation.
 *
 * The truth is consent.ledger; consent.subject_state (kept in the same
 * transaction) holds, per subject, category and purpose, the latest event
 * and the latest withdrawal.  That is all a decision needs (see decide()),
 * so this cache loads it, in one sequential scan when it fits the memory
 * bound (consent.cache_size) and subject by subject otherwise.
 *
 * Invalidation is per subject: a transaction that changes consent appends
 * the hashes of its subjects to a ring in shared memory at commit; every
 * backend reads the ring at the start of each statement and drops exactly
 * those subjects.  A backend that fell more than a ring behind drops all.
 *
 * Owns: the subject tables, the ring, the commit callback.
 * Must never: load with the transaction snapshot (a REPEATABLE READ
 * transaction would cache an old state for later ones): loads use the
 * latest snapshot.
 */
#include "cache.h"
#include "parallel.h"
#include "prepared.h"
#include "shared_state.h"
#include "wal.h"
#include "cursor.h"
#include "consent.h"
#include "invalidation.h"
#include "spi.h"
#include "taxonomy.h"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/parallel.h"
#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "utils/fmgroids.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "utils/inval.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

#include <algorithm>
#include <functional>
#include <cstring>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace consent {

/* Changes whenever any subject table changes: a SubjectEvents handed out
 * stays valid while it does not. */
uint64_t detail::cache_epoch = 1;
uint64_t detail::decision_stamp = 1;

namespace {

/* ---- shared ring of changed subjects ---------------------------------- */

constexpr uint64_t RING_SIZE = 1 << 16;

struct SharedRing {
    slock_t lock;
    pg_atomic_uint64 write_pos;
    uint64_t hashes[RING_SIZE];
    /* the transaction about to commit the change (0: committed already) */
    uint64_t fxids[RING_SIZE];
};

SharedRing *ring = nullptr;
Oid subject_state_relid = InvalidOid;  /* learned at the first load */
Oid subject_state_signal = InvalidOid; /* standby_signal_relid() of it */
/* Where this backend reads the ring next; UINT64_MAX until its first
 * statement (its caches start empty: nothing published before concerns
 * them). */
uint64_t ring_read_pos = UINT64_MAX;
shmem_request_hook_type prev_shmem_request = nullptr;
shmem_startup_hook_type prev_shmem_startup = nullptr;

void ring_shmem_request()
{
    if (prev_shmem_request)
        prev_shmem_request();
    RequestAddinShmemSpace(sizeof(SharedRing));
    prepared::shmem_request();
}

void ring_shmem_startup()
{
    if (prev_shmem_startup)
        prev_shmem_startup();
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    ring = static_cast<SharedRing *>(ShmemInitStruct("pg_consent invalidation ring", sizeof(SharedRing), &found));
    if (!found) {
        SpinLockInit(&ring->lock);
        pg_atomic_init_u64(&ring->write_pos, 0);
        memset(ring->hashes, 0, sizeof(ring->hashes));
        memset(ring->fxids, 0, sizeof(ring->fxids));
    }
    prepared::shmem_startup();
    LWLockRelease(AddinShmemInitLock);
}

/* Ring entry meaning "every subject changed". */
constexpr uint64_t EVERYTHING = RING_EVERYTHING;

uint64_t hash_key(std::string_view key)
{
    uint64_t h = hash_bytes_extended(reinterpret_cast<const unsigned char *>(key.data()), int(key.size()), 0x5eed);
    return h == EVERYTHING ? 1 : h;
}

/* ---- subject table ----------------------------------------------------- */

constexpr uint16_t STALE = 0xFFFF;

using detail::cache_epoch;

/* The first 8 bytes of a key, zero-padded (keys hold no zero bytes). */
inline uint64_t pack8(std::string_view key)
{
    uint64_t w = 0;
    memcpy(&w, key.data(), std::min<size_t>(key.size(), 8));
    return w;
}

/* No record. */
constexpr uint32_t NONE = UINT32_MAX;

/* The first word of a subject's record. */
struct Header {
    uint16_t key_len;
    uint16_t n_ev;  /* events in use; STALE: must be reloaded */
    uint16_t cap;   /* event words of the record (at least 1) */
    uint16_t flags; /* MOVED, TARGET */
};
static_assert(sizeof(Header) == 8 && sizeof(Event) == 8, "records are made of 8-byte words");
/* The record's events outgrew it: its first event word holds the offset of
 * the replacement, appended at the end of the arena. */
constexpr uint16_t MOVED = 1;
/* The replacement of a MOVED record (compaction copies it back in place). */
constexpr uint16_t TARGET = 2;

/*
 * The subjects: an open-addressing hash table of slots over one arena of
 * records in 8-byte words, one record per subject:
 *     [header] [key, zero-padded to whole words] [cap events]
 * A random probe touches a slot and one record (key and events together);
 * the bulk load writes the records in subject order, so that a scan in
 * subject order walks the arena sequentially without hashing.  A record
 * whose events no longer fit is MOVED: it stays in place, holding its key
 * and the offset of its replacement, so that the arena keeps subject order.
 */
class SubjectTable {
  public:
    bool complete = false;   /* holds every subject that has events */
    TimestampTz as_of = NOW; /* NOW: the current state */

    void clear()
    {
        changed();
        /* give the memory back (clear() keeps capacity) */
        std::vector<uint64_t>(1024, 0).swap(slots_);
        std::vector<uint64_t>().swap(words_);
        as_of = NOW;
        unknown_.clear();
        complete = false;
        garbage_ = 0;
        last_found_ = 0;
        sorted_end_ = 0;
        added_ = false;
        count_ = 0;
    }

    size_t memory() const
    {
        return slots_.capacity() * sizeof(uint64_t) + words_.capacity() * sizeof(uint64_t) + unknown_.size() * 32;
    }
    size_t size() const { return count_; }

    /* The record of key, NONE when absent. */
    uint32_t find(std::string_view key, uint64_t h) const
    {
        size_t mask = slots_.size() - 1;
        uint32_t tag = uint32_t(h >> 32);
        uint64_t key8 = pack8(key);
        for (size_t i = h & mask;; i = (i + 1) & mask) {
            uint64_t s = slots_[i];
            if (s == 0)
                return NONE;
            /* compare the hash tag in the slot before touching the record */
            if (uint32_t(s >> 32) != tag)
                continue;
            uint32_t r = uint32_t(s) - 1;
            if (same_key(r, key, key8))
                return r;
        }
    }

    bool stale(uint32_t r) const { return hdr(r).n_ev == STALE; }
    SubjectEvents events_of(uint32_t r) const { return {events(r), hdr(r).n_ev}; }

    /* Sets the events of key (replacing earlier ones); is_new: the caller
     * knows the key is not in the table (the bulk load), no probe needed. */
    void put(std::string_view key, uint64_t h, const Event *ev, size_t n, bool is_new = false)
    {
        changed();
        if (n >= STALE)
            n = STALE - 1; /* cannot happen: one event per category x purpose pair, bounded below */
        uint32_t r = is_new ? NONE : find(key, h);
        if (r != NONE && n <= hdr(r).cap) {
            memcpy(events(r), ev, n * sizeof(Event));
            hdr(r).n_ev = uint16_t(n);
        } else if (r != NONE) {
            uint32_t nr = append(key, ev, n, TARGET);
            hdr(r).flags |= MOVED;
            forward(r) = nr;
            garbage_ += record_words(r);
            replace_slot(r, nr, h);
        } else {
            if ((count_ + 1) * 5 > slots_.size() * 3)
                grow();
            insert_slot(append(key, ev, n, 0), h);
            count_++;
            added_ = !is_new;
        }
        if (!unknown_.empty())
            unknown_.erase(h);
        if (garbage_ > words_.size() / 2 && garbage_ > 4096)
            compact();
    }

    /* The record of key if it is the one after (or at) the last one found:
     * scans in subject order hit here without hashing. */
    uint32_t find_next(std::string_view key)
    {
        if (last_found_ >= words_.size())
            return NONE;
        uint64_t key8 = pack8(key);
        /* the next subject first: a scan in subject order asks for it */
        uint32_t nx = next(last_found_);
        if (nx < words_.size() && same_key(nx, key, key8)) {
            last_found_ = nx;
            return live(nx);
        }
        if (same_key(last_found_, key, key8))
            return live(last_found_);
        return NONE;
    }
    void remember(uint32_t r) { last_found_ = r; }

    /* Whether key, which find_next() did not find, certainly has no record:
     * the table holds every subject in subject order (no subject was added
     * or marked unknown since the bulk load) and key sorts between the last
     * record found and the next one.  Scans in subject order skip the hash
     * probe for subjects without consent. */
    bool absent_next(std::string_view key) const
    {
        if (!complete || added_ || !unknown_.empty() || last_found_ >= sorted_end_)
            return false;
        uint32_t nx = next(last_found_);
        if (nx >= sorted_end_)
            return false;
        return subject_less(key_of(last_found_), key) && subject_less(key, key_of(nx));
    }
    /* The bulk load put the records in subject order. */
    void mark_sorted()
    {
        sorted_end_ = words_.size();
        added_ = false;
    }

    /* Another backend changed subjects with this hash: their records keep
     * their room, to be reloaded in place. */
    void invalidate(uint64_t h)
    {
        changed();
        bool hit = false;
        size_t mask = slots_.size() - 1;
        for (size_t i = h & mask; slots_[i] != 0; i = (i + 1) & mask) {
            if (uint32_t(slots_[i] >> 32) != uint32_t(h >> 32))
                continue;
            uint32_t r = uint32_t(slots_[i]) - 1;
            if (hash_key(key_of(r)) == h) {
                hdr(r).n_ev = STALE;
                hit = true;
            }
        }
        if (!hit && complete)
            unknown_.insert(h);
    }

    /* Whether a subject absent from a complete table may still have events. */
    bool maybe_unknown(uint64_t h) const { return unknown_.count(h) != 0; }

    /* Room for a bulk load: key_bytes counts the keys longer than 8 bytes. */
    void reserve(size_t subjects, size_t events, size_t key_bytes)
    {
        size_t want = 1024;
        while (want * 3 < subjects * 5 + 5)
            want *= 2;
        slots_.assign(want, 0);
        words_.reserve(subjects * 2 + (key_bytes + 7) / 8 + events);
    }

  private:
    /* Every change: SubjectEvents handed out, and decisions remembered
     * from them, no longer hold. */
    static void changed()
    {
        ++cache_epoch;
        ++detail::decision_stamp;
    }

    /* slot: record offset + 1 in the low 32 bits, the hash's high 32 bits above */
    std::vector<uint64_t> slots_ = std::vector<uint64_t>(1024, 0);
    std::vector<uint64_t> words_;
    std::unordered_set<uint64_t> unknown_;
    size_t garbage_ = 0;      /* words compaction would give back */
    uint32_t last_found_ = 0; /* a record offset (0 also when empty) */
    uint32_t sorted_end_ = 0; /* words_[0, sorted_end_) are records in subject order */
    bool added_ = false;      /* a subject was added after the bulk load */
    size_t count_ = 0;

    static uint32_t key_words(size_t len) { return len <= 8 ? 1 : uint32_t((len + 7) / 8); }
    /* The arena is made of 8-byte words holding headers, key bytes and
     * events (PostgreSQL builds with -fno-strict-aliasing). */
    Header &hdr(uint32_t r) { return *reinterpret_cast<Header *>(&words_[r]); }
    const Header &hdr(uint32_t r) const { return *reinterpret_cast<const Header *>(&words_[r]); }
    /* Offset of the record's first event word (after header and key). */
    uint32_t body(uint32_t r) const { return r + 1 + key_words(hdr(r).key_len); }
    Event *events(uint32_t r) { return reinterpret_cast<Event *>(&words_[body(r)]); }
    const Event *events(uint32_t r) const { return reinterpret_cast<const Event *>(&words_[body(r)]); }
    uint32_t record_words(uint32_t r) const { return body(r) - r + hdr(r).cap; }
    uint32_t next(uint32_t r) const { return r + record_words(r); }
    /* A MOVED record's first event word: the offset of its replacement. */
    uint64_t &forward(uint32_t r) { return words_[body(r)]; }
    uint64_t forward(uint32_t r) const { return words_[body(r)]; }
    /* The live record behind r (r itself unless MOVED). */
    uint32_t live(uint32_t r) const
    {
        while (hdr(r).flags & MOVED)
            r = uint32_t(forward(r));
        return r;
    }

    /* key8: pack8(key) */
    bool same_key(uint32_t r, std::string_view key, uint64_t key8) const
    {
        if (hdr(r).key_len != key.size())
            return false;
        if (key.size() <= 8)
            return words_[r + 1] == key8;
        return memcmp(&words_[r + 1], key.data(), key.size()) == 0;
    }
    std::string_view key_of(uint32_t r) const
    {
        return {reinterpret_cast<const char *>(&words_[r + 1]), hdr(r).key_len};
    }

    /* Appends a record; returns its offset. */
    uint32_t append(std::string_view key, const Event *ev, size_t n, uint16_t flags)
    {
        size_t r = words_.size();
        uint32_t kw = key_words(key.size());
        uint16_t cap = uint16_t(std::max<size_t>(n, 1));
        size_t need = r + 1 + kw + cap;
        if (need >= NONE)
            throw std::bad_alloc();
        /* grow by a quarter, not by doubling: the arena is most of the cache */
        if (need > words_.capacity())
            words_.reserve(std::max(need, words_.capacity() + words_.capacity() / 4));
        words_.resize(need, 0);
        hdr(uint32_t(r)) = Header{uint16_t(key.size()), uint16_t(n), cap, flags};
        memcpy(&words_[r + 1], key.data(), key.size());
        memcpy(&words_[r + 1 + kw], ev, n * sizeof(Event));
        return uint32_t(r);
    }

    void insert_slot(uint32_t r, uint64_t h)
    {
        size_t mask = slots_.size() - 1;
        size_t i = h & mask;
        while (slots_[i] != 0)
            i = (i + 1) & mask;
        slots_[i] = (h >> 32 << 32) | (uint64_t(r) + 1);
    }
    void replace_slot(uint32_t r, uint32_t nr, uint64_t h)
    {
        size_t mask = slots_.size() - 1;
        for (size_t i = h & mask; slots_[i] != 0; i = (i + 1) & mask)
            if (uint32_t(slots_[i]) == r + 1) {
                slots_[i] = (h >> 32 << 32) | (uint64_t(nr) + 1);
                return;
            }
    }
    /* Slots for every live record. */
    void rehash(size_t size)
    {
        slots_.assign(size, 0);
        for (uint32_t r = 0; r < words_.size(); r = next(r))
            if (!(hdr(r).flags & MOVED))
                insert_slot(r, hash_key(key_of(r)));
    }
    void grow() { rehash(slots_.size() * 2); }

    /* Copies every live record to its subject's first place in a new arena
     * (a moved record's replacement goes back where the record was). */
    void compact()
    {
        std::vector<uint64_t> fresh;
        fresh.reserve(words_.size() - std::min(garbage_, words_.size()) + 16);
        size_t sorted_end = NONE;
        for (uint32_t r = 0; r < words_.size(); r = next(r)) {
            if (sorted_end == NONE && r >= sorted_end_)
                sorted_end = fresh.size();
            if (hdr(r).flags & TARGET)
                continue; /* copied at the place of the record it replaced */
            uint32_t l = live(r);
            size_t at = fresh.size();
            fresh.insert(fresh.end(), words_.begin() + l, words_.begin() + l + record_words(l));
            reinterpret_cast<Header *>(&fresh[at])->flags = 0;
        }
        elog(DEBUG1, "consent cache compacted");
        words_.swap(fresh);
        sorted_end_ = uint32_t(sorted_end == NONE ? words_.size() : sorted_end);
        garbage_ = 0;
        last_found_ = 0;
        rehash(slots_.size());
    }
};

SubjectTable now_table;
SubjectTable as_of_table;
bool tables_ready = false;
uint64_t taxonomy_generation_seen = 0;
bool tried_bulk = false;
std::vector<uint64_t> changed_in_xact;
/* This transaction's changed subjects: marked in the shared state (and
 * WAL-logged for standbys) before the commit record; until then this
 * session decides them from its own look-ups (they see its own writes). */
std::vector<std::string> changed_keys;
std::unordered_set<uint64_t> own_changed;
bool changed_everything = false;
/* More changed subjects than this in one transaction count as "everything"
 * (the shared state is rebuilt after its commit). */
constexpr size_t MANY_CHANGES = 100000;
/* The shared state's change count at the last statement start. */
uint64_t shared_changes_seen = 0;

uint32_t until_code(bool grant, bool has_until, TimestampTz until)
{
    if (!grant)
        return 0;
    if (!has_until)
        return UINT32_MAX;
    int64 s = until / USECS_PER_SEC;
    if (s < 1)
        return 1;
    if (s >= int64(UINT32_MAX))
        return UINT32_MAX - 1;
    return uint32_t(s);
}

/* 40 bytes: 2.7M of them are sorted when 1M subjects load. */
struct RawEvent {
    uint64_t prefix; /* the key's first 8 bytes, big-endian: most comparisons end here */
    TimestampTz at;
    int64 id;
    Event ev;
    uint32_t key_off;
    uint16_t key_len;
};

uint64_t key_prefix(std::string_view key)
{
    uint64_t p = 0;
    size_t n = std::min<size_t>(8, key.size());
    for (size_t i = 0; i < n; i++)
        p = (p << 8) | uint8_t(key[i]);
    return n == 0 ? 0 : p << (8 * (8 - n));
}

/* Category or purpose indexes by key, without allocating per look-up. */
class KeyIndex {
  public:
    template <typename Items> explicit KeyIndex(const Items &items)
    {
        for (size_t i = 0; i < items.size(); i++)
            map_.emplace(std::string_view(items[i].key), int(i));
    }
    int operator()(std::string_view k) const
    {
        auto it = map_.find(k);
        return it == map_.end() ? -1 : it->second;
    }

  private:
    std::unordered_map<std::string_view, int> map_;
};

/* Maps keys of the taxonomy; -1 when unknown (deleted category). */
int category_of(const Taxonomy &t, std::string_view k)
{
    auto it = t.category_index.find(std::string(k));
    return it == t.category_index.end() ? -1 : it->second;
}
int purpose_of(const Taxonomy &t, std::string_view k)
{
    auto it = t.purpose_index.find(std::string(k));
    return it == t.purpose_index.end() ? -1 : it->second;
}

std::string_view text_view(Datum d)
{
    text *t = reinterpret_cast<text *>(PG_DETOAST_DATUM_PACKED(d));
    return {VARDATA_ANY(t), size_t(VARSIZE_ANY_EXHDR(t))};
}

} // namespace

/* Reads all of consent.subject_state with snap into raw events (the latest
 * event and, when later granted again, the latest withdrawal of each pair)
 * and hands them to emit subject by subject, in subject order.  Returns
 * false (emitting nothing) when they would take more than budget bytes. */
bool read_subject_state(Snapshot snap, size_t budget,
                        const std::function<void(std::string_view, const Event *, size_t)> &emit)
{
    const Taxonomy &t = taxonomy_in_use(); /* the caller's (see taxonomy.h) */
    const KeyIndex cat_index(t.categories), pur_index(t.purposes);
    std::vector<RawEvent> raw;
    std::string keys;
    bool fits = true;
    pg([&] {
        Oid nsp = get_namespace_oid("consent", false);
        Oid relid = get_relname_relid("subject_state", nsp);
        if (!OidIsValid(relid))
            elog(ERROR, "consent.subject_state is missing");
        Relation rel = table_open(relid, AccessShareLock);
        subject_state_relid = relid;
        subject_state_signal = standby_signal_relid(rel);
        /* estimated rows: stop early when the result cannot fit */
        double est = rel->rd_rel->reltuples > 0 ? rel->rd_rel->reltuples : 0;
        /* about 20 bytes per event in the table (events, entries, slots, keys) */
        if (budget != size_t(-1) && est * 20 > double(budget)) {
            fits = false;
            table_close(rel, AccessShareLock);
            return;
        }
        raw.reserve(size_t(est * 1.1) + 16);
        keys.reserve(size_t(est * 1.1) * 8 + 16); /* decimal subjects of up to 8 digits, no regrowth */
        TableScanDesc scan = table_beginscan(rel, snap, 0, nullptr);
        TupleDesc desc = RelationGetDescr(rel);
        Datum values[9];
        bool nulls[9];
        HeapTuple tup;
        MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "consent bulk load", ALLOCSET_DEFAULT_SIZES);
        while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
            MemoryContext old = MemoryContextSwitchTo(tmp);
            int natts = std::min(desc->natts, 9);
            heap_deform_tuple(tup, desc, values, nulls);
            std::string_view subject = text_view(values[0]);
            int cat = cat_index(text_view(values[1]));
            int pur = pur_index(text_view(values[2]));
            MemoryContextSwitchTo(old);
            if (cat >= 0 && pur >= 0 && natts >= 9) {
                uint32_t off = uint32_t(keys.size());
                keys.append(subject.data(), subject.size());
                bool grant = text_view(values[4]) == "grant";
                RawEvent r{
                    key_prefix(subject),
                    DatumGetTimestampTz(values[6]),
                    DatumGetInt64(values[3]),
                    Event{uint16_t(cat), uint16_t(pur), until_code(grant, !nulls[5], DatumGetTimestampTz(values[5]))},
                    off,
                    uint16_t(subject.size())};
                raw.push_back(r);
                if (grant && !nulls[7]) {
                    RawEvent w = r;
                    w.ev.until = 0;
                    w.at = DatumGetTimestampTz(values[7]);
                    w.id = DatumGetInt64(values[8]);
                    raw.push_back(w);
                }
            }
            MemoryContextReset(tmp);
            if (budget != size_t(-1) && keys.size() + raw.size() * sizeof(RawEvent) > budget * 2) {
                fits = false;
                break;
            }
        }
        MemoryContextDelete(tmp);
        table_endscan(scan);
        table_close(rel, AccessShareLock);
    });
    if (!fits)
        return false;
    auto key_of = [&](const RawEvent &r) { return std::string_view(keys.data() + r.key_off, r.key_len); };
    auto same_key = [&](const RawEvent &a, const RawEvent &b) {
        return a.key_len == b.key_len && a.prefix == b.prefix && key_of(a) == key_of(b);
    };
    /* Subject order ((length, bytes): numeric order for integer subjects),
     * so that a scan in subject order walks the arenas sequentially. */
    std::sort(raw.begin(), raw.end(), [&](const RawEvent &a, const RawEvent &b) {
        if (a.key_len != b.key_len)
            return a.key_len < b.key_len;
        if (a.prefix != b.prefix)
            return a.prefix < b.prefix;
        if (a.key_len > 8) {
            int c = memcmp(keys.data() + a.key_off + 8, keys.data() + b.key_off + 8, a.key_len - 8u);
            if (c != 0)
                return c < 0;
        }
        if (a.at != b.at)
            return a.at < b.at;
        return a.id < b.id;
    });
    std::vector<Event> group;
    for (size_t i = 0; i < raw.size();) {
        size_t j = i;
        group.clear();
        while (j < raw.size() && same_key(raw[j], raw[i]))
            group.push_back(raw[j++].ev);
        emit(key_of(raw[i]), group.data(), group.size());
        i = j;
    }
    return true;
}

namespace {

/* Loads all of consent.subject_state with the latest snapshot into table.
 * Returns false when it would not fit. */
bool bulk_load(SubjectTable &table, size_t budget)
{
    std::vector<Event> events;
    std::string keys;
    std::vector<std::pair<size_t, size_t>> subjects; /* key offset, event offset */
    bool ok;
    {
        shared::ScanSnapshot snap;
        ok = read_subject_state(snap.get(), budget, [&](std::string_view key, const Event *ev, size_t n) {
            subjects.emplace_back(keys.size(), events.size());
            keys.append(key);
            events.insert(events.end(), ev, ev + n);
        });
    }
    if (!ok)
        return false;
    table.clear();
    size_t key_bytes = 0;
    for (size_t i = 0; i < subjects.size(); i++) {
        size_t kl = (i + 1 < subjects.size() ? subjects[i + 1].first : keys.size()) - subjects[i].first;
        if (kl > 8)
            key_bytes += kl;
    }
    table.reserve(subjects.size(), events.size(), key_bytes);
    for (size_t i = 0; i < subjects.size(); i++) {
        size_t ko = subjects[i].first, kl = (i + 1 < subjects.size() ? subjects[i + 1].first : keys.size()) - ko;
        size_t eo = subjects[i].second, en = (i + 1 < subjects.size() ? subjects[i + 1].second : events.size()) - eo;
        std::string_view key(keys.data() + ko, kl);
        table.put(key, hash_key(key), events.data() + eo, en, true);
    }
    table.complete = true;
    table.mark_sorted();
    if (table.memory() > budget) {
        table.clear();
        return false;
    }
    return true;
}

/* The relation named consent.<name> and its first index on the subject
 * (subject_state's primary key, the ledger's (subject, recorded_at, id)). */
Oid consent_relid(const char *name)
{
    Oid nsp = get_namespace_oid("consent", false);
    Oid relid = get_relname_relid(name, nsp);
    if (!OidIsValid(relid))
        elog(ERROR, "consent.%s is missing", name);
    return relid;
}

Oid subject_index(Relation rel, AttrNumber subject)
{
    List *indexes = RelationGetIndexList(rel);
    Oid found = InvalidOid;
    ListCell *lc;
    foreach (lc, indexes) {
        Relation idx = index_open(lfirst_oid(lc), AccessShareLock);
        bool first_is_subject = idx->rd_index->indnatts >= 1 && idx->rd_index->indkey.values[0] == subject &&
                                idx->rd_rel->relam == BTREE_AM_OID && idx->rd_indexprs == NIL;
        index_close(idx, AccessShareLock);
        if (first_is_subject) {
            found = lfirst_oid(lc);
            break;
        }
    }
    list_free(indexes);
    if (!OidIsValid(found))
        elog(ERROR, "%s has no index on its subject", RelationGetRelationName(rel));
    return found;
}

/* The rows of consent.<name> about one subject, read with snap through the
 * index on the subject (in index order), handed to row(values, nulls). */
void scan_subject(const char *name, std::string_view key, Snapshot snap,
                  const std::function<void(const Datum *, const bool *)> &row)
{
    bool failed = false;
    pg([&] {
        Relation rel = table_open(consent_relid(name), AccessShareLock);
        AttrNumber subject = get_attnum(RelationGetRelid(rel), "subject");
        Oid index = subject_index(rel, subject);
        Relation idx = index_open(index, AccessShareLock);
        ScanKeyData sk;
        text *value = cstring_to_text_with_len(key.data(), int(key.size()));
        ScanKeyInit(&sk, subject, BTEqualStrategyNumber, F_TEXTEQ, PointerGetDatum(value));
        sk.sk_collation = idx->rd_indcollation[0];
        index_close(idx, AccessShareLock);
        TupleDesc desc = RelationGetDescr(rel);
        int natts = desc->natts;
        Datum *v = static_cast<Datum *>(palloc(sizeof(Datum) * natts));
        bool *n = static_cast<bool *>(palloc(sizeof(bool) * natts));
        SysScanDesc scan = systable_beginscan(rel, index, true, snap, 1, &sk);
        HeapTuple tup;
        while (!failed && (tup = systable_getnext(scan)) != nullptr) {
            heap_deform_tuple(tup, desc, v, n);
            /* C++ runs outside this pg() block: hand the row over by copy */
            try {
                row(v, n);
            } catch (...) {
                failed = true; /* rethrown below, after the scan is closed */
            }
        }
        systable_endscan(scan);
        table_close(rel, AccessShareLock);
        /* one load per changed subject, in whatever context the cell runs in */
        pfree(v);
        pfree(n);
        pfree(value);
    });
    if (failed)
        throw std::bad_alloc();
}

/* Loads one subject's events from subject_state (now) or the ledger (as of). */
std::vector<Event> load_subject(std::string_view key, TimestampTz as_of)
{
    const Taxonomy &t = taxonomy_in_use(); /* the caller's (see taxonomy.h) */
    struct Timed {
        TimestampTz at;
        int64 id;
        Event ev;
    };
    std::vector<Timed> timed;
    /* the latest snapshot (in parallel mode the statement's) */
    Snapshot snap = shared::latest_snapshot();
    if (as_of == NOW) {
        /* subject, category, purpose, event_id, action, valid_until, recorded_at, withdrawn_at, withdrawn_id */
        scan_subject("subject_state", key, snap, [&](const Datum *v, const bool *n) {
            int cat = category_of(t, text_view(v[1]));
            int pur = purpose_of(t, text_view(v[2]));
            if (cat < 0 || pur < 0)
                return;
            bool grant = text_view(v[4]) == "grant";
            Event e{uint16_t(cat), uint16_t(pur), until_code(grant, !n[5], n[5] ? 0 : DatumGetTimestampTz(v[5]))};
            timed.push_back({DatumGetTimestampTz(v[6]), DatumGetInt64(v[3]), e});
            if (grant && !n[7]) {
                e.until = 0;
                timed.push_back({DatumGetTimestampTz(v[7]), DatumGetInt64(v[8]), e});
            }
        });
    } else {
        /* id, subject, category, purpose, action, valid_until, recorded_at, ... */
        scan_subject("ledger", key, snap, [&](const Datum *v, const bool *n) {
            TimestampTz at = DatumGetTimestampTz(v[6]);
            std::string_view action = text_view(v[4]);
            if (at > as_of || action == "erase")
                return;
            int cat = category_of(t, text_view(v[2]));
            int pur = purpose_of(t, text_view(v[3]));
            if (cat < 0 || pur < 0)
                return;
            bool grant = action == "grant";
            timed.push_back({at, DatumGetInt64(v[0]),
                             Event{uint16_t(cat), uint16_t(pur),
                                   until_code(grant, !n[5], n[5] ? 0 : DatumGetTimestampTz(v[5]))}});
        });
    }
    std::sort(timed.begin(), timed.end(),
              [](const Timed &a, const Timed &b) { return a.at != b.at ? a.at < b.at : a.id < b.id; });
    std::vector<Event> out;
    out.reserve(timed.size());
    for (const Timed &x : timed)
        out.push_back(x.ev);
    return out;
}

/* Category and purpose indexes of the cached events, by key. */
std::vector<std::string> seen_categories, seen_purposes;

void ensure_ready()
{
    const Taxonomy &t = taxonomy_in_use(); /* the caller's (see taxonomy.h) */
    if (tables_ready && taxonomy_generation_seen == t.generation)
        return;
    std::vector<std::string> cats, purs;
    for (auto &c : t.categories)
        cats.push_back(c.key);
    for (auto &p : t.purposes)
        purs.push_back(p.key);
    /* indexes moved: cached events would point at the wrong keys */
    if (!tables_ready || cats != seen_categories || purs != seen_purposes) {
        now_table.clear();
        as_of_table.clear();
        tried_bulk = false;
        seen_categories.swap(cats);
        seen_purposes.swap(purs);
    }
    tables_ready = true;
    taxonomy_generation_seen = t.generation;
}

size_t budget_bytes()
{
    return size_t(cache_size_mb) * 1024 * 1024;
}

void forget_own_changes()
{
    if ((!own_changed.empty() || changed_everything) && shared::enabled())
        now_table.clear(); /* held only this transaction's subjects */
    changed_keys.clear();
    own_changed.clear();
    changed_everything = false;
}

/* Tests only: consent_regress.publish_delay_ms (a placeholder setting, at
 * most 10 s) holds a committed transaction between its commit becoming
 * visible and the second append of its subjects to the ring, the window
 * that first_ring_position() covers (test/t/006_shared_size.pl). */
void regress_publish_delay()
{
    const char *v = GetConfigOption("consent_regress.publish_delay_ms", true, false);
    long ms = v ? strtol(v, nullptr, 10) : 0;
    if (ms > 0)
        pg_usleep(std::min(ms, 10000L) * 1000L);
}

void xact_event(XactEvent event)
{
    switch (event) {
    case XACT_EVENT_PRE_COMMIT:
    case XACT_EVENT_PRE_PREPARE:
        if (!changed_keys.empty() || changed_everything) {
            FullTransactionId fxid = GetTopFullTransactionIdIfAny();
            if (FullTransactionIdIsValid(fxid)) {
                shared::mark(changed_keys, U64FromFullTransactionId(fxid), changed_everything, MyDatabaseId);
                wal::log_changes(changed_keys, U64FromFullTransactionId(fxid), changed_everything, MyDatabaseId);
            }
        }
        /* Before the commit record: the subjects, with the transaction,
         * so that a backend that reads them while it runs drops them at
         * the first statement that sees it ended (pending_changes), also
         * when that statement starts before the publication at COMMIT;
         * and a prepared transaction publishes its subjects again when
         * whoever commits it is seen to have done so (prepared.h). */
        if (FullTransactionId fxid = GetTopFullTransactionIdIfAny(); FullTransactionIdIsValid(fxid))
            cache_publish(changed_in_xact.data(), changed_in_xact.size(), U64FromFullTransactionId(fxid));
        if (event == XACT_EVENT_PRE_PREPARE)
            prepared::remember(GetTopFullTransactionIdIfAny(), changed_in_xact);
        break;
    case XACT_EVENT_PREPARE:
        forget_own_changes();
        changed_in_xact.clear();
        break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
        if (!changed_in_xact.empty())
            regress_publish_delay();
        cache_publish(changed_in_xact.data(), changed_in_xact.size());
        changed_in_xact.clear();
        forget_own_changes();
        break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
        /* we may have cached state this transaction wrote */
        for (uint64_t h : changed_in_xact) {
            now_table.invalidate(h);
            as_of_table.invalidate(h);
        }
        changed_in_xact.clear();
        forget_own_changes();
        break;
    default:
        break;
    }
}

bool reset_pending = false;

/* Transaction callback: publish this transaction's changed subjects at
 * commit, forget what we may have cached of them at abort.  Runs inside
 * PostgreSQL: nothing may escape it. */
void xact_callback(XactEvent event, void *) noexcept
{
    if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE) {
        /* before the commit record: a failure fails the commit (entry()
         * raises it as an error), which keeps every decision right */
        entry([&] { xact_event(event); });
        return;
    }
    try {
        xact_event(event);
    } catch (...) {
        changed_in_xact.clear();
        changed_keys.clear();
        own_changed.clear();
        changed_everything = false;
        reset_pending = true;
    }
}

} // namespace

bool subject_type_supported(Oid type)
{
    switch (type) {
    case INT8OID:
    case INT4OID:
    case INT2OID:
    case UUIDOID:
    case TEXTOID:
    case VARCHAROID:
    case BPCHAROID:
        return true;
    default:
        return false;
    }
}

std::string_view subject_key(Datum value, Oid type, char *buf)
{
    switch (type) {
    case INT8OID:
        return {buf, size_t(pg_lltoa(DatumGetInt64(value), buf))};
    case INT4OID:
        return {buf, size_t(pg_ltoa(DatumGetInt32(value), buf))};
    case INT2OID:
        return {buf, size_t(pg_ltoa(DatumGetInt16(value), buf))};
    case UUIDOID: {
        const unsigned char *u = DatumGetUUIDP(value)->data;
        static const char hex[] = "0123456789abcdef";
        int p = 0;
        for (int i = 0; i < UUID_LEN; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10)
                buf[p++] = '-';
            buf[p++] = hex[u[i] >> 4];
            buf[p++] = hex[u[i] & 0xF];
        }
        return {buf, size_t(p)};
    }
    default:
        return text_view(value);
    }
}

namespace {
/* The last subject looked up: the tagged columns of one row share it. */
struct {
    uint64_t epoch = 0;
    TimestampTz as_of = NOW;
    size_t len = 0;
    char key[64];
    SubjectEvents ev;
} last;

SubjectEvents find_events(std::string_view key, TimestampTz as_of);

/* subject_events() without the cursor guard's record. */
SubjectEvents lookup_subject(std::string_view key, TimestampTz as_of)
{
    if (last.epoch == cache_epoch && last.as_of == as_of && last.len == key.size() &&
        memcmp(last.key, key.data(), key.size()) == 0)
        return last.ev;
    SubjectEvents ev = find_events(key, as_of);
    if (key.size() <= sizeof(last.key)) {
        last.epoch = cache_epoch;
        last.as_of = as_of;
        last.len = key.size();
        memcpy(last.key, key.data(), key.size());
        last.ev = ev;
    }
    return ev;
}

/* The subject read from the shared state by the last look-up: what
 * find_events() hands out points into it until the next look-up (which
 * moves the cache epoch, so that nothing keeps using it). */
shared::Copy shared_copy;

/* The current events of key from the shared state; false when it is off
 * (the caller decides from this backend's own cache). */
bool shared_events(std::string_view key, SubjectEvents &out)
{
    shared::Copy &c = shared_copy;
    shared::Found f;
    while ((f = shared::lookup(key, c)) == shared::Found::NOT_READY)
        if (!shared::build())
            return false; /* not ready: this backend's own cache decides */
    if (f == shared::Found::OFF)
        return false;
    if (now_table.complete && own_changed.empty() && !changed_everything) {
        now_table.clear(); /* the copy made while the shared state was not ready */
        tried_bulk = false;
    }
    ++cache_epoch;
    if (f == shared::Found::NO) {
        out = {};
        return true;
    }
    if (!c.pending.empty()) {
        /* transactions changed the subject since its last load: once the
         * statement's snapshot no longer sees one of them running, load it
         * again (with a newer snapshot) and keep the result for everyone */
        std::vector<uint64_t> running;
        bool finished = false;
        for (uint64_t x : c.pending) {
            if (shared::in_progress(x))
                running.push_back(x);
            else
                finished = true;
        }
        if (finished) {
            std::vector<Event> ev = load_subject(key, NOW);
            shared::install(key, c, ev, running);
            c.events.swap(ev);
            ++cache_epoch;
        }
    }
    out = {c.events.data(), uint32_t(c.events.size())};
    return true;
}

/* lookup_events() without the cursor guard's record. */
SubjectEvents find_events(std::string_view key, TimestampTz as_of)
{
    ensure_ready();
    bool past = as_of != NOW;
    /* the current state comes from the shared state, except for subjects
     * this transaction changed (only this session sees those changes) */
    if (!past && shared::enabled()) {
        SubjectEvents ev;
        /* after a bulk change, this transaction decides everything itself;
         * so does a parallel worker of a transaction that wrote when its
         * leader's list of changed subjects did not reach it (parallel.h) */
        if (!changed_everything && (own_changed.empty() || !own_changed.count(hash_key(key))) &&
            !(IsParallelWorker() && !leader_context_received() && TransactionIdIsValid(GetTopTransactionIdIfAny())) &&
            shared_events(key, ev))
            return ev;
    }
    SubjectTable &table = past ? as_of_table : now_table;
    if (past && table.as_of != as_of) {
        table.clear();
        table.as_of = as_of;
    }
    uint32_t r = table.find_next(key);
    if (r != NONE && !table.stale(r))
        return table.events_of(r);
    if (r == NONE && table.absent_next(key))
        return {};
    uint64_t h = hash_key(key);
    r = table.find(key, h);
    if (r != NONE && !table.stale(r)) {
        table.remember(r);
        return table.events_of(r);
    }
    /* the whole state in this backend: only when the shared one cannot
     * serve (off, or its build for this database could not be trusted) */
    if (r == NONE && !past && !tried_bulk && !shared::ready()) {
        tried_bulk = true;
        if (bulk_load(table, budget_bytes()))
            return find_events(key, as_of);
    }
    if (r == NONE && table.complete && !table.maybe_unknown(h))
        return {};
    std::vector<Event> ev = load_subject(key, as_of);
    if (!table.complete && table.memory() > budget_bytes())
        table.clear();
    table.put(key, h, ev.data(), ev.size());
    return table.events_of(table.find(key, h));
}
} // namespace

/* Every look-up of a subject's events goes through one of these two: the
 * cursor guard records the subjects a tracked portal decides. */
uint64_t subject_hash(std::string_view key)
{
    return hash_key(key);
}

SubjectEvents subject_events(std::string_view key, TimestampTz as_of)
{
    SubjectEvents ev = lookup_subject(key, as_of);
    cursor_record(key, &ev);
    return ev;
}

SubjectEvents lookup_events(std::string_view key, TimestampTz as_of)
{
    SubjectEvents ev = find_events(key, as_of);
    cursor_record(key, &ev);
    return ev;
}

bool decide(const Taxonomy &t, const SubjectEvents &ev, int category, int purpose, TimestampTz now)
{
    const Category &c = t.categories[size_t(category)];
    const Purpose &p = t.purposes[size_t(purpose)];
    uint32_t now_s = uint32_t(std::max<int64>(0, now / USECS_PER_SEC));
    for (uint32_t i = ev.count; i-- > 0;) {
        const Event &e = ev.events[i];
        if (!c.ancestors.test(e.category) || !p.ancestors.test(e.purpose))
            continue;
        if (e.until == 0)
            return false; /* withdrawal */
        /* Art. 9: a special category needs a grant that names it (or a
         * special ancestor), a grant on a general ancestor does not count */
        if (c.special && !t.categories[e.category].special)
            continue;
        return e.until == UINT32_MAX || e.until > now_s;
    }
    return false;
}

uint64_t decide_all(const Taxonomy &t, const SubjectEvents &ev, int purpose, TimestampTz now)
{
    const Purpose &p = t.purposes[size_t(purpose)];
    uint32_t now_s = uint32_t(std::max<int64>(0, now / USECS_PER_SEC));
    uint64_t decided = 0, revealed = 0;
    /* as decide(): the latest event on a category or an ancestor decides,
     * newest first; each event decides the categories below it that no
     * later event decided */
    for (uint32_t i = ev.count; i-- > 0;) {
        const Event &e = ev.events[i];
        if (e.category >= t.descendants.size() || !p.ancestors.test(e.purpose))
            continue;
        uint64_t reach = t.descendants[e.category] & ~decided;
        if (e.until == 0) {
            decided |= reach; /* withdrawal */
            continue;
        }
        /* Art. 9: a grant on a general category does not reach special ones */
        if (!(t.special_categories >> e.category & 1))
            reach &= ~t.special_categories;
        if (e.until == UINT32_MAX || e.until > now_s)
            revealed |= reach;
        decided |= reach;
    }
    return revealed;
}

/* Subjects published by transactions that were still running when this
 * backend read them: (hash, transaction), dropped from the caches at the
 * first statement that sees the transaction ended.  Bounded: beyond
 * PENDING_MAX, a transaction's further subjects count as all of them. */
constexpr size_t PENDING_MAX = 8192;
std::vector<std::pair<uint64_t, uint64_t>> pending_changes;

void subject_changed_elsewhere(uint64_t h)
{
    now_table.invalidate(h);
    as_of_table.invalidate(h);
    cursor_subject_changed(h);
}

void add_pending_change(uint64_t h, uint64_t fxid)
{
    if (pending_changes.size() >= PENDING_MAX) {
        for (const auto &p : pending_changes)
            if (p.second == fxid && p.first == EVERYTHING)
                return;
        h = EVERYTHING;
    }
    pending_changes.emplace_back(h, fxid);
}

/* A new backend's first place in the ring: the write position.  Before it,
 * the entries that a transaction appended at PRE_COMMIT and that is still
 * running as this statement sees it are kept aside like those read later:
 * the transaction appends its subjects again only after its commit became
 * visible, and in between a statement of this backend, whose own cache
 * (the shared state off) was loaded before the commit, would not know
 * that they changed.  (Read without the lock: an entry overwritten
 * meanwhile is one appended after pos, read at the next statement.) */
uint64_t first_ring_position()
{
    uint64_t pos = pg_atomic_read_u64(&ring->write_pos);
    pg_read_barrier();
    if (shared::enabled())
        return pos; /* decisions come from the shared state, whose marks carry the transaction */
    for (uint64_t i = pos > RING_SIZE ? pos - RING_SIZE : 0; i < pos; i++) {
        uint64_t fxid = ring->fxids[i % RING_SIZE];
        if (fxid != 0 && shared::in_progress(fxid))
            add_pending_change(ring->hashes[i % RING_SIZE], fxid);
    }
    return pos;
}

/* Drops what the transactions this statement sees ended changed; whether
 * one of them changed every subject. */
bool end_pending_changes()
{
    if (pending_changes.empty())
        return false;
    bool everything = false;
    size_t kept = 0;
    for (const auto &p : pending_changes) {
        if (shared::in_progress(p.second)) {
            pending_changes[kept++] = p;
        } else if (p.first == EVERYTHING) {
            everything = true;
        } else {
            subject_changed_elsewhere(p.first);
        }
    }
    pending_changes.resize(kept);
    return everything;
}

void cache_sync(bool parallel_plan)
{
    shared::statement_start(parallel_plan);
    /* A statement run inside a parallel one (a function's query) decides
     * with the outer statement's snapshot: the changes made since are not
     * taken in yet, or the decisions made with that older snapshot would
     * be remembered past them; the next statement takes them in. */
    if (IsInParallelMode())
        return;
    /* a ROLLBACK in a failed transaction block decides nothing: the
     * changes wait for the next statement (no snapshot taken there) */
    if (!IsTransactionState())
        return;
    prepared::sweep();
    if (uint64_t changes = shared::change_count(); changes != shared_changes_seen) {
        /* a record changed: decisions remembered for a row go */
        shared_changes_seen = changes;
        ++cache_epoch;
        ++detail::decision_stamp;
    }
    if (reset_pending) {
        reset_pending = false;
        cache_reset();
        cursor_everything_changed();
    }
    if (!ring)
        return;
    if (ring_read_pos == UINT64_MAX)
        ring_read_pos = first_ring_position();
    bool everything = end_pending_changes();
    uint64_t pos = pg_atomic_read_u64(&ring->write_pos);
    if (pos == ring_read_pos && !everything)
        return;
    pg_read_barrier();
    if (pos - ring_read_pos > RING_SIZE) {
        cache_reset();
        cursor_everything_changed();
    } else {
        for (uint64_t i = ring_read_pos; i < pos && !everything; i++) {
            uint64_t h = ring->hashes[i % RING_SIZE];
            uint64_t fxid = ring->fxids[i % RING_SIZE];
            /* about to commit, and running as this statement sees it: what
             * this backend holds of the subject is still right, until a
             * statement sees the transaction ended */
            if (fxid != 0 && shared::in_progress(fxid)) {
                add_pending_change(h, fxid);
                continue;
            }
            if (h == EVERYTHING) {
                everything = true;
                break;
            }
            subject_changed_elsewhere(h);
        }
        pg_read_barrier();
        /* entries overwritten while we read them: start over */
        if (everything || pg_atomic_read_u64(&ring->write_pos) - ring_read_pos > RING_SIZE) {
            cache_reset();
            cursor_everything_changed();
        }
    }
    ring_read_pos = pos;
}

const std::vector<std::string> &cache_own_changes(bool &everything)
{
    everything = changed_everything;
    return changed_keys;
}

void cache_adopt_leader_changes(bool everything, const std::vector<std::string> &keys)
{
    forget_own_changes();
    changed_everything = everything;
    for (const std::string &k : keys)
        if (own_changed.insert(hash_key(k)).second)
            changed_keys.push_back(k);
}

void cache_subject_changed(std::string_view key)
{
    uint64_t h = hash_key(key);
    now_table.invalidate(h);
    as_of_table.invalidate(h);
    cursor_subject_changed(h);
    /* a transaction changing very many subjects (a bulk load) publishes
     * "everything" instead of each subject: its lists stay bounded */
    if (changed_in_xact.size() < RING_SIZE)
        changed_in_xact.push_back(h);
    else if (changed_in_xact.back() != EVERYTHING)
        changed_in_xact.push_back(EVERYTHING);
    if (changed_everything)
        return;
    if (own_changed.insert(h).second)
        changed_keys.emplace_back(key);
    if (changed_keys.size() > MANY_CHANGES) {
        changed_everything = true;
        changed_keys.clear();
        changed_keys.shrink_to_fit();
        std::unordered_set<uint64_t>().swap(own_changed);
    }
}

void cache_everything_changed()
{
    cache_reset();
    cursor_everything_changed();
    changed_in_xact.push_back(EVERYTHING);
    changed_everything = true;
}

void cache_reset()
{
    now_table.clear();
    as_of_table.clear();
    tried_bulk = false;
}

void cache_publish(const uint64_t *hashes, size_t n, uint64_t fxid) noexcept
{
    if (n == 0 || !ring)
        return;
    SpinLockAcquire(&ring->lock);
    uint64_t pos = pg_atomic_read_u64(&ring->write_pos);
    for (size_t i = 0; i < n; i++, pos++) {
        ring->hashes[pos % RING_SIZE] = hashes[i];
        ring->fxids[pos % RING_SIZE] = fxid;
    }
    pg_write_barrier();
    pg_atomic_write_u64(&ring->write_pos, pos);
    SpinLockRelease(&ring->lock);
}

size_t cache_memory()
{
    return now_table.memory() + as_of_table.memory();
}
size_t cache_subjects()
{
    return now_table.size() + as_of_table.size();
}

void install_shmem_hooks()
{
    prev_shmem_request = shmem_request_hook;
    shmem_request_hook = ring_shmem_request;
    prev_shmem_startup = shmem_startup_hook;
    shmem_startup_hook = ring_shmem_startup;
    shared::install_hooks();
    wal::register_rmgr();
}

namespace {
/* Relcache callback.  On a hot standby no backend commits consent changes,
 * so the ring stays empty there; the WAL-logged relcache invalidation of
 * standby_signal_relid() (sent by subject_state's row trigger) tells standby
 * backends that some subject changed: they drop their whole cache
 * (per-table, not per-subject, precision).  subject_state itself counts
 * too (what primaries running 1.1's library send). */
} // namespace

/* A relation changed: on a hot standby, the replayed signal that
 * consent.subject_state changed. */
void cache_relation_changed(Oid relid) noexcept
{
    if (!RecoveryInProgress())
        return;
    if (relid == InvalidOid || subject_state_relid == InvalidOid || relid == subject_state_relid ||
        relid == subject_state_signal)
        reset_pending = true;
}

Oid standby_signal_relid(Relation subject_state)
{
    Oid toast = subject_state->rd_rel->reltoastrelid;
    return OidIsValid(toast) ? toast : RelationGetRelid(subject_state);
}

void register_cache_callbacks()
{
    RegisterXactCallback(xact_callback, nullptr);
    if (ring)
        ring_read_pos = pg_atomic_read_u64(&ring->write_pos);
}

} // namespace consent
