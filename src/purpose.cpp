/*
 * purpose.cpp — the session side of a decision: consent.purpose and
 * consent.as_of (validated when set and again at use), how long a purpose
 * lasts (consent.purpose_scope), and the per-statement session context.
 *
 * Owns: the GUC check/assign hooks, the transaction scope of a purpose (a
 * check of SET statements and a transaction-end callback) and
 * SessionContext.
 * Must never: trust a value checked under another role: the context is
 * recomputed for the acting role (SET ROLE, SET SESSION AUTHORIZATION) at
 * every statement; under the transaction scope, let a purpose reach a
 * transaction that did not set it.
 */
#include "audit.h"
#include "bypass.h"
#include "cache.h"
#include "shared_state.h"
#include "compat.h"
#include "consent.h"
#include "decision.h"

extern "C" {
#include "commands/dbcommands.h"
#include "access/parallel.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/timestamp.h"
}

namespace consent {

SessionContext detail::context;
bool detail::context_dirty = true;
using detail::context;
using detail::context_dirty;

namespace {

TimestampTz as_of_value = NOW;
/* Serial numbers of computed contexts, and the one the row memo
 * (detail::row) was decided in. */
uint64_t context_serial = 0;
uint64_t memo_owner = 0;
/* A parallel worker's consent.as_of, read at its first decision. */
constexpr TimestampTz AS_OF_LATER = DT_NOEND;

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

namespace {

/* consent.purpose_scope */
enum PurposeScope { SCOPE_SESSION, SCOPE_TRANSACTION };
const struct config_enum_entry purpose_scope_options[] = {
    {"session", SCOPE_SESSION, false}, {"transaction", SCOPE_TRANSACTION, false}, {nullptr, 0, false}};
int purpose_scope = SCOPE_SESSION;

/* A statement of the running transaction set a purpose (SET, SET LOCAL,
 * set_config, a function's SET clause): a value SET LOCAL hides may come
 * back at COMMIT. */
bool purpose_set_in_xact = false;
/* The running transaction's first statement under the transaction scope
 * has run (scope_statement_start()). */
bool scope_checked = false;
/* The running top-level transaction is a transaction block (explicit, or a
 * query string of several statements), as its last statement at nesting
 * level 1 saw it.  In a function's subtransaction IsTransactionBlock()
 * cannot tell: PL/pgSQL's exception blocks open subtransactions outside
 * blocks too. */
bool top_level_block = false;

} // namespace

namespace {
/* Validates a purpose being set (true: it may be set). */
bool purpose_valid(char **newval, GucSource source)
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
} // namespace

bool check_purpose_guc(char **newval, void **, GucSource source)
{
    if (!purpose_valid(newval, source))
        return false;
    /* SET, SET LOCAL, set_config() or a function's SET clause (not a
     * parallel worker copying its leader's settings) */
    if (*newval && (*newval)[0] != '\0' && source >= PGC_S_INTERACTIVE && source != PGC_S_TEST && !IsParallelWorker())
        purpose_set_in_xact = true;
    return true;
}

/* Set once a plan carries claims of this session's context (Citus): such
 * a plan is right for the context it was made under only. */
bool claims_in_plans = false;

void drop_claiming_plans()
{
    if (claims_in_plans)
        ResetPlanCache();
}

void assign_purpose_guc(const char *, void *)
{
    context_dirty = true;
    drop_claiming_plans();
}

bool check_as_of_guc(char **newval, void **extra, GucSource source)
{
    if (!*newval || (*newval)[0] == '\0') {
        *extra = nullptr;
        return true;
    }
    if (IsParallelWorker()) {
        /* the leader's value, restored maybe before DateStyle and TimeZone
         * (it may not parse yet): read at the first decision */
        auto *p = static_cast<TimestampTz *>(guc_extra_alloc(sizeof(TimestampTz)));
        if (!p)
            return false;
        *p = AS_OF_LATER;
        *extra = p;
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
        auto *p = static_cast<TimestampTz *>(guc_extra_alloc(sizeof(TimestampTz))); /* freed by PostgreSQL */
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
    drop_claiming_plans();
}

/*
 * consent.purpose_scope = transaction: a purpose never outlives the
 * transaction that set it.  PostgreSQL's own GUC stack does the work once
 * every transaction starts with an empty purpose:
 *  - at COMMIT (and PREPARE TRANSACTION) the callback below sets it to ''
 *    for the session, overriding whatever SET, SET LOCAL or set_config left;
 *    ROLLBACK restores the value the transaction began with;
 *  - the first statement of every transaction clears a purpose the
 *    transaction did not set itself (one a session set before the scope
 *    changed, or a rollback restored, or a role, database or startup-packet
 *    default), before the statement runs;
 *  - role, database, startup and configuration file values never become the
 *    value RESET and DISCARD ALL return to (neutralize_defaults());
 *  - SET consent.purpose for the session outside a transaction block fails
 *    (check_purpose_scope(), called by the ProcessUtility hook): its author expects it to last.
 */
namespace {

/* This backend's reset value of consent.purpose is '' for good. */
bool defaults_neutralized = false;

/* Sets consent.purpose to '' as SET does.  Inside a transaction it is
 * stacked: kept at COMMIT, undone by ROLLBACK. */
void clear_purpose()
{
    pg([] {
        (void)set_config_option("consent.purpose", "", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
    });
}

/* Makes '' the value RESET, SET ... TO DEFAULT and DISCARD ALL return to.
 * Role, database, startup-packet and configuration file values all come
 * from sources below PGC_S_OVERRIDE: a value from that source takes their
 * place as the reset value (and as the value itself when it came from one
 * of them), and they can no longer replace it, not even at a reload. */
void neutralize_defaults()
{
    if (defaults_neutralized)
        return;
    pg([] {
        (void)set_config_option("consent.purpose", "", PGC_SUSET, PGC_S_OVERRIDE, GUC_ACTION_SET, true, 0, false);
    });
    defaults_neutralized = true;
}

/* The first statement of a transaction under the transaction scope: a
 * purpose the transaction has not set itself (before its first statement
 * only PL/pgSQL's simple expressions after a COMMIT or ROLLBACK in a
 * procedure can) is from before it and is cleared.  (When the scope changes
 * while a transaction block is open, this drops a purpose an earlier
 * statement of the block set: fail closed.) */
void scope_statement_start()
{
    if (GetCurrentTransactionNestLevel() == 1)
        top_level_block = IsTransactionBlock();
    if (scope_checked || IsParallelWorker() || !IsTransactionState() || IsInParallelMode())
        return;
    neutralize_defaults();
    if (!purpose_set_in_xact && purpose_setting && purpose_setting[0] != '\0')
        clear_purpose();
    scope_checked = true;
}

/* At COMMIT and PREPARE TRANSACTION the purpose goes back to ''; every
 * transaction end forgets what the transaction did. */
void scope_xact_callback(XactEvent event, void *)
{
    switch (event) {
    case XACT_EVENT_PRE_COMMIT:
    case XACT_EVENT_PRE_PREPARE:
        /* not in a parallel worker: it commits the transaction in which it
         * restores its leader's settings, which would clear the purpose it
         * restored */
        if (purpose_scope == SCOPE_TRANSACTION && !IsInParallelMode() && !IsParallelWorker() &&
            (purpose_set_in_xact || !defaults_neutralized || (purpose_setting && purpose_setting[0] != '\0')))
            entry([] {
                neutralize_defaults();
                clear_purpose();
            });
        break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PREPARE:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_PARALLEL_ABORT:
        purpose_set_in_xact = false;
        scope_checked = false;
        top_level_block = false;
        /* a procedure's next transaction decides under no purpose from this
         * one until its first statement (session_context_slow()) */
        if (purpose_scope == SCOPE_TRANSACTION)
            context_dirty = true;
        break;
    default:
        break;
    }
}

/* Refuses SET [SESSION] consent.purpose = '<purpose>' outside a transaction
 * block under the transaction scope, also in a function or DO block.  SET
 * LOCAL, RESET, SET ... TO DEFAULT and SET to '' stay allowed, and so does
 * SET inside a transaction block (it ends with the block). */
void refuse_session_purpose(VariableSetStmt *stmt, ProcessUtilityContext context)
{
    if (stmt->kind != VAR_SET_VALUE || stmt->is_local || !stmt->name ||
        pg_strcasecmp(stmt->name, "consent.purpose") != 0)
        return;
    /* a client's statement in a subtransaction is after a SAVEPOINT, which
     * only a transaction block has */
    bool direct = context == PROCESS_UTILITY_TOPLEVEL || GetCurrentTransactionNestLevel() == 1;
    if (direct ? IsTransactionBlock() : top_level_block)
        return;
    const char *value = pg([&] { return ExtractSetVariableArgs(stmt); });
    if (!value || value[0] == '\0')
        return;
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "cannot set consent.purpose for the session when consent.purpose_scope is \"transaction\"",
                "A purpose lasts only for the transaction that sets it.",
                "Use SET LOCAL consent.purpose inside a transaction block (BEGIN; SET LOCAL consent.purpose = ...; "
                "COMMIT).");
}

} // namespace

/* Called by the ProcessUtility hook (utility.cpp) before a utility
 * statement runs: under transaction scope, refuses a session-level SET of
 * the purpose. */
void check_purpose_scope(Node *node, ProcessUtilityContext context)
{
    if (purpose_scope == SCOPE_TRANSACTION && IsA(node, VariableSetStmt))
        refuse_session_purpose((VariableSetStmt *)node, context);
}

void define_purpose_scope()
{
    DefineCustomEnumVariable(
        "consent.purpose_scope", "How long a purpose set with consent.purpose lasts.",
        "session: until the session changes it. transaction: only until the end of the transaction that set it, "
        "and SET consent.purpose outside a transaction block fails (for transaction-pooling proxies).",
        &purpose_scope, SCOPE_SESSION, purpose_scope_options, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    RegisterXactCallback(scope_xact_callback, nullptr);
}

namespace {
/* The statement time of the last statement_start() or renewal. */
TimestampTz synced_at = DT_NOBEGIN;
} // namespace

void statement_start(bool parallel_plan)
{
    if (purpose_scope == SCOPE_TRANSACTION)
        scope_statement_start();
    context_dirty = true;
    cache_sync(parallel_plan);
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

namespace {

/* The purpose setting in effect for this statement ("" for none).  Under
 * the transaction scope, before the transaction's first statement has
 * cleared a purpose from before it (a procedure's simple expressions after
 * a ROLLBACK that restored one), that purpose decides nothing. */
const char *purpose_in_effect()
{
    const char *setting = purpose_setting ? purpose_setting : "";
    if (purpose_scope == SCOPE_TRANSACTION && !scope_checked && !purpose_set_in_xact && !IsParallelWorker())
        setting = "";
    return setting;
}

/* consent.as_of as a time (NOW: none).  A parallel worker reads its
 * leader's value at its first use, under the leader's DateStyle and
 * TimeZone, restored by then. */
TimestampTz as_of_in_effect()
{
    if (as_of_value == AS_OF_LATER) {
        std::string text(as_of_setting ? as_of_setting : "");
        as_of_value = pg([&] {
            return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text.c_str()),
                                                           ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
        });
    }
    return as_of_value;
}

} // namespace

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
    const char *setting = purpose_in_effect();
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
    if (as_of_in_effect() != NOW) {
        if (!pg([&] { return role_is_auditor(role); }))
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied to use consent.as_of",
                        "The acting role is not a member of consent_auditor.",
                        "RESET consent.as_of, or act as an auditor.");
        c.as_of = as_of_value;
    }
    c.serial = ++context_serial;
    c.at = GetCurrentStatementStartTimestamp();
    context = c;
    context_dirty = false;
    ++detail::decision_stamp; /* decisions remembered under the old context */
    memo_owner = c.serial;
    detail::audit_role = InvalidOid;
    return context;
}

std::vector<std::optional<std::string>> context_claim()
{
    std::vector<std::optional<std::string>> claim;
    claim.push_back(std::string(pg([] { return GetUserNameFromId(GetOuterUserId(), false); })));
    const char *purpose = purpose_in_effect();
    claim.push_back(purpose[0] ? std::optional<std::string>(purpose) : std::nullopt);
    TimestampTz as_of = as_of_in_effect();
    claim.push_back(as_of != NOW ? std::optional<std::string>(std::to_string(int64_t(as_of))) : std::nullopt);
    return claim;
}

ClaimElements claim_elements(Datum array)
{
    ClaimElements e;
    deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT, &e.elems, &e.nulls, &e.n);
    return e;
}

bool ClaimElements::strict() const
{
    return n >= 4 && !nulls[3] && strcmp(TextDatumGetCString(elems[3]), "t") == 0;
}

ClaimedContext *make_claim(Datum array, MemoryContext cxt, bool *strict)
{
    ClaimElements e = claim_elements(array);
    if (e.n != 4 || e.nulls[0] || e.nulls[3])
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("malformed consent claim")));
    MemoryContext old = MemoryContextSwitchTo(cxt);
    auto *claim = new (palloc0(sizeof(ClaimedContext))) ClaimedContext();
    claim->role = TextDatumGetCString(e.elems[0]);
    claim->purpose = e.nulls[1] ? nullptr : TextDatumGetCString(e.elems[1]);
    claim->as_of = e.nulls[2] ? nullptr : TextDatumGetCString(e.elems[2]);
    *strict = e.strict();
    MemoryContextSwitchTo(old);
    return claim;
}

void claims_planned()
{
    claims_in_plans = true;
}

void role_changed()
{
    drop_claiming_plans();
    unmasked_roles_changed(); /* plans made for a role that sees every value */
}

const SessionContext &claimed_context(ClaimedContext &claim)
{
    const Taxonomy &t = taxonomy();
    TimestampTz now = GetCurrentStatementStartTimestamp();
    /* The call sites of one statement carry the same claim: the first
     * computes the context, the others share it (and its serial: one row
     * memo for the row's cells, as under the session's context). */
    static struct {
        bool valid = false;
        std::string role, purpose, as_of;
        Oid user = InvalidOid;
        TimestampTz statement = 0;
        uint64_t generation = 0, roles = 0;
        Oid role_oid = InvalidOid;
        SessionContext ctx;
    } shared;
    if (claim.generation != t.generation || claim.statement != now || claim.roles != roles_generation()) {
        Oid user = GetUserId();
        if (shared.valid && shared.statement == now && shared.generation == t.generation &&
            shared.roles == roles_generation() && shared.user == user && shared.role == claim.role &&
            shared.purpose == (claim.purpose ? claim.purpose : "") && shared.as_of == (claim.as_of ? claim.as_of : "") &&
            (claim.purpose != nullptr) == !shared.purpose.empty() && (claim.as_of != nullptr) == !shared.as_of.empty()) {
            claim.ctx = shared.ctx;
            claim.role_oid = shared.role_oid;
            claim.statement = now;
            claim.roles = shared.roles;
            claim.generation = shared.generation;
        }
    }
    if (claim.generation != t.generation || claim.statement != now || claim.roles != roles_generation()) {
        claim.generation = 0; /* until computed (a check may throw) */
        SessionContext c;
        std::string role_name(claim.role);
        Oid role = pg([&] { return get_role_oid(role_name.c_str(), true); });
        if (!OidIsValid(role))
            throw Error(ERRCODE_UNDEFINED_OBJECT, "role \"" + role_name + "\" of a consent claim does not exist on this node",
                        "The node that sent this query acts as that role.",
                        "Roles must exist on every node of the cluster (Citus propagates CREATE ROLE).");
        if (!pg([&] { return is_member_of_role(GetUserId(), role); }))
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        "permission denied to decide consent as role \"" + role_name + "\"",
                        "A query may claim only a role the connected user can act as itself (SET ROLE).");
        c.bypass = role_bypasses(role);
        if (claim.purpose) {
            auto it = t.purpose_index.find(claim.purpose);
            if (it == t.purpose_index.end())
                throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                            "purpose \"" + std::string(claim.purpose) + "\" of a consent claim is not defined on this node",
                            "The nodes' consent catalogs differ.", "Define the purpose on the coordinator.");
            if (role_allowed_purpose(role, it->second))
                c.purpose = it->second;
        }
        if (claim.as_of) {
            if (!pg([&] { return role_is_auditor(role); }))
                throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied to use consent.as_of",
                            "The claimed role is not a member of consent_auditor.");
            c.as_of = TimestampTz(std::stoll(claim.as_of));
        }
        c.serial = ++context_serial;
        c.at = now;
        claim.role_oid = role;
        claim.ctx = c;
        claim.statement = now;
        claim.roles = roles_generation();
        claim.generation = t.generation;
        shared.valid = false; /* until every field is set (a string copy may throw) */
        shared.role = claim.role;
        shared.purpose = claim.purpose ? claim.purpose : "";
        shared.as_of = claim.as_of ? claim.as_of : "";
        shared.user = GetUserId();
        shared.statement = now;
        shared.generation = t.generation;
        shared.roles = claim.roles;
        shared.role_oid = role;
        shared.ctx = c;
        shared.valid = true;
    }
    if (memo_owner != claim.ctx.serial) {
        /* the row memo was decided in another context; and the session's
         * context must take it back when its cells come next */
        ++detail::decision_stamp;
        memo_owner = claim.ctx.serial;
        context_dirty = true;
        detail::audit_role = claim.role_oid;
    }
    claim.stamp = detail::decision_stamp;
    return claim.ctx;
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

/* consent.shared_state(): the server's shared consent state. */
CONSENT_FUNCTION(consent_shared_state)
{
    return entry([&]() -> Datum {
        TupleDesc desc;
        pg([&] {
            if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
                elog(ERROR, "return type must be a row type");
        });
        shared::Stats st = shared::stats();
        char *dbname = OidIsValid(st.database) ? pg([&] { return get_database_name(st.database); }) : nullptr;
        Datum values[7] = {pg([&] { return CStringGetTextDatum(st.status); }),
                           dbname ? pg([&] { return DirectFunctionCall1(namein, CStringGetDatum(dbname)); }) : 0,
                           Int64GetDatum(int64(st.subjects)),
                           Int64GetDatum(int64(st.used_bytes)),
                           Int64GetDatum(int64(st.capacity_bytes)),
                           Int64GetDatum(int64(st.builds)),
                           Int64GetDatum(int64(st.build_ms))};
        bool nulls[7] = {false, dbname == nullptr, false, false, false, false, false};
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
