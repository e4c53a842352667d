/*
 * pg_consent.cpp — module entry: _PG_init, the GUCs, hook installation and
 * the small SQL functions about the module itself.
 *
 * Owns: registering GUCs and hooks once per process, in the right order.
 * Must never: do work in _PG_init that needs a transaction or catalog access.
 */
#include "boundary.h"
#include "consent.h"
#include "maskscan.h"
#include "parallel.h"
#include "shared_state.h"

extern "C" {
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
PG_MODULE_MAGIC;
PGDLLEXPORT void _PG_init(void);
}

#include <stdexcept>

namespace consent {

bool loaded_via_preload = false;
char *purpose_setting = nullptr;
char *as_of_setting = nullptr;
char *pseudonym_key = nullptr;
int cache_size_mb = 64;

} // namespace consent

using namespace consent;

extern "C" void _PG_init(void)
{
    /* Loaded later than postmaster start (e.g. by CREATE EXTENSION without
     * the preload): install nothing; _assert_preloaded and
     * library_active() report the problem. */
    if (!process_shared_preload_libraries_in_progress)
        return;
    entry([] {
        loaded_via_preload = true;
        define_gucs();
        MarkGUCPrefixReserved("consent");
        install_shmem_hooks();
        install_audit_hooks();
        install_query_hooks();
        register_mask_scan();
        register_parallel_context();
    });
}

/* The pseudonym key may come from the server configuration or a
 * superuser's SET, never from places other roles can read: per-role or
 * per-database settings (pg_db_role_setting) or a function's SET clause
 * (pg_proc.proconfig), both validated with PGC_S_TEST. */
bool consent::check_pseudonym_key(char **newval, void **, GucSource source)
{
    if (!*newval || (*newval)[0] == '\0')
        return true;
    if (source == PGC_S_TEST || source == PGC_S_DATABASE || source == PGC_S_USER || source == PGC_S_DATABASE_USER) {
        GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
        GUC_check_errmsg("consent.pseudonym_key cannot be stored in role, database or function settings");
        GUC_check_errdetail("Those settings are readable by every role.");
        GUC_check_errhint("Set it in postgresql.conf (readable by superusers only) or with SET as a superuser.");
        return false;
    }
    return true;
}

/* Registers every consent.* setting. */
void consent::define_gucs()
{
    define_audit_gucs(); /* consent.audit, consent.audit_log_level, consent.track_disclosures, consent.disclosures_max
                          */
    DefineCustomStringVariable("consent.purpose", "Processing purpose this session acts under.",
                               "Empty means no purpose: every consent-tagged cell is masked.", &purpose_setting, "",
                               PGC_USERSET, 0, check_purpose_guc, assign_purpose_guc, nullptr);
    define_purpose_scope(); /* consent.purpose_scope, and what enforces it (purpose.cpp) */
    DefineCustomStringVariable("consent.as_of", "Evaluates every consent decision as of this time (auditors only).",
                               "Empty means now. Only superusers and members of consent_auditor may set it.",
                               &as_of_setting, "", PGC_USERSET, 0, check_as_of_guc, assign_as_of_guc, nullptr);
    DefineCustomStringVariable(
        "consent.pseudonym_key", "Key of the hash mask.", "Superuser only; never shown to other roles.", &pseudonym_key,
        "", PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, check_pseudonym_key, nullptr, nullptr);
    DefineCustomIntVariable("consent.cache_size", "Memory bound of the per-backend consent cache.",
                            "When the cached consent state would grow past it, the cache keeps only the "
                            "subjects used most recently.",
                            &cache_size_mb, 64, 1, 4096, PGC_SUSET, GUC_UNIT_MB, nullptr, nullptr, nullptr);
    shared::define_guc(); /* consent.shared_size */
    DefineCustomBoolVariable("consent.mask_scan", "Masks the rows of simple scans in one ConsentMask plan node.",
                             "Off: every tagged cell is masked by its own consent._mask call. What a query "
                             "returns is the same either way; this setting only changes how fast.",
                             &mask_scan_enabled, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
}

/* Fails with a hint when the library was not preloaded (install script). */
CONSENT_FUNCTION(consent_assert_preloaded)
{
    /* plain C: no C++ object is alive here */
    if (!loaded_via_preload)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("pg_consent must be loaded via shared_preload_libraries"),
                        errhint("Add pg_consent to shared_preload_libraries in postgresql.conf, e.g. "
                                "shared_preload_libraries = 'pg_consent', and restart the server.")));
    PG_RETURN_VOID();
}

/* Row policy of every protected table: errors (fails closed) when the
 * library is not active in this backend. */
CONSENT_FUNCTION(consent_library_active)
{
    if (!loaded_via_preload)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("pg_consent is not active in this backend: protected tables cannot be read"),
                        errhint("Add pg_consent to shared_preload_libraries and restart the server.")));
    PG_RETURN_BOOL(true);
}

CONSENT_FUNCTION(consent_version)
{
    PG_RETURN_TEXT_P(cstring_to_text(CONSENT_VERSION));
}

/* The role set by SET ROLE (or the session user), unaffected by SECURITY
 * DEFINER: the role an application acts as. */
CONSENT_FUNCTION(consent_acting_role)
{
    Oid role = GetOuterUserId();
    char *name = GetUserNameFromId(role, false);
    PG_RETURN_DATUM(DirectFunctionCall1(namein, CStringGetDatum(name)));
}

/* Test-only: throws a C++ exception through the boundary. */
CONSENT_FUNCTION(consent_throw_cpp)
{
    return entry([&]() -> Datum {
        std::string kind = pg([&] { return text_to_cstring(PG_GETARG_TEXT_PP(0)); });
        std::string owned = "resources owned while throwing";
        if (kind == "error")
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "test error raised in C++",
                        "The C++ frames unwound before this error was reported.");
        if (kind == "bad_alloc")
            throw std::bad_alloc();
        if (kind == "runtime")
            throw std::runtime_error("a std::runtime_error");
        if (kind == "pg")
            pg([] { (void)DirectFunctionCall1(int4in, CStringGetDatum("not a number")); });
        if (kind == "none")
            return (Datum)0;
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown kind \"" + kind + "\"", "",
                    "Use error, bad_alloc, runtime, pg or none.");
    });
}
