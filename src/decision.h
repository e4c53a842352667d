/*
 * decision.h — whether one cell is revealed: the session side (role,
 * purpose, as_of) combined with the subject side (cache.h).
 */
#pragma once

#include "boundary.h"
#include "cache.h"
#include "taxonomy.h"

#include <optional>
#include <string>
#include <vector>

extern "C" {
#include "access/xact.h"
#include "datatype/timestamp.h"
}

namespace consent {

/* What the session acts as, computed once per statement. */
struct SessionContext {
    bool bypass = false;     /* superuser or BYPASSRLS: sees everything */
    int purpose = -1;        /* -1: none, or not allowed to the acting role */
    TimestampTz as_of = NOW; /* NOW (cache.h): decisions about now */
    uint64_t serial = 0;     /* changes whenever the context is computed again */
    TimestampTz at = 0;      /* the statement start time it was computed at */
};

/* Citus: the context another node claims for the cells of a query it
 * sent (consent._mask_claimed()); the strings live as long as the call site. */
struct ClaimedContext {
    const char *role = nullptr;
    const char *purpose = nullptr; /* nullptr: none */
    const char *as_of = nullptr;   /* nullptr: now; else microseconds */
    uint64_t generation = 0;       /* taxonomy ctx was computed under; 0: not yet */
    uint64_t roles = 0;
    TimestampTz statement = 0;
    Oid role_oid = InvalidOid;
    uint64_t stamp = 0; /* decision_stamp when ctx was last handed out */
    SessionContext ctx;
};
/* The claimed context, checked for the connected user (the claimed role
 * must be one it can act as, the purpose defined here, as_of an
 * auditor's), computed once per statement; the row memo becomes its own. */
const SessionContext &claimed_context(ClaimedContext &claim);
/* The elements of a claim {role, purpose, as_of, strict} (a text[] datum),
 * in the current memory context.  strict(): whether its cells are stored
 * by the sender (its fourth element is "t"). */
struct ClaimElements {
    Datum *elems = nullptr;
    bool *nulls = nullptr;
    int n = 0;
    bool strict() const;
};
ClaimElements claim_elements(Datum array);
/* A claim {role, purpose, as_of, strict} (a text[] datum) as a context to
 * decide in, allocated in cxt; *strict: whether its cells are stored.
 * Errors (22023) for a malformed claim: call with no C++ object alive. */
ClaimedContext *make_claim(Datum array, MemoryContext cxt, bool *strict);
/* The session's context as a claim: {acting role, purpose or nothing,
 * as_of in microseconds or nothing}. */
std::vector<std::optional<std::string>> context_claim();
/* A plan now carries claims of this session's context: a change of
 * purpose, as_of or role drops the cached plans. */
void claims_planned();
/* SET ROLE or SET SESSION AUTHORIZATION ran. */
void role_changed();

/* A new statement starts: settings and other backends' changes apply. */
void statement_start(bool parallel_plan = false);
/* A portal runs again (ExecutorRun): maybe under a new statement time. */
void statement_resumed();

namespace detail {
/* The context of the running statement, valid while context_dirty is false
 * (the fast path of session_context(), called for every masked cell). */
extern SessionContext context;
extern bool context_dirty;
const SessionContext &session_context_slow();
} // namespace detail

inline const SessionContext &session_context()
{
    return detail::context_dirty ? detail::session_context_slow() : detail::context;
}
/* The timestamp decisions are evaluated at. */
inline TimestampTz decision_time(const SessionContext &ctx)
{
    return ctx.as_of != NOW ? ctx.as_of : GetCurrentStatementStartTimestamp();
}

namespace detail {
/* The tagged columns of one row share their subject: the last integer
 * subject asked, its events, and its decisions for every category at once
 * (while the taxonomy has at most 64 categories).  The per-cell fast path
 * reads only stamp, type, value and revealed: stamp is decision_stamp
 * (cache.h) when revealed was decided, so a changed cache, taxonomy or
 * session context (purpose, as_of, statement time) makes it stale. */
struct RowDecisions {
    uint64_t stamp = 0;
    uint64_t cache_epoch = 0; /* ev (and revealed) hold while the cache stays */
    Oid type = InvalidOid;
    Datum value = 0;
    TimestampTz as_of = NOW;
    SubjectEvents ev;
    bool decided = false; /* revealed holds decide_all() for: */
    uint64_t generation = 0;
    int purpose = -1;
    TimestampTz at = 0;
    uint64_t revealed = 0; /* with the purpose's categories without consent */
};
extern RowDecisions row;
/* cell_revealed() past its fast path: another subject, a subject that is
 * not an integer or NULL, another statement, purpose or taxonomy, a column
 * that is not decided by its category. */
bool cell_revealed_slow(const Taxonomy &t, const SessionContext &ctx, const ColumnRule &rule, Datum subject,
                        bool subject_null);
} // namespace detail

/* Whether the cell of a column with this rule, for this subject value, is
 * revealed (t and ctx: taxonomy() and session_context(), fetched once by
 * the caller).  Inline: it runs once per tagged cell, and for the second
 * to last tagged cell of a row it is four compares and a bit test. */
inline bool cell_revealed(const Taxonomy &t, const SessionContext &ctx, const ColumnRule &rule, Datum subject,
                          bool subject_null)
{
    if (ctx.bypass)
        return true;
    const detail::RowDecisions &r = detail::row;
    if (rule.by_category && !subject_null && r.stamp == detail::decision_stamp && r.value == subject &&
        r.type == rule.subject_type)
        return (r.revealed >> rule.category) & 1;
    return detail::cell_revealed_slow(t, ctx, rule, subject, subject_null);
}

/* claimed_context() for the second to last cell of a statement: nothing
 * it depends on changed since it handed ctx out (decision_stamp moves with
 * the taxonomy, the cache and any other context's decisions). */
inline const SessionContext &claimed_context_fast(ClaimedContext &claim)
{
    if (likely(claim.stamp == detail::decision_stamp && claim.statement == GetCurrentStatementStartTimestamp()))
        return claim.ctx;
    return claimed_context(claim);
}

} // namespace consent
