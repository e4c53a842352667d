/*
 * boundary.cpp — raising captured failures as PostgreSQL errors.
 * See boundary.h for the rules; this file holds the non-template parts.
 */
#include "boundary.h"

extern "C" {
#include "access/xact.h"
}

namespace consent::detail {

/* Copy the current PostgreSQL error out of ErrorContext and clear it. */
ErrorData *capture_pg_error(MemoryContext cxt)
{
    /* The copy must outlive the context the error was raised in (an SPI
     * connection, say, closed while the C++ exception unwinds): keep it in
     * the transaction's context; the caller's context is restored. */
    MemoryContextSwitchTo(IsTransactionState() ? TopTransactionContext : TopMemoryContext);
    ErrorData *edata = CopyErrorData();
    FlushErrorState();
    MemoryContextSwitchTo(cxt);
    return edata;
}

ErrorData *run_pg(void (*fn)(void *), void *arg)
{
    MemoryContext cxt = CurrentMemoryContext;
    ErrorData *volatile caught = nullptr;
    PG_TRY();
    {
        fn(arg);
    }
    PG_CATCH();
    {
        caught = capture_pg_error(cxt);
    }
    PG_END_TRY();
    return caught;
}

void raise_captured(ErrorData *pg, int sqlstate, const char *msg, const char *detail, const char *hint)
{
    if (pg)
        ReThrowError(pg);
    ereport(ERROR, (errcode(sqlstate), errmsg_internal("%s", msg), detail ? errdetail_internal("%s", detail) : 0,
                    hint ? errhint("%s", hint) : 0));
    pg_unreachable();
}

} // namespace consent::detail
