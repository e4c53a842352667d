/*
 * wal.cpp — the custom WAL resource manager (see wal.h).
 *
 * CHANGES record: [fxid: 8 bytes] [database oid: 4 bytes] [everything: 1
 * byte] then the subjects, each as [length: 2 bytes] [bytes].  A
 * transaction writes its changed subjects at PRE_COMMIT, so the record
 * precedes its commit record; redo marks the subjects as changed by that
 * transaction in the standby's shared state (shared_state.cpp), where they
 * are reloaded once a statement's snapshot sees the transaction committed.
 *
 * DROP_DATABASE record: [database oid: 4 bytes], written at PRE_COMMIT of
 * DROP DATABASE (after PostgreSQL's own drop records, which end every
 * standby session in the database); redo frees the database's slot and
 * records, so that a database made later with the same OID builds its own.
 */
#include "wal.h"
#include "boundary.h"
#include "shared_state.h"

extern "C" {
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
}

#include <cstring>

namespace consent::wal {

namespace {

constexpr uint8 XLOG_CONSENT_CHANGES = 0x00;
constexpr uint8 XLOG_CONSENT_DROP_DATABASE = 0x10;
/* keys per record: records stay small */
constexpr size_t CHUNK_BYTES = 64 * 1024;

constexpr size_t HEAD = 13;

bool parse(const char *data, size_t len, uint64_t &fxid, Oid &database, bool &everything,
           std::vector<std::string> *keys, size_t &count)
{
    if (len < HEAD)
        return false;
    memcpy(&fxid, data, 8);
    memcpy(&database, data + 8, 4);
    everything = data[12] != 0;
    count = 0;
    for (size_t at = HEAD; at < len;) {
        if (at + 2 > len)
            return false;
        uint16_t n;
        memcpy(&n, data + at, 2);
        if (at + 2 + n > len)
            return false;
        if (keys)
            keys->emplace_back(data + at + 2, n);
        count++;
        at += 2 + n;
    }
    return true;
}

bool is_drop(XLogReaderState *record)
{
    return (XLogRecGetInfo(record) & ~XLR_INFO_MASK) == XLOG_CONSENT_DROP_DATABASE;
}

/* The database of a DROP_DATABASE record; false when it is malformed. */
bool parse_drop(XLogReaderState *record, Oid &database)
{
    if (XLogRecGetDataLen(record) != sizeof database)
        return false;
    memcpy(&database, XLogRecGetData(record), sizeof database);
    return true;
}

void redo_record(XLogReaderState *record)
{
    if (is_drop(record)) {
        Oid dropped;
        if (parse_drop(record, dropped))
            shared::forget_database(dropped);
        else
            shared::turn_off("a replayed database drop could not be read");
        return;
    }
    uint64_t fxid = 0;
    Oid database = InvalidOid;
    bool everything;
    std::vector<std::string> keys;
    size_t count;
    if (!parse(XLogRecGetData(record), XLogRecGetDataLen(record), fxid, database, everything, &keys, count)) {
        /* unreadable: the state cannot be trusted */
        shared::turn_off("a replayed consent change could not be read");
        return;
    }
    shared::mark(keys, fxid, everything, database);
}

extern "C" void consent_redo(XLogReaderState *record)
{
    /* nothing may escape redo; if the shared state cannot take the change,
     * it is turned off (every backend then keeps its own cache) */
    try {
        redo_record(record);
    } catch (...) {
        shared::turn_off("a replayed consent change could not be applied");
    }
}

extern "C" void consent_desc(StringInfo buf, XLogReaderState *record)
{
    if (is_drop(record)) {
        Oid dropped;
        if (parse_drop(record, dropped))
            appendStringInfo(buf, "database %u", dropped);
        else
            appendStringInfoString(buf, "malformed");
        return;
    }
    uint64_t fxid = 0;
    Oid database = InvalidOid;
    bool everything = false;
    size_t count = 0;
    if (parse(XLogRecGetData(record), XLogRecGetDataLen(record), fxid, database, everything, nullptr, count))
        appendStringInfo(buf, "full xid %llu, database %u, %zu subjects%s", (unsigned long long)fxid, database,
                         count, everything ? ", every subject" : "");
    else
        appendStringInfoString(buf, "malformed");
}

extern "C" const char *consent_identify(uint8 info)
{
    switch (info & ~XLR_INFO_MASK) {
    case XLOG_CONSENT_CHANGES:
        return "CHANGES";
    case XLOG_CONSENT_DROP_DATABASE:
        return "DROP_DATABASE";
    default:
        return nullptr;
    }
}

RmgrData rmgr = {
    .rm_name = "pg_consent",
    .rm_redo = consent_redo,
    .rm_desc = consent_desc,
    .rm_identify = consent_identify,
    .rm_startup = nullptr,
    .rm_cleanup = nullptr,
    .rm_mask = nullptr,
    .rm_decode = nullptr,
};

void insert(const std::string &buf, uint8 info = XLOG_CONSENT_CHANGES)
{
    XLogBeginInsert();
    XLogRegisterData(const_cast<char *>(buf.data()), uint32(buf.size()));
    (void)XLogInsert(RmgrId(RMGR_ID), info);
}

} // namespace

void register_rmgr()
{
    RegisterCustomRmgr(RmgrId(RMGR_ID), &rmgr);
}

void log_changes(const std::vector<std::string> &keys, uint64_t fxid, bool everything, unsigned int database)
{
    /* only standbys need the records (crash recovery rebuilds the shared
     * state from the table): none under wal_level = minimal */
    if (!XLogInsertAllowed() || !XLogStandbyInfoActive())
        return;
    for (const std::string &k : keys)
        if (k.size() > UINT16_MAX)
            everything = true;
    std::string head(HEAD, '\0');
    memcpy(&head[0], &fxid, 8);
    memcpy(&head[8], &database, 4);
    head[12] = everything ? 1 : 0;
    std::string buf = head;
    bool any = false;
    for (const std::string &k : keys) {
        if (everything)
            break;
        size_t n = k.size();
        if (buf.size() + 2 + n > CHUNK_BYTES && any) {
            pg([&] { insert(buf); });
            buf = head;
            any = false;
        }
        uint16_t n16 = uint16_t(n);
        buf.append(reinterpret_cast<const char *>(&n16), 2);
        buf.append(k.data(), n);
        any = true;
    }
    if (any || everything)
        pg([&] { insert(buf); });
}

void log_database_dropped(unsigned int database)
{
    if (!XLogInsertAllowed() || !XLogStandbyInfoActive())
        return;
    std::string buf(reinterpret_cast<const char *>(&database), sizeof database);
    pg([&] { insert(buf, XLOG_CONSENT_DROP_DATABASE); });
}

} // namespace consent::wal
