/*
 * wal.h — pg_consent's own WAL records (a custom resource manager), through
 * which hot standbys learn which subjects a transaction changed.
 *
 * Owns: the resource manager (registered at preload), writing a
 * transaction's changed subjects (or the database it drops) before its
 * commit record, and replaying them into the standby's shared consent
 * state.
 * Must never: let an error escape redo (a standby must keep replaying); the
 * shared state is turned off instead, which keeps decisions right.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace consent::wal {

/* The resource manager id (see docs/architecture.md, "Hot standbys"). */
constexpr int RMGR_ID = 143;

void register_rmgr();
/* Transaction fxid of database changed these subjects (everything: all of
 * them). */
void log_changes(const std::vector<std::string> &keys, uint64_t fxid, bool everything, unsigned int database);
/* The running transaction drops database (written before its commit
 * record): a standby frees the database's part of its shared state when
 * it replays this, as the primary does when the drop commits. */
void log_database_dropped(unsigned int database);

} // namespace consent::wal
