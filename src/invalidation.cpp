/*
 * invalidation.cpp — the one relcache callback and the syscache callbacks
 * of pg_consent, registered once per process, dispatching to the parts that
 * keep state derived from the catalog.
 *
 * A backend has 10 relcache callback slots for PostgreSQL and every library
 * together (logical replication, pgoutput and other extensions take some):
 * pg_consent takes one.  Syscache callbacks: one per catalog it follows.
 *
 * Owns: the registration and the dispatch.
 * Must never: register twice in one process (the postmaster registers at
 * _PG_init and its children inherit the registration; a library loaded
 * without the preload registers at its first use), or do more in a callback
 * than mark state stale.
 */
#include "invalidation.h"
#include "bypass.h"

extern "C" {
#include "utils/inval.h"
#include "utils/syscache.h"
}

namespace consent {

namespace {

bool registered = false;

void relation_changed(Datum, Oid relid)
{
    taxonomy_relation_changed(relid);
    audit_relation_changed(relid);
    cache_relation_changed(relid);
}

void role_changed(Datum, int cacheid, uint32)
{
    taxonomy_roles_changed();
    if (cacheid == AUTHOID) {
        audit_names_changed();    /* role names in the audit's counters */
        unmasked_roles_changed(); /* superuser or BYPASSRLS may have changed */
    }
}

void namespace_changed(Datum, int, uint32)
{
    audit_names_changed();
}

void type_changed(Datum, int, uint32)
{
    rewrite_types_changed();
}

void proc_changed(Datum, int, uint32 hashvalue)
{
    rewrite_procs_changed();
    mask_procs_changed(hashvalue);
}

} // namespace

void register_invalidation_callbacks()
{
    if (registered)
        return;
    registered = true;
    CacheRegisterRelcacheCallback(relation_changed, (Datum)0);
    CacheRegisterSyscacheCallback(AUTHOID, role_changed, (Datum)0);
    CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, role_changed, (Datum)0);
    CacheRegisterSyscacheCallback(NAMESPACEOID, namespace_changed, (Datum)0);
    CacheRegisterSyscacheCallback(TYPEOID, type_changed, (Datum)0);
    CacheRegisterSyscacheCallback(PROCOID, proc_changed, (Datum)0);
}

} // namespace consent
