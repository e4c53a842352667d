/*
 * purpose.cpp — the session side of a decision: consent.purpose and
 * consent.as_of (validated when set and again at use), and the per-statement
 * session context.
 *
 * Owns: the GUC check/assign hooks and SessionContext.
 * Must never: trust a value checked under another role: the context is
 * recomputed for the acting role (SET ROLE, SET SESSION AUTHORIZATION) at
 * every statement.
 */
#include "cache.h"
#include "consent.h"
#include "decision.h"

extern "C" {
#include "access/parallel.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

namespace consent {

SessionContext detail::context;
bool detail::context_dirty = true;
using detail::context;
using detail::context_dirty;

namespace {

TimestampTz as_of_value = NOW;

/* Whether the role may replay the past: superuser or consent_auditor. */
bool role_is_auditor(Oid role)
{
    if (superuser_arg(role))
        return true;
    Oid auditor = get_role_oid("consent_auditor", true);
    return OidIsValid(auditor) && has_privs_of_role(role, auditor);
}

/* Checks in SET (and set_config) only: values from configuration files,
 * role defaults and parallel workers are checked at use instead. */
bool checkable(GucSource source)
{
    return source >= PGC_S_INTERACTIVE && source != PGC_S_TEST && IsTransactionState() && !IsParallelWorker();
}

} // namespace

bool check_purpose_guc(char **newval, void **, GucSource source)
{
    if (!*newval || (*newval)[0] == '\0' || !checkable(source))
        return true;
    std::string key(*newval);
    return entry([&] {
        const Taxonomy &t = taxonomy();
        if (!t.installed)
            return true; /* the extension is not in this database */
        auto it = t.purpose_index.find(key);
        if (it == t.purpose_index.end()) {
            GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
            GUC_check_errmsg("unknown purpose \"%s\"", key.c_str());
            GUC_check_errhint("See consent.purposes for the defined purposes.");
            return false;
        }
        if (!role_allowed_purpose(GetOuterUserId(), it->second)) {
            GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
            GUC_check_errmsg("role \"%s\" is not allowed to act under purpose \"%s\"",
                             pg([] { return GetUserNameFromId(GetOuterUserId(), false); }), key.c_str());
            GUC_check_errhint("A superuser can allow it with consent.allow_purpose().");
            return false;
        }
        return true;
    });
}

void assign_purpose_guc(const char *, void *)
{
    context_dirty = true;
}

bool check_as_of_guc(char **newval, void **extra, GucSource source)
{
    if (!*newval || (*newval)[0] == '\0') {
        *extra = nullptr;
        return true;
    }
    std::string text(*newval);
    return entry([&] {
        TimestampTz ts = 0;
        bool ok = true;
        try {
            ts = pg([&] {
                return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text.c_str()),
                                                               ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
            });
        } catch (const PgError &) {
            ok = false;
        }
        if (!ok || TIMESTAMP_NOT_FINITE(ts)) {
            GUC_check_errcode(ERRCODE_INVALID_DATETIME_FORMAT);
            GUC_check_errmsg("invalid value for consent.as_of: \"%s\"", text.c_str());
            GUC_check_errhint("Use a finite timestamp with time zone, e.g. '2026-01-31 12:00+00'.");
            return false;
        }
        if (checkable(source) && !pg([] { return role_is_auditor(GetOuterUserId()); })) {
            GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
            GUC_check_errmsg("permission denied to set consent.as_of");
            GUC_check_errhint("Only superusers and members of consent_auditor may replay past decisions.");
            return false;
        }
        auto *p = static_cast<TimestampTz *>(malloc(sizeof(TimestampTz))); /* GUC extra: freed with free() */
        if (!p)
            throw std::bad_alloc();
        *p = ts;
        *extra = p;
        return true;
    });
}

void assign_as_of_guc(const char *, void *extra)
{
    as_of_value = extra ? *static_cast<TimestampTz *>(extra) : NOW;
    context_dirty = true;
}

namespace {
/* The statement time of the last statement_start() or renewal. */
TimestampTz synced_at = DT_NOBEGIN;
} // namespace

void statement_start()
{
    context_dirty = true;
    cache_sync();
    synced_at = GetCurrentStatementStartTimestamp();
}

void statement_resumed()
{
    /* A portal run again under a new statement (the extended protocol's
     * Execute with a row limit, as drivers fetch): that is a statement
     * too, so decisions are about its time and the changes other sessions
     * committed since apply (test/t/040_protocol.pl).  A run under the
     * statement that started it, or nested in it, costs one compare. */
    TimestampTz now = GetCurrentStatementStartTimestamp();
    if (now == synced_at)
        return;
    context_dirty = true;
    cache_sync();
    synced_at = now;
}

const SessionContext &detail::session_context_slow()
{
    if (!context_dirty)
        return context;
    SessionContext c;
    Oid role = GetOuterUserId();
    /* Who acts and for what changes rarely between statements: the last
     * answer holds while the role, the setting, the taxonomy and the roles'
     * attributes and memberships are the ones it was computed from. */
    static struct {
        bool valid = false;
        Oid role = InvalidOid;
        uint64_t taxonomy = 0, roles = 0;
        std::string setting;
        bool bypass = false;
        int purpose = -1;
    } last;
    const char *setting = purpose_setting ? purpose_setting : "";
    const Taxonomy &t = taxonomy();
    if (last.valid && last.role == role && last.taxonomy == t.generation && last.roles == roles_generation() &&
        last.setting == setting) {
        c.bypass = last.bypass;
        c.purpose = last.purpose;
    } else {
        last.valid = false; /* until computed (a look-up may throw) */
        c.bypass = role_bypasses(role);
        if (setting[0] != '\0') {
            auto it = t.purpose_index.find(setting);
            if (it != t.purpose_index.end() && role_allowed_purpose(role, it->second))
                c.purpose = it->second;
        }
        last.role = role;
        last.taxonomy = t.generation;
        last.roles = roles_generation();
        last.setting = setting;
        last.bypass = c.bypass;
        last.purpose = c.purpose;
        last.valid = true;
    }
    if (as_of_value != NOW) {
        if (!pg([&] { return role_is_auditor(role); }))
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied to use consent.as_of",
                        "The acting role is not a member of consent_auditor.",
                        "RESET consent.as_of, or act as an auditor.");
        c.as_of = as_of_value;
    }
    static uint64_t serial = 0;
    c.serial = ++serial;
    c.at = GetCurrentStatementStartTimestamp();
    context = c;
    context_dirty = false;
    ++detail::decision_stamp; /* decisions remembered under the old context */
    return context;
}

detail::RowDecisions detail::row;

bool detail::cell_revealed_slow(const Taxonomy &t, const SessionContext &ctx, const ColumnRule &rule, Datum subject,
                                bool subject_null)
{
    /* unprotected, or a composite (it may hold several categories: only
     * bypass roles see it) */
    if (!rule.by_category || ctx.purpose < 0)
        return false;
    const IndexSet &without_consent = t.purposes[size_t(ctx.purpose)].without_consent;
    if (without_consent.test(size_t(rule.category)))
        return true;
    if (subject_null)
        return false;
    TimestampTz at = decision_time(ctx);
    char buf[64];
    bool by_value = rule.subject_type == INT8OID || rule.subject_type == INT4OID || rule.subject_type == INT2OID;
    if (!by_value)
        return decide(t, subject_events(subject_key(subject, rule.subject_type, buf), ctx.as_of), rule.category,
                      ctx.purpose, at);
    RowDecisions &r = row;
    r.stamp = 0; /* until r describes one subject again (a look-up may throw) */
    if (r.cache_epoch != cache_epoch_now() || r.type != rule.subject_type || r.value != subject ||
        r.as_of != ctx.as_of) {
        r.decided = false;
        r.ev = lookup_events(subject_key(subject, rule.subject_type, buf), ctx.as_of);
        /* after the look-up, which may load the subject */
        r.cache_epoch = cache_epoch_now();
        r.type = rule.subject_type;
        r.value = subject;
        r.as_of = ctx.as_of;
    }
    if (t.descendants.empty() || size_t(rule.category) >= t.descendants.size())
        return decide(t, r.ev, rule.category, ctx.purpose, at);
    if (!r.decided || r.generation != t.generation || r.purpose != ctx.purpose || r.at != at) {
        r.revealed = decide_all(t, r.ev, ctx.purpose, at) | without_consent.word();
        r.decided = true;
        r.generation = t.generation;
        r.purpose = ctx.purpose;
        r.at = at;
    }
    /* the fast path may answer from r.revealed until anything changes */
    r.stamp = detail::decision_stamp;
    return (r.revealed >> rule.category) & 1;
}

} // namespace consent

using namespace consent;

namespace {
/* The purpose named by argument argno (22023 if unknown), or the session's
 * current purpose when the argument is NULL (-1: none). */
int purpose_arg(FunctionCallInfo fcinfo, int argno, const Taxonomy &t, const SessionContext &ctx)
{
    if (PG_ARGISNULL(argno))
        return ctx.purpose;
    std::string key = pg([&] { return text_to_cstring(PG_GETARG_TEXT_PP(argno)); });
    auto p = t.purpose_index.find(key);
    if (p == t.purpose_index.end())
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown purpose \"" + key + "\"", "",
                    "See consent.purposes for the defined purposes.");
    return p->second;
}
} // namespace

/* consent.granted(subject, category, purpose DEFAULT NULL, at DEFAULT NULL) */
CONSENT_FUNCTION(consent_granted)
{
    return entry([&]() -> Datum {
        if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
            PG_RETURN_NULL();
        Oid subject_type = pg([&] { return get_fn_expr_argtype(fcinfo->flinfo, 0); });
        std::string category = pg([&] { return text_to_cstring(PG_GETARG_TEXT_PP(1)); });
        const Taxonomy &t = taxonomy();
        auto c = t.category_index.find(category);
        if (c == t.category_index.end())
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown category \"" + category + "\"", "",
                        "See consent.categories for the defined categories.");
        const SessionContext &ctx = session_context();
        int purpose = purpose_arg(fcinfo, 2, t, ctx);
        if (purpose < 0)
            PG_RETURN_BOOL(false);
        TimestampTz at = PG_ARGISNULL(3) ? ctx.as_of : PG_GETARG_TIMESTAMPTZ(3);
        if (!PG_ARGISNULL(3) && TIMESTAMP_NOT_FINITE(at))
            throw Error(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE, "at must be a finite time");
        /* replaying the past is for auditors, as with consent.as_of */
        if (!PG_ARGISNULL(3) && !pg([] { return role_is_auditor(GetOuterUserId()); }))
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied to evaluate consent at a past time",
                        "Only superusers and members of consent_auditor may pass \"at\".");
        char buf[64];
        std::string_view key = subject_key(PG_GETARG_DATUM(0), subject_type, buf);
        SubjectEvents ev = subject_events(key, at);
        PG_RETURN_BOOL(decide(t, ev, c->second, purpose, at != NOW ? at : GetCurrentStatementStartTimestamp()));
    });
}

/* Registers a subject changed by the ledger functions. */
CONSENT_FUNCTION(consent_subject_changed)
{
    return entry([&]() -> Datum {
        text *t = PG_GETARG_TEXT_PP(0);
        cache_subject_changed(std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
        PG_RETURN_VOID();
    });
}

/* consent.cache_stats(): this backend's consent cache (subjects, bytes). */
CONSENT_FUNCTION(consent_cache_stats)
{
    return entry([&]() -> Datum {
        TupleDesc desc;
        pg([&] {
            if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
                elog(ERROR, "return type must be a row type");
        });
        Datum values[2] = {Int64GetDatum(int64(cache_subjects())), Int64GetDatum(int64(cache_memory()))};
        bool nulls[2] = {false, false};
        return pg([&] { return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)); });
    });
}

namespace {

/* Whether the events grant anything at all for the purpose at time now:
 * some category the subject named in a grant is revealed for it. */
bool grants_anything(const Taxonomy &t, const SubjectEvents &ev, int purpose, TimestampTz now)
{
    for (uint32_t i = 0; i < ev.count; i++) {
        const Event &e = ev.events[i];
        if (e.until != 0 && t.purposes[size_t(purpose)].ancestors.test(e.purpose) &&
            decide(t, ev, e.category, purpose, now))
            return true;
    }
    return false;
}

/* The subject value of argument 0 as a cache key. */
std::string_view subject_arg(FunctionCallInfo fcinfo, char *buf)
{
    Oid type = pg([&] { return getBaseType(get_fn_expr_argtype(fcinfo->flinfo, 0)); });
    if (!subject_type_supported(type))
        throw Error(ERRCODE_DATATYPE_MISMATCH, "a subject must be bigint, integer, smallint, uuid or text", "",
                    "Subjects are identified by the protected table's subject column.");
    return subject_key(PG_GETARG_DATUM(0), type, buf);
}

} // namespace

/* consent.any_granted(subject, purpose DEFAULT NULL): whether the subject
 * holds an active grant of anything for the purpose (NULL: the current one). */
CONSENT_FUNCTION(consent_any_granted)
{
    return entry([&]() -> Datum {
        if (PG_ARGISNULL(0))
            PG_RETURN_NULL();
        const Taxonomy &t = taxonomy();
        const SessionContext &ctx = session_context();
        int purpose = purpose_arg(fcinfo, 1, t, ctx);
        if (purpose < 0)
            PG_RETURN_BOOL(false);
        char buf[64];
        SubjectEvents ev = subject_events(subject_arg(fcinfo, buf), ctx.as_of);
        PG_RETURN_BOOL(grants_anything(t, ev, purpose, decision_time(ctx)));
    });
}

/*
 * consent._require_check(subject, required_purpose): the row policy that
 * consent.require_consent() installs.  True unless the session acts under
 * the required purpose (or a child of it) and the subject granted nothing
 * for the purpose acted under.
 *
 * It is LEAKPROOF: it raises no error that depends on its arguments (an
 * unknown required purpose, which require_consent() rules out, reads as
 * "not acting under it"; NULL subjects read as "granted nothing") and
 * returns only a boolean; the consent state it reads is not data of the
 * table.  So PostgreSQL may evaluate users' leakproof quals (and index
 * conditions) before it, and plain indexes stay usable.
 */
CONSENT_FUNCTION(consent_require_check)
{
    return entry([&]() -> Datum {
        if (PG_ARGISNULL(1))
            PG_RETURN_BOOL(true);
        const SessionContext &ctx = session_context();
        if (ctx.bypass)
            PG_RETURN_BOOL(true);
        const Taxonomy &t = taxonomy();
        text *req = PG_GETARG_TEXT_PP(1);
        auto p = t.purpose_index.find(std::string(VARDATA_ANY(req), VARSIZE_ANY_EXHDR(req)));
        if (p == t.purpose_index.end())
            PG_RETURN_BOOL(true);
        /* a session under no purpose, or one not allowed to its role, sees
         * every row with every tagged cell masked */
        if (ctx.purpose < 0 || !t.purposes[size_t(ctx.purpose)].ancestors.test(size_t(p->second)))
            PG_RETURN_BOOL(true);
        if (PG_ARGISNULL(0))
            PG_RETURN_BOOL(false);
        char buf[64];
        SubjectEvents ev = subject_events(subject_arg(fcinfo, buf), ctx.as_of);
        PG_RETURN_BOOL(grants_anything(t, ev, ctx.purpose, decision_time(ctx)));
    });
}
