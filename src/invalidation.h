/*
 * invalidation.h — what each part of pg_consent does when PostgreSQL says a
 * relation or a catalog row changed.  Called from the one relcache callback
 * and the syscache callbacks of invalidation.cpp: they only mark state
 * stale, never throw, never touch the catalog.
 */
#pragma once

extern "C" {
#include "postgres.h"
}

#include <cstdint>

namespace consent {

/* Registers the callbacks once per process (idempotent). */
void register_invalidation_callbacks();

/* relid: the relation that changed; InvalidOid: any may have. */
void taxonomy_relation_changed(Oid relid) noexcept; /* taxonomy.cpp */
void audit_relation_changed(Oid relid) noexcept;    /* audit.cpp */
void cache_relation_changed(Oid relid) noexcept;    /* cache.cpp (hot standby replay) */

void taxonomy_roles_changed() noexcept;             /* taxonomy.cpp: pg_authid, pg_auth_members */
void audit_names_changed() noexcept;                /* audit.cpp: pg_authid, pg_namespace */
void rewrite_types_changed() noexcept;              /* rewrite.cpp: pg_type */
void rewrite_procs_changed() noexcept;              /* rewrite.cpp: pg_proc */
void mask_procs_changed(uint32 hashvalue) noexcept; /* mask.cpp: pg_proc */

} // namespace consent
