/*
 * citus.h — pg_consent on a Citus cluster: what it needs of Citus, looked
 * up at run time (pg_consent neither links against Citus nor needs it).
 *
 * Owns: finding Citus's functions in the server (when Citus is preloaded
 * and installed in the database), telling Citus tables and their shards,
 * and sending a call of ours to the cluster's other nodes inside the
 * caller's distributed transaction.
 * Must never: call into Citus where it is not loaded and installed, or let
 * a Citus error cross C++ frames (every call goes through pg()).
 */
#pragma once

#include "boundary.h"

extern "C" {
#include "fmgr.h"
#include "catalog/pg_proc.h"
}

namespace consent::citus {

/* Citus is preloaded in this server and installed in this database. */
bool active();
/* The distributed or reference table (on this node) whose shard relid is;
 * InvalidOid for every other relation. */
Oid shard_parent(Oid relid);
/* Whether Citus plans the reads of relid (a distributed, reference or
 * Citus-managed local table): its rows are read on the nodes that hold
 * its shards, through queries Citus sends them. */
bool is_citus_table(Oid relid);
/* This backend runs commands that another node of the cluster sent. */
bool internal_backend();
/* This backend is running a call another node forwarded (consent._replay()). */
bool replaying_call();
/* Sends this call of a function of ours (fcinfo: its arguments) to every
 * other node with metadata, as the current user, in the current
 * distributed transaction: it commits on every node or on none.  Nothing
 * when Citus is not active or the call itself came from another node. */
void forward_call(FunctionCallInfo fcinfo);

/* Whether proc (a pg_proc row) is a Citus function that makes tables
 * Citus tables (create_distributed_table(), create_reference_table(),
 * ...): the other nodes must then learn which of them are protected.
 * Reads the row only. */
bool distributes_tables(const FormData_pg_proc *proc);
/* The protection and masks of every protected Citus table, sent to the
 * other nodes (after such a function, in its transaction). */
void sync_tables();

} // namespace consent::citus
