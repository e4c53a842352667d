/*
 * consent.h — what the modules of pg_consent share: settings, hook
 * installers and the entry points between modules.
 */
#pragma once

#include "boundary.h"

extern "C" {
#include "tcop/utility.h"
#include "utils/guc.h"
}

namespace consent {

/* settings (pg_consent.cpp) */
extern bool loaded_via_preload;
extern char *purpose_setting;
extern char *as_of_setting;
extern char *pseudonym_key;
extern int cache_size_mb;
void define_gucs();
bool check_pseudonym_key(char **newval, void **extra, GucSource source);

/* purpose.cpp */
bool check_purpose_guc(char **newval, void **extra, GucSource source);
void assign_purpose_guc(const char *newval, void *extra);
bool check_as_of_guc(char **newval, void **extra, GucSource source);
void assign_as_of_guc(const char *newval, void *extra);
/* consent.purpose_scope, with the utility hook and transaction callback
 * that enforce it */
void define_purpose_scope();
/* ProcessUtility (utility.cpp): a session-level SET consent.purpose under
 * transaction scope fails */
void check_purpose_scope(Node *node, ProcessUtilityContext context);

/* cache.cpp: shared memory for cross-backend invalidation */
void install_shmem_hooks();

/* rewrite.cpp / utility.cpp: the planner and utility hooks */
void install_query_hooks();
/* utility.cpp: planner statistics of tagged columns are never kept */
void hide_column_statistics(Oid relid);
bool relation_has_tagged_column(Oid relid);

/* audit.cpp: the disclosure log and counters (audit_cell() is in audit.h) */
void define_audit_gucs();
void install_audit_hooks();

} // namespace consent
