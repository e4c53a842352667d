/*
 * prepared.cpp — consent changes of prepared transactions (see prepared.h).
 *
 * One entry per transaction prepared in this server's life, made at
 * PRE_PREPARE (before the prepare record: the entry exists before anyone
 * can commit the transaction).  An entry with a transaction id ends when
 * the commit log says the transaction committed or aborted: sweep(), at
 * every statement start of every backend while entries exist, looks for
 * their transactions in the statement's snapshot (a copy of their ids,
 * without the lock) and, once one has ended, publishes a committed one's
 * subjects to the invalidation ring before the backend reads the ring, so
 * a statement whose snapshot sees the commit also sees its subjects
 * changed.  A COMMIT PREPARED of a GID without an entry (a transaction
 * prepared before the server started) publishes "every subject".  Entries
 * change under one LWLock; nothing here runs SQL.
 */
#include "prepared.h"

#include "cache.h"
#include "compat.h"
#include "shared_state.h"

extern "C" {
#include "access/clog.h"
#include "access/twophase.h"
#include "access/xlog.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
}

#include <cstring>

namespace consent::prepared {

namespace {

/* Hashes kept per entry; a transaction that changed more subjects counts
 * as having changed every subject. */
constexpr int HASHES = 64;
constexpr const char *TRANCHE = "pg_consent_prepared";

struct Entry {
    bool used;
    bool all;       /* every subject (or more than HASHES) */
    int n;          /* hashes */
    uint64_t fxid;  /* 0: the transaction had no id (it changed nothing) */
    uint64_t order; /* when it was made: the oldest is given up first */
    char gid[GIDSIZE];
    uint64_t hashes[HASHES];
};

struct Table {
    LWLock *lock;
    pg_atomic_uint32 with_xid; /* entries with a transaction id: sweep() reads it without the lock */
    pg_atomic_uint32 version;  /* moves whenever an entry with a transaction id comes or goes */
    uint64_t made;
    int size;
    Entry entries[FLEXIBLE_ARRAY_MEMBER];
};

Table *table = nullptr;
/* The GID of the PREPARE TRANSACTION this backend is running. */
char pending_gid[GIDSIZE];

int entries_wanted()
{
    return max_prepared_xacts > 0 ? 2 * max_prepared_xacts : 0;
}

Size table_bytes(int n)
{
    return add_size(offsetof(Table, entries), mul_size(sizeof(Entry), Size(n)));
}

void publish_everything()
{
    uint64_t everything = RING_EVERYTHING;
    cache_publish(&everything, 1);
}

void publish(const Entry &e)
{
    if (e.all) {
        publish_everything();
    } else if (e.n > 0) {
        cache_publish(e.hashes, size_t(e.n));
    }
}

void release(Entry &e)
{
    e.used = false;
    if (e.fxid != 0) {
        pg_atomic_sub_fetch_u32(&table->with_xid, 1);
        pg_atomic_fetch_add_u32(&table->version, 1);
    }
}

/* This backend's copy of the transaction ids in the table (as of version
 * known_version): a statement compares them with its snapshot, without
 * the lock. */
std::vector<uint64_t> known_fxids;
uint32_t known_version = UINT32_MAX;

enum class End { RUNNING, COMMITTED, ABORTED, UNKNOWN };

TransactionId xid_of(const Entry &e)
{
    return XidFromFullTransactionId(FullTransactionIdFromU64(e.fxid));
}

/* How the entry's transaction ended, as far as the commit log says. */
End end_of(const Entry &e)
{
    TransactionId xid = xid_of(e);
    if (TransactionIdPrecedes(xid, CONSENT_TRANSAM->oldestClogXid))
        return End::UNKNOWN; /* so long ago that the commit log no longer says how */
    if (TransactionIdDidCommit(xid))
        return End::COMMITTED;
    return TransactionIdDidAbort(xid) ? End::ABORTED : End::RUNNING;
}

/* Under the lock (exclusive): publishes and drops the entries whose
 * transaction has ended.  with_procarray: also those no longer running
 * that the commit log does not know as ended (a transaction that failed
 * before its prepare record and took the backend down). */
void sweep_locked(bool with_procarray)
{
    for (int i = 0; i < table->size; i++) {
        Entry &e = table->entries[i];
        if (!e.used || e.fxid == 0)
            continue;
        End end = end_of(e);
        if (end == End::COMMITTED)
            publish(e);
        else if (end == End::UNKNOWN)
            publish_everything();
        if (end != End::RUNNING || (with_procarray && !TransactionIdIsInProgress(xid_of(e))))
            release(e);
    }
}

} // namespace

void shmem_request()
{
    if (entries_wanted() == 0)
        return;
    RequestAddinShmemSpace(table_bytes(entries_wanted()));
    RequestNamedLWLockTranche(TRANCHE, 1);
}

/* Called with AddinShmemInitLock held (cache.cpp's start-up hook). */
void shmem_startup()
{
    int n = entries_wanted();
    if (n == 0)
        return;
    bool found;
    table = static_cast<Table *>(ShmemInitStruct("pg_consent prepared transactions", table_bytes(n), &found));
    if (!found) {
        table->lock = &(GetNamedLWLockTranche(TRANCHE))->lock;
        pg_atomic_init_u32(&table->with_xid, 0);
        pg_atomic_init_u32(&table->version, 0);
        table->made = 0;
        table->size = n;
        for (int i = 0; i < n; i++)
            table->entries[i].used = false;
    }
}

void preparing(const char *gid)
{
    strlcpy(pending_gid, gid ? gid : "", sizeof pending_gid);
}

void remember(FullTransactionId fxid, const std::vector<uint64_t> &hashes)
{
    if (!table) {
        pending_gid[0] = '\0';
        return;
    }
    pg([&] {
        LWLockAcquire(table->lock, LW_EXCLUSIVE);
        Entry *slot = nullptr;
        for (int i = 0; i < table->size && !slot; i++)
            if (!table->entries[i].used)
                slot = &table->entries[i];
        if (!slot) {
            sweep_locked(true);
            for (int i = 0; i < table->size && !slot; i++)
                if (!table->entries[i].used)
                    slot = &table->entries[i];
        }
        if (!slot) {
            /* only entries of transactions without an id are left beyond
             * the prepared ones: give the oldest up (its COMMIT PREPARED
             * then counts every subject as changed) */
            for (int i = 0; i < table->size; i++) {
                Entry &e = table->entries[i];
                if (e.used && e.fxid == 0 && (!slot || e.order < slot->order))
                    slot = &e;
            }
            if (slot)
                release(*slot);
        }
        if (slot) {
            Entry &e = *slot;
            e.used = true;
            e.fxid = FullTransactionIdIsValid(fxid) ? U64FromFullTransactionId(fxid) : 0;
            e.order = ++table->made;
            strlcpy(e.gid, pending_gid, sizeof e.gid);
            e.all = hashes.size() > size_t(HASHES);
            e.n = 0;
            for (uint64_t h : hashes) {
                if (e.all)
                    break;
                if (h == RING_EVERYTHING)
                    e.all = true;
                else
                    e.hashes[e.n++] = h;
            }
            if (e.fxid != 0) {
                pg_atomic_add_fetch_u32(&table->with_xid, 1);
                pg_atomic_fetch_add_u32(&table->version, 1);
            }
        }
        LWLockRelease(table->lock);
        pending_gid[0] = '\0';
    });
}

bool known(const char *gid)
{
    if (!table || !gid)
        return false;
    return pg([&] {
        bool found = false;
        LWLockAcquire(table->lock, LW_SHARED);
        for (int i = 0; i < table->size && !found; i++)
            found = table->entries[i].used && strcmp(table->entries[i].gid, gid) == 0;
        LWLockRelease(table->lock);
        return found;
    });
}

void finished(const char *gid, bool commit, bool was_known)
{
    if (commit && !was_known)
        publish_everything();
    if (!table || !gid)
        return;
    pg([&] {
        LWLockAcquire(table->lock, LW_EXCLUSIVE);
        sweep_locked(false);
        /* a transaction without an id changed nothing: its entry just goes */
        for (int i = 0; i < table->size; i++) {
            Entry &e = table->entries[i];
            if (e.used && e.fxid == 0 && strcmp(e.gid, gid) == 0)
                release(e);
        }
        LWLockRelease(table->lock);
    });
}

void sweep()
{
    if (!table || pg_atomic_read_u32(&table->with_xid) == 0 || RecoveryInProgress())
        return;
    pg([&] {
        /* while transactions stay prepared, a statement finds them running
         * in its snapshot (no lock, no commit log) */
        uint32_t version = pg_atomic_read_u32(&table->version);
        if (version != known_version) {
            known_fxids.clear();
            known_fxids.reserve(size_t(table->size)); /* no allocation under the lock */
            LWLockAcquire(table->lock, LW_SHARED);
            for (int i = 0; i < table->size; i++)
                if (table->entries[i].used && table->entries[i].fxid != 0)
                    known_fxids.push_back(table->entries[i].fxid);
            LWLockRelease(table->lock);
            known_version = version;
        }
        bool any = false;
        for (uint64_t fxid : known_fxids)
            any = any || !shared::in_progress(fxid);
        if (!any)
            return;
        LWLockAcquire(table->lock, LW_EXCLUSIVE);
        sweep_locked(false);
        LWLockRelease(table->lock);
    });
}

} // namespace consent::prepared
