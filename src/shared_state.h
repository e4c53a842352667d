/*
 * shared_state.h — the server's one consent state: for each subject, the
 * latest event per (category, purpose), in shared memory, read by every
 * backend without a lock and maintained at commit with per-subject
 * precision (on hot standbys, by replaying the WAL records of wal.cpp).
 *
 * Owns: the shared subject table (a region reserved at server start, sized
 * by consent.shared_size), its build from consent.subject_state, the
 * pending marks of transactions that changed a subject, and compaction.
 * Must never: let a reader see a half-written record or slot; serve the
 * events of a subject that a transaction committed (as seen by the
 * statement's snapshot) changes to without reloading them; hold a lock
 * while running SQL.
 */
#pragma once

#include "cache.h"

extern "C" {
#include "access/transam.h"
#include "utils/snapshot.h"
}

#include <string>
#include <string_view>
#include <vector>

namespace consent::shared {

/* consent.shared_size in MB (0: off, every backend keeps its own cache). */
extern int size_mb;
void define_guc();
void shmem_request();
void shmem_startup();

/* Whether the shared table is in use for this backend's database
 * (preloaded, sized, not given up, and with room for the database: it
 * holds up to 64 databases, whose records' keys start with their OID; a
 * dropped database's slot is freed when DROP DATABASE commits). */
bool enabled();
/* enabled(), and this database's part of the table is built. */
bool ready();
/* Gives the table up until restart (every backend keeps its own cache). */
void turn_off(const char *why) noexcept;
void install_hooks();

/* One subject as read from the table. */
struct Copy {
    uint32_t record = 0;           /* where it was read: install() replaces it only if still there */
    uint64_t generation = 0;       /* ... and no compaction or build moved records since */
    std::vector<Event> events;     /* the events as of the last load */
    std::vector<uint64_t> pending; /* full xids of transactions that changed it since */
};

enum class Found { YES, NO, NOT_READY, OFF };
/* Reads this database's subject.  NOT_READY: build() first; OFF: the table
 * is given up (too small), or has no room for this database. */
Found lookup(std::string_view subject, Copy &out);

/* Read-ahead for scans whose rows come in no subject order (hints only:
 * they read nothing they rely on and take no lock).  prefetch_slot()
 * starts loading the subject's first slot into the CPU cache and returns
 * the hash of its key; prefetch_record(hash), some rows later, starts
 * loading the record that slot points to.  A look-up of the subject after
 * both finds them in the cache instead of waiting for memory twice. */
uint64_t prefetch_slot(std::string_view subject) noexcept;
void prefetch_record(uint64_t hash) noexcept;
/* Look-ups of this backend that did not find their subject right after
 * the one read before (a scan compares it before and after some rows to
 * see whether its rows come in subject order). */
uint64_t unordered_lookups() noexcept;

/* Replaces the record read into seen (if no mark replaced it since) with
 * freshly loaded events and the pending transactions still running. */
void install(std::string_view subject, const Copy &seen, const std::vector<Event> &events,
             const std::vector<uint64_t> &pending);

/* Builds this database's part of the table from consent.subject_state (or
 * waits while another backend does).  Whether it is READY: it is not when
 * the table is OFF, or the build could not be trusted (marks lost for a
 * transaction still running; tried again a second later at the earliest). */
bool build();

/* Transaction fxid of database changed these subjects (everything: all of
 * them); called before its commit record is written, and by WAL redo on
 * standbys. */
void mark(const std::vector<std::string> &keys, uint64_t fxid, bool everything, Oid database);

/* Whether the transaction is still running as the current statement sees
 * it (a snapshot taken at the first need of each statement). */
bool in_progress(uint64_t fxid);
/* A new statement: a new snapshot at the next need (taken now when the
 * statement is about to enter parallel mode, where none can be taken); a
 * committed TRUNCATE of subject_state makes the table rebuild. */
void statement_start(bool parallel_plan);
/* The statement's snapshot (taking it if it was not yet). */
Snapshot statement_snapshot_now();
/* GetLatestSnapshot(), except before the transaction's first snapshot, which
 * it does not take, and in parallel mode, where none can be taken: then the
 * statement's. */
Snapshot latest_snapshot();
/* In a parallel worker: the statement's snapshot is its leader's (a copy
 * of leader is kept for the worker's life). */
void adopt_statement_snapshot(Snapshot leader);
/* The snapshot a full scan of the consent state uses: the latest one
 * (registered for the scan), or in parallel mode the statement's. */
class ScanSnapshot {
  public:
    ScanSnapshot();
    ~ScanSnapshot();
    ScanSnapshot(const ScanSnapshot &) = delete;
    ScanSnapshot &operator=(const ScanSnapshot &) = delete;
    Snapshot get() const { return snap_; }

  private:
    Snapshot snap_ = nullptr;
    bool registered_ = false;
};

/* A standby replays the drop of database: its slot and records are freed
 * (the primary frees them when the drop commits). */
void forget_database(Oid database) noexcept;

/* Moves whenever a record changes: decisions remembered for a row are
 * dropped at the next statement. */
uint64_t change_count();

struct Stats {
    const char *status;
    Oid database;
    uint64_t subjects, used_bytes, capacity_bytes, builds, build_ms;
};
Stats stats();

} // namespace consent::shared
