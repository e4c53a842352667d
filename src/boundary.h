/*
 * boundary.h — the one place where C++ meets PostgreSQL error handling.
 *
 * Owns: the rules for crossing between the two error models.
 *  - entry(): every SQL-callable function, hook and _PG_init runs its C++
 *    body through it.  A C++ exception becomes ereport(ERROR) with a real
 *    SQLSTATE, raised only after every C++ destructor of the body has run.
 *  - pg(): C++ code that owns resources (std::string, std::vector, ICU
 *    objects) calls PostgreSQL functions that may ereport(ERROR) through it;
 *    the longjmp is caught right there and turned into a C++ exception
 *    (PgError) so destructors run on the way out.
 * Must never: let a C++ exception reach PostgreSQL, or let a longjmp skip a
 * C++ frame that owns resources.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include <exception>
#include <new>
#include <type_traits>
#include <string>
#include <utility>

namespace consent {

/* A PostgreSQL error caught by pg(), carried as a C++ exception. */
class PgError : public std::exception {
  public:
    explicit PgError(ErrorData *edata) : edata_(edata) {}
    const char *what() const noexcept override { return edata_->message ? edata_->message : "error"; }
    ErrorData *edata() const { return edata_; }

  private:
    ErrorData *edata_; /* palloc'd in the context current at pg() entry */
};

/* An error of ours, with the SQLSTATE and texts the user will see. */
class Error : public std::exception {
  public:
    Error(int sqlstate, std::string message, std::string detail = {}, std::string hint = {})
        : sqlstate_(sqlstate), message_(std::move(message)), detail_(std::move(detail)), hint_(std::move(hint))
    {
    }
    const char *what() const noexcept override { return message_.c_str(); }
    int sqlstate() const { return sqlstate_; }
    const std::string &detail() const { return detail_; }
    const std::string &hint() const { return hint_; }

  private:
    int sqlstate_;
    std::string message_, detail_, hint_;
};

namespace detail {
/* Raise a captured failure as a PostgreSQL error.  Called with no C++ frame
 * that owns resources between here and PostgreSQL. */
[[noreturn]] void raise_captured(ErrorData *pg, int sqlstate, const char *msg, const char *detail, const char *hint);
ErrorData *capture_pg_error(MemoryContext cxt);
} // namespace detail

namespace detail {
/* Runs fn(arg) inside PG_TRY; returns the captured PostgreSQL error or NULL. */
ErrorData *run_pg(void (*fn)(void *), void *arg);
} // namespace detail

/*
 * Call PostgreSQL code that may ereport(ERROR) from C++ code; a PostgreSQL
 * error becomes a PgError exception.  The callable itself must not own C++
 * resources that outlive a longjmp (keep it to plain C calls).
 * Frames that own no C++ resources (the per-cell hot path) may call
 * PostgreSQL directly and save the sigsetjmp.
 */
template <typename F> auto pg(F &&f) -> decltype(f())
{
    using R = decltype(f());
    struct State {
        F *f;
        std::exception_ptr cpp;
        std::conditional_t<std::is_void_v<R>, char, R> result{};
    } st{&f, nullptr};
    /* A C++ exception must not leave the PG_TRY block (it would leave
     * PG_exception_stack pointing at a dead frame): carry it out. */
    ErrorData *caught = detail::run_pg(
        [](void *p) {
            auto *s = static_cast<State *>(p);
            try {
                if constexpr (std::is_void_v<R>)
                    (*s->f)();
                else
                    s->result = (*s->f)();
            } catch (...) {
                s->cpp = std::current_exception();
            }
        },
        &st);
    if (st.cpp)
        std::rethrow_exception(st.cpp);
    if (caught)
        throw PgError(caught);
    if constexpr (!std::is_void_v<R>)
        return st.result;
}

/*
 * Run a C++ body from a PostgreSQL entry point.  Any exception it throws is
 * captured into palloc'd memory, the body's frames unwind, and only then is
 * the error raised with ereport.
 */
template <typename F> auto entry(F &&f) -> decltype(f())
{
    ErrorData *pg_err = nullptr;
    int code = 0;
    char *msg = nullptr, *det = nullptr, *hint = nullptr;
    try {
        return f();
    } catch (const PgError &e) {
        pg_err = e.edata();
    } catch (const Error &e) {
        code = e.sqlstate();
        msg = pstrdup(e.what());
        det = e.detail().empty() ? nullptr : pstrdup(e.detail().c_str());
        hint = e.hint().empty() ? nullptr : pstrdup(e.hint().c_str());
    } catch (const std::bad_alloc &) {
        code = ERRCODE_OUT_OF_MEMORY;
        msg = pstrdup("out of memory in pg_consent");
    } catch (const std::exception &e) {
        code = ERRCODE_INTERNAL_ERROR;
        msg = psprintf("unexpected C++ exception in pg_consent: %s", e.what());
    } catch (...) {
        code = ERRCODE_INTERNAL_ERROR;
        msg = pstrdup("unexpected C++ exception in pg_consent");
    }
    detail::raise_captured(pg_err, code, msg, det, hint);
}

} // namespace consent

/* Declare an SQL-callable function with C linkage. */
#define CONSENT_FUNCTION(name)                                                                                         \
    extern "C" {                                                                                                       \
    PGDLLEXPORT Datum name(PG_FUNCTION_ARGS);                                                                          \
    PG_FUNCTION_INFO_V1(name);                                                                                         \
    }                                                                                                                  \
    Datum name(PG_FUNCTION_ARGS)
