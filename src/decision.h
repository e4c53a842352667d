/*
 * decision.h — whether one cell is revealed: the session side (role,
 * purpose, as_of) combined with the subject side (cache.h).
 */
#pragma once

#include "boundary.h"
#include "cache.h"
#include "taxonomy.h"

extern "C" {
#include "datatype/timestamp.h"
}

namespace consent {

/* What the session acts as, computed once per statement. */
struct SessionContext {
    bool bypass = false;     /* superuser or BYPASSRLS: sees everything */
    int purpose = -1;        /* -1: none, or not allowed to the acting role */
    TimestampTz as_of = NOW; /* NOW (cache.h): decisions about now */
};

/* A new statement starts: settings and other backends' changes apply. */
void statement_start();

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
TimestampTz decision_time(const SessionContext &ctx);
/* Whether the cell of a column with this rule, for this subject value, is
 * revealed (t and ctx: taxonomy() and session_context(), fetched once by
 * the caller). */
bool cell_revealed(const Taxonomy &t, const SessionContext &ctx, const ColumnRule &rule, Datum subject,
                   bool subject_null);

} // namespace consent
