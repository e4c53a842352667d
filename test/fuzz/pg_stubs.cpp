/*
 * pg_stubs.cpp — the PostgreSQL server symbols that src/mask.cpp and
 * src/boundary.cpp reference, for the standalone libFuzzer target
 * (test/fuzz/mask_fuzzer.cpp, see test/fuzz/README.md).
 *
 * The masks are fuzzed as they are compiled into the extension: mask.cpp and
 * boundary.cpp are built unchanged.  What they call from PostgreSQL comes
 * from three places:
 *  - real PostgreSQL code from libpgcommon/libpgport (linked): encoding
 *    verification, encoding names, HMAC-SHA256, StringInfo, psprintf;
 *  - small re-implementations here of what the fuzzed paths need: palloc
 *    (an arena reset after every input, as a memory context would be),
 *    varlena helpers, the type lookups of a UTF-8 database with no mask
 *    functions, SplitIdentifierString, error raising (a longjmp to
 *    PG_exception_stack, as elog.c does);
 *  - everything else the two files reference but the fuzzed paths must not
 *    reach (catalog lookups of function masks, date/timestamp arithmetic,
 *    encoding conversion, memory contexts): a stub that aborts, so that a
 *    path escaping the harness shows as a crash naming the function.
 */
extern "C" {
#include "postgres.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "nodes/value.h"
#include "pgtime.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/elog.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
}

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "pg_stubs.h"

/* ---------------------------------------------------------------------
 * Memory: an arena freed after each fuzz input
 * --------------------------------------------------------------------- */

namespace {
std::vector<void *> arena;

void *arena_alloc(size_t size, bool zero)
{
    if (size > MaxAllocSize)
        fuzz_abort("palloc of more than MaxAllocSize");
    void *p = zero ? calloc(1, size ? size : 1) : malloc(size ? size : 1);
    if (!p)
        fuzz_abort("out of memory");
    arena.push_back(p);
    return p;
}
} // namespace

void fuzz_abort(const char *what)
{
    fprintf(stderr, "pg_stubs: %s\n", what);
    abort();
}

void fuzz_reset_memory()
{
    for (void *p : arena)
        free(p);
    arena.clear();
}

extern "C" {

MemoryContext CurrentMemoryContext = nullptr;
MemoryContext TopMemoryContext = nullptr;
MemoryContext TopTransactionContext = nullptr;
/* boundary.cpp keeps captured errors in the transaction's context */
bool IsTransactionState(void) { return false; }
sigjmp_buf *PG_exception_stack = nullptr;
ErrorContextCallback *error_context_stack = nullptr;
pg_tz *session_timezone = nullptr;

void *palloc(Size size) { return arena_alloc(size, false); }
void *palloc0(Size size) { return arena_alloc(size, true); }
void *palloc_extended(Size size, int flags) { return arena_alloc(size, (flags & MCXT_ALLOC_ZERO) != 0); }

void pfree(void *pointer)
{
    for (auto it = arena.rbegin(); it != arena.rend(); ++it)
        if (*it == pointer) {
            free(pointer);
            arena.erase(std::next(it).base());
            return;
        }
    fuzz_abort("pfree of a pointer palloc did not return");
}

void *repalloc(void *pointer, Size size)
{
    for (void *&p : arena)
        if (p == pointer) {
            void *n = realloc(pointer, size ? size : 1);
            if (!n)
                fuzz_abort("out of memory");
            p = n;
            return n;
        }
    fuzz_abort("repalloc of a pointer palloc did not return");
    return nullptr;
}

char *pstrdup(const char *in)
{
    size_t len = strlen(in);
    char *out = static_cast<char *>(palloc(len + 1));
    memcpy(out, in, len + 1);
    return out;
}

/* ---------------------------------------------------------------------
 * Errors: ereport(ERROR) longjmps to PG_exception_stack, as in elog.c
 * --------------------------------------------------------------------- */

namespace {
int error_level = 0;
int error_code = 0;
char error_message[1024];
} // namespace

bool errstart(int elevel, const char *domain)
{
    if (elevel < ERROR)
        return false;
    error_level = elevel;
    error_code = ERRCODE_INTERNAL_ERROR;
    error_message[0] = '\0';
    return true;
}

bool errstart_cold(int elevel, const char *domain) { return errstart(elevel, domain); }

int errcode(int sqlerrcode)
{
    error_code = sqlerrcode;
    return 0;
}

int errmsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return 0;
}

int errmsg_internal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return 0;
}

int errdetail_internal(const char *fmt, ...) { return 0; }
int errhint(const char *fmt, ...) { return 0; }

void errfinish(const char *filename, int lineno, const char *funcname)
{
    if (!PG_exception_stack)
        fuzz_abort("ereport(ERROR) outside PG_TRY");
    siglongjmp(*PG_exception_stack, 1);
}

void pg_re_throw(void)
{
    if (!PG_exception_stack)
        fuzz_abort("PG_RE_THROW outside PG_TRY");
    siglongjmp(*PG_exception_stack, 1);
}

ErrorData *CopyErrorData(void)
{
    ErrorData *e = static_cast<ErrorData *>(palloc0(sizeof(ErrorData)));
    e->elevel = error_level;
    e->sqlerrcode = error_code;
    e->message = pstrdup(error_message);
    return e;
}

void FlushErrorState(void) { error_level = 0; }

void ReThrowError(ErrorData *edata) { fuzz_abort("ReThrowError"); }

/* ---------------------------------------------------------------------
 * Varlena and text helpers (a UTF-8 database)
 * --------------------------------------------------------------------- */

struct varlena *pg_detoast_datum_packed(struct varlena *datum)
{
    if (VARATT_IS_EXTENDED(datum) && !VARATT_IS_SHORT(datum))
        fuzz_abort("pg_detoast_datum_packed of a compressed or external datum");
    return datum;
}

text *cstring_to_text_with_len(const char *s, int len)
{
    text *result = static_cast<text *>(palloc(len + VARHDRSZ));
    SET_VARSIZE(result, len + VARHDRSZ);
    memcpy(VARDATA(result), s, len);
    return result;
}

text *cstring_to_text(const char *s) { return cstring_to_text_with_len(s, static_cast<int>(strlen(s))); }

int GetDatabaseEncoding(void) { return PG_UTF8; }
const char *GetDatabaseEncodingName(void) { return "UTF8"; }

bool pg_verifymbstr(const char *mbstr, int len, bool noError)
{
    return pg_encoding_verifymbstr(PG_UTF8, mbstr, len) == len;
}

/* ---------------------------------------------------------------------
 * Types: the built-in types the harness uses, no domains
 * --------------------------------------------------------------------- */

char get_typtype(Oid typid)
{
    switch (typid) {
    case TEXTOID: case VARCHAROID: case BPCHAROID: case BYTEAOID: case INETOID: case CIDROID:
    case DATEOID: case TIMESTAMPOID: case TIMESTAMPTZOID: case INT4OID: case JSONBOID:
        return TYPTYPE_BASE;
    default:
        return '\0';
    }
}

Oid getBaseType(Oid typid) { return typid; }
Oid get_typcollation(Oid typid) { return typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID ? 100 : 0; }

char *format_type_be(Oid type_oid)
{
    switch (type_oid) {
    case TEXTOID: return pstrdup("text");
    case VARCHAROID: return pstrdup("character varying");
    case BPCHAROID: return pstrdup("character");
    case BYTEAOID: return pstrdup("bytea");
    case INETOID: return pstrdup("inet");
    case CIDROID: return pstrdup("cidr");
    case DATEOID: return pstrdup("date");
    case TIMESTAMPOID: return pstrdup("timestamp without time zone");
    case TIMESTAMPTZOID: return pstrdup("timestamp with time zone");
    case INT4OID: return pstrdup("integer");
    case JSONBOID: return pstrdup("jsonb");
    default: return psprintf("%u", type_oid);
    }
}

/* ---------------------------------------------------------------------
 * Names of function masks: split like SplitIdentifierString; no function
 * exists, so every function mask is "does not exist" (42883)
 * --------------------------------------------------------------------- */

List *list_make2_impl(NodeTag t, ListCell datum1, ListCell datum2)
{
    List *list = static_cast<List *>(palloc0(offsetof(List, initial_elements) + 2 * sizeof(ListCell)));
    list->type = t;
    list->length = 2;
    list->max_length = 2;
    list->elements = list->initial_elements;
    list->elements[0] = datum1;
    list->elements[1] = datum2;
    return list;
}

String *makeString(char *str)
{
    String *v = static_cast<String *>(palloc0(sizeof(String)));
    v->type = T_String;
    v->sval = str;
    return v;
}

/* PostgreSQL's rules: identifiers separated by the separator, white space
 * around them ignored, "quoted" ones kept as written ("" is a quote),
 * others folded to lower case; false on a syntax error. */
bool SplitIdentifierString(char *rawstring, char separator, List **namelist)
{
    std::vector<char *> names;
    char *p = rawstring;
    *namelist = NIL;
    while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
        p++;
    if (*p == '\0')
        return true;
    for (;;) {
        char *name;
        char *end;
        if (*p == '"') {
            name = p + 1;
            end = name;
            for (;;) {
                end = strchr(end, '"');
                if (!end)
                    return false;
                if (end[1] != '"')
                    break;
                memmove(end, end + 1, strlen(end));
                end++;
            }
            p = end + 1;
        } else {
            name = p;
            while (*p && *p != separator && !(*p == ' ' || (*p >= '\t' && *p <= '\r')))
                p++;
            end = p;
            if (name == p)
                return false;
            for (char *c = name; c < end; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = static_cast<char>(*c - 'A' + 'a');
        }
        while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
            p++;
        bool more = false;
        if (*p == separator) {
            more = true;
            p++;
            while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
                p++;
        } else if (*p != '\0')
            return false;
        *end = '\0';
        if (strlen(name) >= NAMEDATALEN) {
            /* as truncate_identifier: never inside a multibyte character */
            int len = NAMEDATALEN - 1;
            while (len > 0 && (static_cast<unsigned char>(name[len]) & 0xC0) == 0x80)
                len--;
            name[len] = '\0';
        }
        names.push_back(name);
        if (!more)
            break;
    }
    /* the harness only needs the length and the first two names */
    List *list = static_cast<List *>(palloc0(offsetof(List, initial_elements) + names.size() * sizeof(ListCell)));
    list->type = T_List;
    list->length = static_cast<int>(names.size());
    list->max_length = list->length;
    list->elements = list->initial_elements;
    for (size_t i = 0; i < names.size(); i++)
        list->elements[i].ptr_value = names[i];
    *namelist = list;
    return true;
}

char *NameListToString(List *names)
{
    StringInfoData buf;
    initStringInfo(&buf);
    for (int i = 0; i < names->length; i++)
        appendStringInfo(&buf, "%s%s", i ? "." : "", strVal(names->elements[i].ptr_value));
    return buf.data;
}

FuncCandidateList FuncnameGetCandidates(List *names, int nargs, List *argnames, bool expand_variadic,
                                        bool expand_defaults, bool include_out_arguments, bool missing_ok)
{
    return nullptr;
}

/* ---------------------------------------------------------------------
 * Not on the fuzzed paths
 * --------------------------------------------------------------------- */

#define UNREACHED(ret, name, args)                                                                               \
    ret name args                                                                                                \
    {                                                                                                            \
        fuzz_abort("unexpected call of " #name);                                                                 \
        __builtin_unreachable();                                                                                 \
    }

UNREACHED(MemoryContext, AllocSetContextCreateInternal,
          (MemoryContext parent, const char *name, Size minContextSize, Size initBlockSize, Size maxBlockSize))
UNREACHED(void *, MemoryContextAlloc, (MemoryContext context, Size size))
UNREACHED(void *, MemoryContextAllocZero, (MemoryContext context, Size size))
UNREACHED(void, MemoryContextDelete, (MemoryContext context))
UNREACHED(void, CacheRegisterSyscacheCallback, (int cacheid, SyscacheCallbackFunction func, Datum arg))
UNREACHED(uint32, GetSysCacheHashValue, (int cacheId, Datum key1, Datum key2, Datum key3, Datum key4))
UNREACHED(Oid, GetUserId, (void))
UNREACHED(AclResult, pg_proc_aclcheck, (Oid proc_oid, Oid roleid, AclMode mode))
UNREACHED(void, aclcheck_error, (AclResult aclerr, ObjectType objtype, const char *objectname))
UNREACHED(void, fmgr_info_cxt, (Oid functionId, FmgrInfo *finfo, MemoryContext mcxt))
UNREACHED(Oid, get_fn_expr_argtype, (FmgrInfo * flinfo, int argnum))
UNREACHED(char *, get_func_name, (Oid funcid))
UNREACHED(char, get_func_prokind, (Oid funcid))
UNREACHED(bool, get_func_retset, (Oid funcid))
UNREACHED(Oid, get_func_rettype, (Oid funcid))
UNREACHED(Oid, get_func_signature, (Oid funcid, Oid **argtypes, int *nargs))
UNREACHED(char *, text_to_cstring, (const text *t))
UNREACHED(Oid, FindDefaultConversionProc, (int32 for_encoding, int32 to_encoding))
UNREACHED(int, pg_do_encoding_conversion_buf,
          (Oid proc, int src_encoding, int dest_encoding, unsigned char *src, int srclen, unsigned char *dst,
           int dstlen, bool noError))
UNREACHED(int, date2j, (int year, int month, int day))
UNREACHED(void, j2date, (int jd, int *year, int *month, int *day))
UNREACHED(int, timestamp2tm,
          (Timestamp dt, int *tzp, struct pg_tm *tm, fsec_t *fsec, const char **tzn, pg_tz *attimezone))
UNREACHED(int, tm2timestamp, (struct pg_tm * tm, fsec_t fsec, int *tzp, Timestamp *dt))
UNREACHED(int, DetermineTimeZoneOffset, (struct pg_tm * tm, pg_tz *tzp))

} // extern "C"
