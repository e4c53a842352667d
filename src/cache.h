/*
 * cache.h — the per-backend consent state: for each subject, the latest
 * event per (category, purpose), and the decision computed from them.
 *
 * Owns: the subject table (derived from consent.subject_state / the ledger),
 * the shared-memory ring through which backends learn which subjects
 * changed, and the transaction callbacks that publish changes at commit.
 * Must never: serve a decision older than the latest committed change once
 * a new statement has started; access the catalog per row once loaded.
 */
#pragma once

#include "boundary.h"

extern "C" {
#include "datatype/timestamp.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
}

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace consent {

/* "No as-of time": decisions about now.  consent.as_of and granted(at)
 * only take finite times, so this value cannot collide with one. */
constexpr TimestampTz NOW = DT_NOBEGIN;

/* One compact event: 8 bytes. */
struct Event {
    uint16_t category;
    uint16_t purpose;
    uint32_t until; /* 0 = withdrawal; UINT32_MAX = grant without expiry; else grant valid until (s since 2000) */
};

/* The events of one subject, oldest first. */
struct SubjectEvents {
    const Event *events = nullptr;
    uint32_t count = 0;
};

/* Reads consent.subject_state with snap and hands each subject's events
 * (the latest event per pair, and the latest withdrawal of a pair granted
 * again) to emit, in subject order.  Returns false, emitting nothing, when
 * they would take more than budget bytes (size_t(-1): no bound). */
bool read_subject_state(Snapshot snap, size_t budget,
                        const std::function<void(std::string_view, const Event *, size_t)> &emit);

/* Whether values of this (base) type can identify a subject. */
bool subject_type_supported(Oid type);

/* Canonical subject key of a value of the subject column: bigint and other
 * integers as decimal, uuid in canonical form, text as is.  Writes into buf
 * (at least 64 bytes) or points into the value. */
std::string_view subject_key(Datum value, Oid type, char *buf);

/* The hash that names a subject in the invalidation ring. */
uint64_t subject_hash(std::string_view key);
/* The ring entry that means "every subject changed" (no subject hashes to it). */
constexpr uint64_t RING_EVERYTHING = 0;
/* Tells every backend, at its next statement, that these subjects changed
 * (ring hashes; RING_EVERYTHING among them: all); fxid: the transaction
 * that is about to commit them (0: committed).  Plain C, no error. */
void cache_publish(const uint64_t *hashes, size_t n, uint64_t fxid = 0) noexcept;

/* The events of a subject under the current or an as-of view of the ledger
 * (memoized for the last subject asked). */
SubjectEvents subject_events(std::string_view key, TimestampTz as_of);
SubjectEvents lookup_events(std::string_view key, TimestampTz as_of);

struct Taxonomy;
/* Whether the events reveal (category, purpose) at time now. */
bool decide(const Taxonomy &t, const SubjectEvents &ev, int category, int purpose, TimestampTz now);
/* decide() for every category at once: bit c set when category c is
 * revealed.  Only while t.descendants is not empty (at most 64 categories). */
uint64_t decide_all(const Taxonomy &t, const SubjectEvents &ev, int purpose, TimestampTz now);
namespace detail {
extern uint64_t cache_epoch;
/* Changes whenever a decision remembered for a row may no longer hold: with
 * the cache epoch, a new taxonomy and a new session context (decision.h). */
extern uint64_t decision_stamp;
} // namespace detail
/* Changes whenever the cache changes (SubjectEvents stay valid while it does
 * not).  Inline: the mask functions compare it once per cell. */
inline uint64_t cache_epoch_now()
{
    return detail::cache_epoch;
}

/* Subject order, in which a full load and the shared state's build write
 * their records: (length, bytes), numeric order for integer subjects. */
inline bool subject_less(std::string_view a, std::string_view b)
{
    return a.size() != b.size() ? a.size() < b.size() : a < b;
}

/* Called at the start of every statement: apply invalidations from other
 * backends.  parallel_plan: the statement is about to enter parallel mode. */
void cache_sync(bool parallel_plan = false);
/* The subjects this transaction changed (everything: too many to list, or
 * a TRUNCATE), for its parallel workers; and, in a worker, its leader's. */
const std::vector<std::string> &cache_own_changes(bool &everything);
void cache_adopt_leader_changes(bool everything, const std::vector<std::string> &keys);
/* A subject changed in this transaction. */
void cache_subject_changed(std::string_view key);
/* All subjects may have changed in this transaction (TRUNCATE). */
void cache_everything_changed();
/* Drop everything (taxonomy changed). */
void cache_reset();
/* Bytes held by the cache, and subjects in it. */
size_t cache_memory();
size_t cache_subjects();

void register_cache_callbacks();

/* The relation whose (WAL-logged) relcache invalidation tells hot standbys
 * that consent.subject_state changed: its TOAST table when it has one. */
Oid standby_signal_relid(Relation subject_state);

} // namespace consent
