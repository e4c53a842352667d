/*
 * cursor.h — cursors read in parts whose rows were computed ahead.
 *
 * A portal run in parts (FETCH, the extended protocol's Execute with a row
 * limit, PL/pgSQL FOR loops, WITH HOLD cursors) decides each cell when its
 * row is computed.  Where the plan computes rows ahead of the fetch that
 * returns them (a sort, hash, materialization, aggregate, CTE, sub-plan,
 * function scan, or a WITH HOLD cursor at commit), a later fetch would
 * return decisions taken before a withdrawal.  The guard remembers which
 * subjects such a portal decided, and a later run of it fails when any of
 * them changed, or the session context or the taxonomy changed, or a grant
 * it relied on expired: it never returns a withdrawn value.
 *
 * Owns: the per-portal record of decided subjects and the check at resume.
 * Must never: slow down a portal run to completion or a streaming plan
 * (they are not tracked), or miss a decision taken while a tracked portal
 * runs (nested runs record into every tracked portal running).
 */
#pragma once

#include "boundary.h"
#include "cache.h"

extern "C" {
#include "executor/execdesc.h"
#include "nodes/parsenodes.h"
}

namespace consent {

struct CursorTracker;

namespace detail {
/* Number of tracked portals running right now (0: nothing to record). */
extern int cursor_collecting;
void cursor_record(uint64_t subject_hash, const SubjectEvents *ev);
} // namespace detail

/* A subject's decisions were computed: remember it for the tracked portals
 * running (ev: its events, to learn when a grant expires; may be null). */
inline void cursor_record(std::string_view key, const SubjectEvents *ev)
{
    if (unlikely(detail::cursor_collecting > 0))
        detail::cursor_record(subject_hash(key), ev);
}

/* Before a portal's executor runs: fails (40001 / 55000) when the rows it
 * computed ahead may no longer be shown; starts tracking a portal whose
 * plan computes ahead.  Returns the tracker now recording (or nullptr). */
CursorTracker *cursor_run_begin(QueryDesc *desc, uint64 count);
/* After the run (also on error): stop recording into the tracker. */
void cursor_run_end(CursorTracker *tracker) noexcept;
/* FETCH from a WITH HOLD cursor after its transaction: read from its store. */
void cursor_fetch_check(const FetchStmt *stmt);
/* The cache learnt that a subject changed, or that every subject may have. */
void cursor_subject_changed(uint64_t subject_hash) noexcept;
void cursor_everything_changed() noexcept;

} // namespace consent
