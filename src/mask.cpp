/*
 * mask.cpp — the masks: parsing a mask spec, checking it fits a type, and
 * applying it to one value (consent.mask_value, consent.check_mask).
 *
 * Owns: the mask catalogue (null, redact, partial, email, initials, year,
 * month, generalize, hash, function masks), grapheme-aware text cutting with
 * ICU, the keyed pseudonyms of the hash mask, and a small per-backend cache of
 * the user functions used as masks.
 * Must never: reveal a whole value, cut inside a user-perceived character,
 * return invalid text, look up the catalogs per masked cell, or decide whether
 * a cell is masked.
 */
#include "boundary.h"
#include "compat.h"
#include "consent.h"
#include "invalidation.h"
#include "mask.h"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "nodes/value.h"
#include "pgtime.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include <sys/socket.h> /* AF_INET, used by utils/inet.h */
#include "utils/inet.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
}

#include <unicode/brkiter.h>
#include <unicode/locid.h>
#include <unicode/stringpiece.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utext.h>
#include <unicode/utf8.h>

#include <string_view>

namespace consent {

namespace {

/* ---------------------------------------------------------------------
 * Names and the types each mask fits
 * --------------------------------------------------------------------- */

const char *const masks_hint = "Use null, redact, partial(prefix,suffix), email, initials, year, month, "
                               "generalize, hash, or a schema-qualified function such as myschema.mask_fn.";

const char *kind_name(MaskKind kind)
{
    switch (kind) {
    case MaskKind::Null:
        return "null";
    case MaskKind::Redact:
        return "redact";
    case MaskKind::Partial:
        return "partial";
    case MaskKind::Email:
        return "email";
    case MaskKind::Initials:
        return "initials";
    case MaskKind::Year:
        return "year";
    case MaskKind::Month:
        return "month";
    case MaskKind::Generalize:
        return "generalize";
    case MaskKind::Hash:
        return "hash";
    case MaskKind::Function:
        return "function";
    }
    return "unknown";
}

/* text, varchar and bpchar: the types whose values the text masks read. */
bool is_textlike(Oid type)
{
    return type == TEXTOID || type == VARCHAROID || type == BPCHAROID;
}

/* Whether a (non-function) mask can mask values of type. */
bool fits(MaskKind kind, Oid type)
{
    switch (kind) {
    case MaskKind::Null:
    case MaskKind::Function:
        return true;
    case MaskKind::Redact:
    case MaskKind::Partial:
    case MaskKind::Email:
    case MaskKind::Initials:
        return is_textlike(type);
    case MaskKind::Year:
    case MaskKind::Month:
        return type == DATEOID || type == TIMESTAMPOID || type == TIMESTAMPTZOID;
    case MaskKind::Generalize:
        return type == INETOID || type == CIDROID || type == DATEOID;
    case MaskKind::Hash:
        return is_textlike(type) || type == BYTEAOID;
    }
    return false;
}

/* The types a mask fits, as the end of the sentence "The x mask applies to ...". */
const char *fitting_types(MaskKind kind)
{
    switch (kind) {
    case MaskKind::Year:
    case MaskKind::Month:
        return "date, timestamp without time zone and timestamp with time zone values";
    case MaskKind::Generalize:
        return "inet, cidr and date values";
    case MaskKind::Hash:
        return "text, character varying, character and bytea values";
    default:
        return "text, character varying and character values";
    }
}

/* The spec as shown in messages: quoted, or a placeholder when its bytes are
 * not valid in the database encoding (they must not reach the log). */
std::string quoted(const std::string &spec)
{
    bool valid =
        spec.find('\0') == std::string::npos && pg_verifymbstr(spec.data(), static_cast<int>(spec.size()), true);
    return valid ? "\"" + spec + "\"" : std::string("(not valid in the database encoding)");
}

std::string type_name(Oid type)
{
    char *name = pg([&] { return format_type_be(type); });
    return name;
}

[[noreturn]] void throw_misfit(const std::string &spec, MaskKind kind, Oid type)
{
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                "mask " + quoted(spec) + " cannot be applied to type " + type_name(type),
                std::string("The ") + kind_name(kind) + " mask applies to " + fitting_types(kind) + ".",
                "The null mask and function masks apply to every type.");
}

/* ---------------------------------------------------------------------
 * Parsing
 * --------------------------------------------------------------------- */

bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string trimmed(const std::string &s)
{
    size_t b = 0, e = s.size();
    while (b < e && is_space(s[b]))
        b++;
    while (e > b && is_space(s[e - 1]))
        e--;
    return s.substr(b, e - b);
}

std::string ascii_lower(std::string s)
{
    for (char &c : s)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return s;
}

/* Parses "(N,M)" after the word partial; false when malformed.  *out_of_range
 * is set when a number has more than 1000. */
bool parse_partial_args(const std::string &s, size_t pos, int *prefix, int *suffix, bool *out_of_range)
{
    auto skip = [&] {
        while (pos < s.size() && is_space(s[pos]))
            pos++;
    };
    auto number = [&](int *out) {
        skip();
        size_t start = pos;
        long value = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (value <= 1000)
                value = value * 10 + (s[pos] - '0');
            pos++;
        }
        if (pos == start)
            return false;
        if (value > 1000)
            *out_of_range = true;
        *out = static_cast<int>(value);
        skip();
        return true;
    };
    skip();
    if (pos >= s.size() || s[pos] != '(')
        return false;
    pos++;
    if (!number(prefix) || pos >= s.size() || s[pos] != ',')
        return false;
    pos++;
    if (!number(suffix) || pos >= s.size() || s[pos] != ')')
        return false;
    pos++;
    return pos == s.size();
}

/* Whether text reads as a qualified name: identifiers, quoted or not, and dots. */
bool looks_like_name(const std::string &s)
{
    bool in_quotes = false;
    for (size_t i = 0; i < s.size(); i++) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (in_quotes) {
            if (c == '"') {
                if (i + 1 < s.size() && s[i + 1] == '"')
                    i++;
                else
                    in_quotes = false;
            }
            continue;
        }
        bool ident = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                     c == '$' || c >= 0x80;
        if (c == '"')
            in_quotes = true;
        else if (!ident && c != '.' && !is_space(static_cast<char>(c)))
            return false;
    }
    return !in_quotes;
}

/* What looking up a function mask found (strings palloc'd). */
struct FunctionLookup {
    enum { Found, NotQualified, Malformed, Missing, WrongArgs, NotFunction, ReturnsSet, WrongResult } outcome;
    Oid func;
    const char *name;  /* schema.function as written, normalized */
    const char *found; /* the function found, with its argument types */
    const char *returns;
};

/* "schema.function(argtype, ...)" of a function.  Plain C. */
const char *signature_of(Oid func, const char *name)
{
    Oid *argtypes;
    int nargs;
    get_func_signature(func, &argtypes, &nargs);
    StringInfoData buf;
    initStringInfo(&buf);
    appendStringInfo(&buf, "%s(", name);
    for (int i = 0; i < nargs; i++)
        appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", format_type_be(argtypes[i]));
    appendStringInfoChar(&buf, ')');
    return buf.data;
}

/* Looks up 'schema.function' taking type.  Plain C: no C++ object lives here. */
FunctionLookup lookup_function(const char *spec, Oid type)
{
    FunctionLookup r{FunctionLookup::Found, InvalidOid, nullptr, nullptr, nullptr};
    char *raw = pstrdup(spec);
    List *idents = NIL;
    if (!SplitIdentifierString(raw, '.', &idents)) {
        r.outcome = FunctionLookup::Malformed;
        return r;
    }
    if (list_length(idents) == 1) {
        r.outcome = FunctionLookup::NotQualified;
        return r;
    }
    if (list_length(idents) != 2) {
        r.outcome = FunctionLookup::Malformed;
        return r;
    }
    List *names =
        list_make2(makeString(static_cast<char *>(linitial(idents))), makeString(static_cast<char *>(lsecond(idents))));
    r.name = NameListToString(names);
    /* every routine of that name (procedures and aggregates too), to tell a
     * missing function from one of the wrong kind or signature */
    FuncCandidateList all = FuncnameGetCandidates(names, -1, NIL, false, false, false, true);
    for (FuncCandidateList c = all; c; c = c->next)
        if (c->nargs == 1 && c->args[0] == type)
            r.func = c->oid;
    if (!OidIsValid(r.func)) {
        r.outcome = all ? FunctionLookup::WrongArgs : FunctionLookup::Missing;
        if (all)
            r.found = signature_of(all->oid, r.name);
        return r;
    }
    r.found = signature_of(r.func, r.name);
    Oid rettype = get_func_rettype(r.func);
    r.returns = format_type_be(rettype);
    if (get_func_prokind(r.func) != PROKIND_FUNCTION)
        r.outcome = FunctionLookup::NotFunction;
    else if (get_func_retset(r.func))
        r.outcome = FunctionLookup::ReturnsSet;
    else if (rettype != type)
        r.outcome = FunctionLookup::WrongResult;
    return r;
}

Oid parse_function_mask(const std::string &spec, const std::string &text, Oid type)
{
    /* names are echoed in messages: only valid text in the database encoding */
    if (pg_encoding_verifymbstr(GetDatabaseEncoding(), text.data(), static_cast<int>(text.size())) !=
            static_cast<int>(text.size()) ||
        !looks_like_name(text))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid mask " + quoted(spec),
                    "A function mask is written schema.function, without arguments.", masks_hint);
    FunctionLookup r = pg([&] { return lookup_function(text.c_str(), type); });
    std::string tname = type_name(type);
    std::string signature = r.name ? std::string(r.name) + "(" + tname + ")" : std::string();
    std::string create_hint = "A mask function takes one argument of type " + tname + " and returns " + tname + ".";
    switch (r.outcome) {
    case FunctionLookup::Found:
        return r.func;
    case FunctionLookup::NotQualified:
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown mask " + quoted(spec),
                    "A function used as a mask must be schema-qualified.", masks_hint);
    case FunctionLookup::Malformed:
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid mask " + quoted(spec),
                    "A function mask is written schema.function, without arguments.", masks_hint);
    case FunctionLookup::Missing:
        throw Error(ERRCODE_UNDEFINED_FUNCTION, "mask function " + signature + " does not exist", "", create_hint);
    case FunctionLookup::WrongArgs:
        throw Error(ERRCODE_DATATYPE_MISMATCH,
                    "mask function " + std::string(r.name) + " must take and return " + tname,
                    "No function " + signature + " exists; found " + r.found + ".", create_hint);
    case FunctionLookup::NotFunction:
        throw Error(ERRCODE_DATATYPE_MISMATCH, "mask function " + std::string(r.found) + " is not a plain function",
                    "Procedures, aggregates and window functions cannot be masks.", create_hint);
    case FunctionLookup::ReturnsSet:
        throw Error(ERRCODE_DATATYPE_MISMATCH, "mask function " + std::string(r.found) + " returns a set",
                    "A mask function returns one value of " + tname + ".", create_hint);
    case FunctionLookup::WrongResult:
        throw Error(ERRCODE_DATATYPE_MISMATCH, "mask function " + std::string(r.found) + " must return " + tname,
                    "It returns " + std::string(r.returns) + ".", create_hint);
    }
    throw Error(ERRCODE_INTERNAL_ERROR, "unexpected outcome of the mask function lookup");
}

} // namespace

MaskSpec parse_mask(const std::string &spec, Oid base_type)
{
    char typtype = pg([&] { return get_typtype(base_type); });
    if (typtype == '\0')
        throw Error(ERRCODE_UNDEFINED_OBJECT, "type with OID " + std::to_string(base_type) + " does not exist");
    Oid type = pg([&] { return getBaseType(base_type); });

    std::string text = trimmed(spec);
    std::string word = ascii_lower(text);
    if (text.empty() || text.find('\0') != std::string::npos)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid mask " + quoted(spec), "A mask must not be empty.",
                    masks_hint);

    static const struct {
        const char *word;
        MaskKind kind;
    } keywords[] = {{"null", MaskKind::Null},
                    {"redact", MaskKind::Redact},
                    {"email", MaskKind::Email},
                    {"initials", MaskKind::Initials},
                    {"year", MaskKind::Year},
                    {"month", MaskKind::Month},
                    {"generalize", MaskKind::Generalize},
                    {"hash", MaskKind::Hash}};
    MaskSpec m;
    bool known = false;
    for (const auto &k : keywords)
        if (word == k.word) {
            m.kind = k.kind;
            known = true;
        }
    if (!known && word.compare(0, 7, "partial") == 0 && (word.size() == 7 || word[7] == '(' || is_space(word[7]))) {
        bool out_of_range = false;
        if (!parse_partial_args(word, 7, &m.prefix, &m.suffix, &out_of_range))
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid mask " + quoted(spec),
                        "The partial mask is written partial(prefix,suffix), e.g. partial(0,2).",
                        "prefix and suffix are the numbers of characters kept at the start and at the end.");
        if (out_of_range)
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid mask " + quoted(spec),
                        "The numbers of the partial mask must be between 0 and 1000.");
        m.kind = MaskKind::Partial;
        known = true;
    }
    if (!known) {
        if (text.find('.') == std::string::npos)
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown mask " + quoted(spec), "", masks_hint);
        m.kind = MaskKind::Function;
        m.func = parse_function_mask(spec, text, type);
        return m;
    }
    if (!fits(m.kind, type))
        throw_misfit(spec, m.kind, type);
    return m;
}

namespace {

/* ---------------------------------------------------------------------
 * Text in the database encoding, read as UTF-8
 * --------------------------------------------------------------------- */

/* The bytes of a text-like value (detoasted); character(n) loses its padding,
 * which is not part of the value. */
std::string_view value_bytes(Datum value, Oid type)
{
    /* only compressed or out-of-line values need PostgreSQL (and its errors) */
    auto *v = reinterpret_cast<struct varlena *>(DatumGetPointer(value));
    text *t = VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v) ? pg([&] { return DatumGetTextPP(value); })
                                                               : reinterpret_cast<text *>(v);
    const char *data = VARDATA_ANY(t);
    size_t len = VARSIZE_ANY_EXHDR(t);
    if (type == BPCHAROID)
        while (len > 0 && data[len - 1] == ' ')
            len--;
    return std::string_view(data, len);
}

/* Whether the database encoding is read as UTF-8 directly (UTF8, and
 * SQL_ASCII whose values are taken as UTF-8) or converted. */
bool database_is_utf8()
{
    int enc = GetDatabaseEncoding();
    return enc == PG_UTF8 || enc == PG_SQL_ASCII;
}

[[noreturn]] void throw_unreadable(MaskKind kind)
{
    if (database_is_utf8())
        throw Error(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
                    std::string("cannot apply mask \"") + kind_name(kind) + "\" to a value that is not valid UTF-8",
                    "The value contains a byte sequence that is not valid UTF-8; it is not shown.",
                    "Repair the stored value. The null, redact and hash masks do not read characters and apply to it.");
    throw Error(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
                std::string("cannot apply mask \"") + kind_name(kind) + "\" to a value that cannot be read as UTF-8",
                std::string("The value contains a byte sequence that is not valid in encoding \"") +
                    GetDatabaseEncodingName() + "\" or has no equivalent in UTF-8; it is not shown.",
                "Repair the stored value. The null, redact and hash masks do not read characters and apply to it.");
}

/* Converts between the database encoding and UTF-8 into a new text value;
 * nullptr when the input is invalid or a character has no equivalent (never
 * PostgreSQL's conversion errors: they would show bytes of the value).
 * Plain C. */
text *convert_quietly(const char *s, size_t len, bool to_utf8)
{
    static Oid procs[2] = {InvalidOid, InvalidOid}; /* from UTF-8, to UTF-8 */
    int enc = GetDatabaseEncoding();
    int src = to_utf8 ? enc : PG_UTF8, dst = to_utf8 ? PG_UTF8 : enc;
    Oid &proc = procs[to_utf8 ? 1 : 0];
    if (!OidIsValid(proc)) {
        proc = FindDefaultConversionProc(src, dst);
        if (!OidIsValid(proc))
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
                            errmsg("default conversion function for encoding \"%s\" to \"%s\" does not exist",
                                   pg_encoding_to_char(src), pg_encoding_to_char(dst))));
    }
    if (len > (MaxAllocHugeSize - VARHDRSZ - 1) / MAX_CONVERSION_GROWTH - 1 || len > (PG_INT32_MAX - 1) / 4 - 1)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("value too long to mask in encoding \"%s\"", pg_encoding_to_char(enc))));
    int dstlen = static_cast<int>(len) * MAX_CONVERSION_GROWTH + 5;
    text *t = static_cast<text *>(palloc_extended(VARHDRSZ + dstlen, MCXT_ALLOC_HUGE));
    char *out = VARDATA(t);
    int done = pg_do_encoding_conversion_buf(proc, src, dst, (unsigned char *)s, static_cast<int>(len),
                                             (unsigned char *)out, dstlen, true);
    if (done < static_cast<int>(len)) {
        pfree(t);
        return nullptr;
    }
    SET_VARSIZE(t, VARHDRSZ + strlen(out));
    return t;
}

/* Whether the bytes are text PostgreSQL accepts as UTF-8: well-formed UTF-8
 * (no overlong forms, no surrogates, nothing past U+10FFFF; what ICU's
 * U8_NEXT and pg_utf8_islegal() both accept) without NUL.  ASCII runs are
 * checked eight bytes at a time. */
bool valid_utf8(std::string_view s)
{
    const char *p = s.data();
    int32_t n = static_cast<int32_t>(s.size()), i = 0;
    constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            /* no high bit and no zero byte: eight valid characters */
            if ((w & highs) == 0 && ((w - ones) & ~w & highs) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned char b = static_cast<unsigned char>(p[i]);
        if (b == 0)
            return false;
        if (b < 0x80) {
            i++;
            continue;
        }
        UChar32 c;
        U8_NEXT(p, i, n, c);
        if (c < 0)
            return false;
    }
    return true;
}

/* The value as UTF-8: the bytes themselves in a UTF-8 database, a converted
 * copy (kept alive by *storage) otherwise.  Unreadable bytes raise 22021. */
std::string_view utf8_of(std::string_view bytes, MaskKind kind, std::string *storage)
{
    if (!database_is_utf8()) {
        text *conv = pg([&] { return convert_quietly(bytes.data(), bytes.size(), true); });
        if (!conv)
            throw_unreadable(kind);
        storage->assign(VARDATA(conv), VARSIZE(conv) - VARHDRSZ);
        pg([&] { pfree(conv); });
        bytes = *storage;
    }
    if (!valid_utf8(bytes))
        throw_unreadable(kind);
    return bytes;
}

/* UTF-8 as a text value in the database encoding; nullptr when a character
 * has no equivalent there.  Plain C. */
text *utf8_to_text(const char *s, size_t len)
{
    if (database_is_utf8())
        return cstring_to_text_with_len(s, static_cast<int>(len));
    return convert_quietly(s, len, false);
}

/* A text value of these bytes in the current memory context, without a
 * PostgreSQL error path (out of memory is std::bad_alloc): the per-cell
 * masks call it with C++ objects alive and no sigsetjmp. */
text *new_text(const char *s, size_t len)
{
    if (len > MaxAllocSize - VARHDRSZ)
        throw Error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "masked value too long");
    auto *t = static_cast<text *>(palloc_extended(len + VARHDRSZ, MCXT_ALLOC_NO_OOM));
    if (!t)
        throw std::bad_alloc();
    SET_VARSIZE(t, len + VARHDRSZ);
    memcpy(VARDATA(t), s, len);
    return t;
}

/* The redact mask's value, made once per backend: a function result may be
 * read-only memory that outlives the call (as PostgreSQL's constants and
 * functions returning an argument are); nothing frees or changes it. */
Datum redacted()
{
    static text *value = nullptr;
    if (!value) {
        constexpr char word[] = "[redacted]";
        auto *t = static_cast<text *>(
            MemoryContextAllocExtended(TopMemoryContext, VARHDRSZ + sizeof(word) - 1, MCXT_ALLOC_NO_OOM));
        if (!t)
            throw std::bad_alloc();
        SET_VARSIZE(t, VARHDRSZ + sizeof(word) - 1);
        memcpy(VARDATA(t), word, sizeof(word) - 1);
        value = t;
    }
    return PointerGetDatum(value);
}

/* The masked text as a value of the database encoding. */
Datum text_datum(const std::string &utf8)
{
    text *t = database_is_utf8() ? new_text(utf8.data(), utf8.size())
                                 : pg([&] { return utf8_to_text(utf8.data(), utf8.size()); });
    if (!t) /* the pieces come from the value itself: cannot happen */
        throw Error(ERRCODE_UNTRANSLATABLE_CHARACTER,
                    std::string("masked value has no equivalent in encoding \"") + GetDatabaseEncodingName() + "\"");
    return PointerGetDatum(t);
}

/* Whether UTF-8 text has an equivalent in the database encoding. */
bool representable(const std::string &utf8)
{
    if (database_is_utf8())
        return true;
    return pg([&] { return utf8_to_text(utf8.data(), utf8.size()); }) != nullptr;
}

/* ---------------------------------------------------------------------
 * Grapheme clusters (ICU)
 * --------------------------------------------------------------------- */

[[noreturn]] void throw_icu(const char *what, UErrorCode status)
{
    throw Error(ERRCODE_INTERNAL_ERROR, std::string("could not ") + what + ": ICU error " + u_errorName(status));
}

/* The grapheme-cluster iterator of the root locale, created once per backend. */
icu::BreakIterator *grapheme_iterator()
{
    static icu::BreakIterator *iterator = nullptr;
    if (!iterator) {
        UErrorCode status = U_ZERO_ERROR;
        icu::BreakIterator *created = icu::BreakIterator::createCharacterInstance(icu::Locale::getRoot(), status);
        if (U_FAILURE(status)) {
            delete created;
            throw_icu("create the grapheme iterator", status);
        }
        iterator = created;
    }
    return iterator;
}

/* The grapheme boundaries of a valid UTF-8 string, as byte offsets.  The
 * string must outlive the object; one object at a time per backend. */
class Graphemes {
  public:
    explicit Graphemes(std::string_view s) : bi_(grapheme_iterator())
    {
        UErrorCode status = U_ZERO_ERROR;
        utext_openUTF8(&ut_, s.data(), static_cast<int64_t>(s.size()), &status);
        if (U_SUCCESS(status))
            bi_->setText(&ut_, status);
        if (U_FAILURE(status)) {
            utext_close(&ut_);
            throw_icu("segment text into characters", status);
        }
    }
    ~Graphemes() { utext_close(&ut_); }
    Graphemes(const Graphemes &) = delete;
    Graphemes &operator=(const Graphemes &) = delete;
    icu::BreakIterator *operator->() const { return bi_; }

  private:
    icu::BreakIterator *bi_;
    UText ut_ = UTEXT_INITIALIZER;
};

const int32_t done = icu::BreakIterator::DONE;

/* Whether every byte is ASCII and there is no CR and no NUL: then the bytes
 * are valid UTF-8 (NUL is not valid in PostgreSQL's) and every byte is one
 * user-perceived character (CR LF is the only multi-byte ASCII cluster),
 * and the masks below can skip ICU (most values in practice). */
bool plain_ascii(std::string_view s)
{
    const char *p = s.data();
    size_t n = s.size(), i = 0;
    constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t cr = w ^ (ones * '\r'); /* a zero byte where w has CR */
        /* (x - ones) & ~x & highs: not zero when x has a zero byte */
        if ((w & highs) != 0 || ((cr - ones) & ~cr & highs) != 0 || ((w - ones) & ~w & highs) != 0)
            return false;
    }
    for (; i < n; i++)
        if (static_cast<unsigned char>(p[i]) >= 0x80 || p[i] == '\r' || p[i] == '\0')
            return false;
    return true;
}

/* Printable ASCII and Latin-1 but the soft hyphen: ordinary characters
 * (Grapheme_Cluster_Break=Other, checked against ICU for U+0000-U+00FF). */
bool latin_other(UChar32 c)
{
    return (c >= 0x20 && c < 0x7F) || (c >= 0xA0 && c <= 0xFF && c != 0xAD);
}

/* Byte length of the first user-perceived character of a valid UTF-8
 * string.  The grapheme break property decides it without a break iterator
 * when the first code point is an ordinary one followed by another ordinary
 * one (rule GB999); anything else (marks, ZWJ, Hangul, flags, prepend)
 * goes through ICU. */
size_t first_grapheme_len(std::string_view s)
{
    if (s.empty())
        return 0;
    int32_t i = 0, n = static_cast<int32_t>(s.size());
    UChar32 c1, c2;
    U8_NEXT(s.data(), i, n, c1);
    if (i == n)
        return size_t(i);
    int32_t j = i;
    U8_NEXT(s.data(), j, n, c2);
    /* an ordinary character followed by one, or by white space, is one
     * character on its own */
    if (latin_other(c1) && (latin_other(c2) || c2 == '\t' || c2 == '\n' || c2 == '\r'))
        return size_t(i);
    if (c1 >= 0 && c2 >= 0 && u_getIntPropertyValue(c1, UCHAR_GRAPHEME_CLUSTER_BREAK) == U_GCB_OTHER) {
        int gcb2 = u_getIntPropertyValue(c2, UCHAR_GRAPHEME_CLUSTER_BREAK);
        if (gcb2 == U_GCB_OTHER || gcb2 == U_GCB_CONTROL || gcb2 == U_GCB_CR || gcb2 == U_GCB_LF)
            return size_t(i);
    }
    Graphemes g(s);
    g->first();
    return size_t(g->next());
}

/* partial(prefix,suffix): the first prefix and last suffix characters around
 * '***'; only '***' when that would show every character.  (Plain ASCII
 * values take mask_ascii() instead, here and in the two masks below.) */
void mask_partial(std::string_view s, int prefix, int suffix, std::string &out)
{
    Graphemes g(s);
    int32_t head = g->first();
    for (int i = 0; i < prefix && head != done; i++)
        head = g->next();
    int32_t tail = head == done ? done : g->last();
    for (int i = 0; i < suffix && tail != done; i++)
        tail = g->previous();
    if (head == done || tail == done || tail <= head) {
        out = "***";
        return;
    }
    out.append(s.substr(0, static_cast<size_t>(head)));
    out.append("***");
    out.append(s.substr(static_cast<size_t>(tail)));
}

/* email: the first character of the local part, '***', then '@' and the
 * domain; '***' without an '@'. */
void mask_email(std::string_view s, std::string &out)
{
    size_t at = s.rfind('@');
    if (at == std::string_view::npos) {
        out = "***";
        return;
    }
    if (at > 0 && plain_ascii(s.substr(0, at > 1 ? 2 : 1))) {
        /* an ASCII character followed by ASCII (not CR LF): one character */
        out.push_back(s[0]);
    } else if (at > 0) {
        std::string_view local = s.substr(0, at);
        out.append(local.substr(0, first_grapheme_len(local)));
    }
    out.append("***");
    out.append(s.substr(at));
}

/* One character in upper case (root locale), when the database encoding has it. */
std::string upper(std::string_view grapheme)
{
    /* one code point whose upper case is one code point (simple mapping
     * equals full mapping below U+0250 but for these three) */
    int32_t i = 0, n = static_cast<int32_t>(grapheme.size());
    UChar32 c;
    U8_NEXT(grapheme.data(), i, n, c);
    if (i == n && c >= 0 && c < 0x80) /* ASCII: every server encoding has it */
        return std::string(1, char(pg_ascii_toupper(static_cast<unsigned char>(c))));
    if (i == n && c >= 0 && c < 0x250 && c != 0xDF && c != 0x149 && c != 0x1F0 && database_is_utf8()) {
        UChar32 u = u_toupper(c);
        char buf[U8_MAX_LENGTH];
        int32_t len = 0;
        UBool error = false;
        U8_APPEND(buf, len, U8_MAX_LENGTH, u, error);
        if (!error)
            return std::string(buf, size_t(len));
    }
    icu::UnicodeString u =
        icu::UnicodeString::fromUTF8(icu::StringPiece(grapheme.data(), static_cast<int32_t>(grapheme.size())));
    u.toUpper(icu::Locale::getRoot());
    std::string out;
    u.toUTF8String(out);
    if (out.empty() || !representable(out))
        return std::string(grapheme);
    return out;
}

/* Unicode's White_Space property (what u_isUWhiteSpace answers), written
 * out so that the characters inside words need no ICU call. */
bool is_white_space(UChar32 c)
{
    if (c < 0x80)
        return c == ' ' || (c >= '\t' && c <= '\r');
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* initials: the first character of each whitespace-separated word, upper
 * case, followed by '.', joined by one space. */
void mask_initials(std::string_view s, std::string &out)
{
    /* Words are runs of characters that do not start with white space; a
     * mark or joiner right after white space belongs to that white space. */
    int32_t i = 0, n = static_cast<int32_t>(s.size());
    bool in_word = false;
    while (i < n) {
        /* ASCII white space ends a word; other ASCII inside one continues it */
        unsigned char b = static_cast<unsigned char>(s[size_t(i)]);
        if (b < 0x80 && (b == ' ' || (b >= '\t' && b <= '\r'))) {
            in_word = false;
            i++;
            continue;
        }
        if (b < 0x80 && in_word) {
            for (i++; i < n && static_cast<unsigned char>(s[size_t(i)]) > ' ' &&
                       static_cast<unsigned char>(s[size_t(i)]) < 0x80;
                 i++) {
            }
            continue;
        }
        /* here b starts a word or is not ASCII */
        int32_t start = i;
        size_t len;
        unsigned char next = i + 1 < n ? static_cast<unsigned char>(s[size_t(i) + 1]) : ' ';
        if (b > ' ' && b < 0x7F &&
            ((next >= ' ' && next < 0x7F) || next == '\t' || next == '\n' || next == '\r')) {
            /* a printable ASCII character followed by another, by white
             * space or by nothing is one character on its own (what
             * first_grapheme_len() answers, without decoding or ICU) */
            len = 1;
        } else {
            UChar32 c;
            U8_NEXT(s.data(), i, n, c);
            if (c < 0 || is_white_space(c)) {
                in_word = false;
                continue;
            }
            if (in_word)
                continue;
            int gcb = latin_other(c) ? U_GCB_OTHER : u_getIntPropertyValue(c, UCHAR_GRAPHEME_CLUSTER_BREAK);
            if (start > 0 && (gcb == U_GCB_EXTEND || gcb == U_GCB_ZWJ || gcb == U_GCB_SPACING_MARK)) {
                UChar32 prev;
                int32_t p = start;
                U8_PREV(s.data(), 0, p, prev);
                if (prev >= 0 && is_white_space(prev))
                    continue;
            }
            len = first_grapheme_len(s.substr(static_cast<size_t>(start)));
        }
        in_word = true;
        if (!out.empty())
            out.push_back(' ');
        if (len == 1) /* one byte: ASCII */
            out.push_back(char(pg_ascii_toupper(b)));
        else
            out.append(upper(s.substr(static_cast<size_t>(start), len)));
        out.push_back('.');
        i = start + static_cast<int32_t>(len);
    }
}

/* The partial, email and initials masks of a plain ASCII value (see
 * plain_ascii(): every byte is one character), written straight into a
 * new text value; the same results as the functions above. */
text *mask_ascii(const MaskSpec &spec, std::string_view s)
{
    size_t n = s.size();
    /* initials: at most "X. " per two input bytes; the others add "***" */
    size_t bound = spec.kind == MaskKind::Initials ? 2 * n + 1 : n + 3;
    if (bound > MaxAllocSize - VARHDRSZ)
        throw Error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "masked value too long");
    auto *t = static_cast<text *>(palloc_extended(bound + VARHDRSZ, MCXT_ALLOC_NO_OOM));
    if (!t)
        throw std::bad_alloc();
    char *const start = VARDATA(t);
    char *o = start;
    auto put = [&o](std::string_view piece) {
        memcpy(o, piece.data(), piece.size());
        o += piece.size();
    };
    switch (spec.kind) {
    case MaskKind::Partial: {
        size_t p = size_t(spec.prefix), q = size_t(spec.suffix);
        if (p + q >= n) {
            put("***");
            break;
        }
        put(s.substr(0, p));
        put("***");
        put(s.substr(n - q));
        break;
    }
    case MaskKind::Email: {
        size_t at = s.rfind('@');
        if (at == std::string_view::npos) {
            put("***");
            break;
        }
        if (at > 0)
            *o++ = s[0];
        put("***");
        put(s.substr(at));
        break;
    }
    default: { /* initials */
        bool in_word = false;
        for (char c : s) {
            /* ASCII White_Space: TAB..CR and SPACE */
            if (c == ' ' || (c >= '\t' && c <= '\r')) {
                in_word = false;
                continue;
            }
            if (in_word)
                continue;
            in_word = true;
            if (o != start)
                *o++ = ' ';
            *o++ = char(pg_ascii_toupper(static_cast<unsigned char>(c)));
            *o++ = '.';
        }
        break;
    }
    }
    SET_VARSIZE(t, VARHDRSZ + (o - start));
    return t;
}

/* ---------------------------------------------------------------------
 * Dates, timestamps, addresses
 * --------------------------------------------------------------------- */

/* The first day of the year or month of a date (infinities stay). */
DateADT truncate_date(DateADT d, bool to_year)
{
    if (DATE_NOT_FINITE(d))
        return d;
    /* the last period truncated, per kind: dates of one year or month in a
     * row (a scan in date order) skip the calendar arithmetic */
    static struct {
        DateADT start = 1, end = 0; /* [start, end): empty */
    } last[2];
    auto &l = last[to_year ? 1 : 0];
    if (d >= l.start && d < l.end)
        return l.start;
    int year, month, day;
    j2date(d + POSTGRES_EPOCH_JDATE, &year, &month, &day);
    int first_month = to_year ? 1 : month;
    int next_year = to_year || month == 12 ? year + 1 : year;
    int next_month = to_year || month == 12 ? 1 : month + 1;
    l.start = date2j(year, first_month, 1) - POSTGRES_EPOCH_JDATE;
    l.end = date2j(next_year, next_month, 1) - POSTGRES_EPOCH_JDATE;
    return l.start;
}

/* Midnight of the first day of the year or month; with_tz: in the session
 * time zone.  Plain C. */
Timestamp truncate_timestamp(Timestamp ts, bool to_year, bool with_tz)
{
    if (TIMESTAMP_NOT_FINITE(ts))
        return ts;
    struct pg_tm tm;
    fsec_t fsec;
    int tz = 0;
    if (timestamp2tm(ts, with_tz ? &tz : nullptr, &tm, &fsec, nullptr, nullptr) != 0)
        ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("timestamp out of range")));
    if (to_year)
        tm.tm_mon = 1;
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (with_tz)
        tz = DetermineTimeZoneOffset(&tm, session_timezone);
    Timestamp result;
    if (tm2timestamp(&tm, 0, with_tz ? &tz : nullptr, &result) != 0)
        ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("timestamp out of range")));
    return result;
}

Datum truncate_temporal(Datum value, Oid type, bool to_year)
{
    if (type == DATEOID)
        return DateADTGetDatum(truncate_date(DatumGetDateADT(value), to_year));
    bool with_tz = type == TIMESTAMPTZOID;
    return TimestampGetDatum(pg([&] { return truncate_timestamp(DatumGetTimestamp(value), to_year, with_tz); }));
}

/* The /24 (IPv4) or /48 (IPv6) network of an address, host bits zeroed; a
 * value whose mask is shorter already keeps it.  Plain C. */
inet *generalize_address(Datum value)
{
    inet *src = DatumGetInetPP(value);
    inet *dst = static_cast<inet *>(palloc0(sizeof(inet)));
    int limit = ip_family(src) == PGSQL_AF_INET ? 24 : 48;
    int bits = Min(static_cast<int>(ip_bits(src)), limit);
    ip_family(dst) = ip_family(src);
    ip_bits(dst) = static_cast<unsigned char>(bits);
    for (int i = 0; i < ip_addrsize(src); i++) {
        int keep = bits - 8 * i;
        unsigned char byte = ip_addr(src)[i];
        ip_addr(dst)[i] = keep >= 8 ? byte : keep <= 0 ? 0 : static_cast<unsigned char>(byte & (0xFF << (8 - keep)));
    }
    SET_INET_VARSIZE(dst);
    return dst;
}

/* ---------------------------------------------------------------------
 * Keyed pseudonyms
 * --------------------------------------------------------------------- */

/* HMAC-SHA256 of data with the key; false when the HMAC failed (*error set).  Plain C. */
bool hmac_sha256(const char *key, const char *data, size_t len, uint8 *digest, const char **error)
{
    pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
    if (!ctx) {
        *error = "out of memory";
        return false;
    }
    bool ok = pg_hmac_init(ctx, reinterpret_cast<const uint8 *>(key), strlen(key)) == 0 &&
              pg_hmac_update(ctx, reinterpret_cast<const uint8 *>(data), len) == 0 &&
              pg_hmac_final(ctx, digest, PG_SHA256_DIGEST_LENGTH) == 0;
    if (!ok)
        *error = pstrdup(pg_hmac_error(ctx));
    pg_hmac_free(ctx);
    return ok;
}

Datum mask_hash(Datum value, Oid type)
{
    if (!pseudonym_key)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "the hash mask needs pg_consent loaded via shared_preload_libraries", "",
                    "Add pg_consent to shared_preload_libraries and restart the server.");
    uint8 digest[PG_SHA256_DIGEST_LENGTH];
    std::string_view bytes;
    if (type == BYTEAOID) {
        bytea *b = pg([&] { return DatumGetByteaPP(value); });
        bytes = std::string_view(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
    } else
        bytes = value_bytes(value, type);
    const char *error = nullptr;
    if (!pg([&] { return hmac_sha256(pseudonym_key, bytes.data(), bytes.size(), digest, &error); }))
        throw Error(ERRCODE_INTERNAL_ERROR, std::string("could not compute HMAC-SHA256: ") + error);
    if (type == BYTEAOID)
        return PointerGetDatum(pg([&] {
            bytea *out = static_cast<bytea *>(palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH));
            SET_VARSIZE(out, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
            memcpy(VARDATA(out), digest, PG_SHA256_DIGEST_LENGTH);
            return out;
        }));
    static const char hex[] = "0123456789abcdef";
    char out[2 + 16];
    out[0] = 'h';
    out[1] = ':';
    for (int i = 0; i < 8; i++) {
        out[2 + 2 * i] = hex[digest[i] >> 4];
        out[3 + 2 * i] = hex[digest[i] & 0xF];
    }
    return PointerGetDatum(pg([&] { return cstring_to_text_with_len(out, sizeof(out)); }));
}

/* ---------------------------------------------------------------------
 * Function masks: a small per-backend cache of FmgrInfo by function Oid
 * --------------------------------------------------------------------- */

/* One resolved mask function.  Lives in its own memory context, so that
 * everything the function caches in fn_extra goes away with it.  An entry
 * replaced while a call through it is running (a mask function that masks,
 * then sees the function redefined) is freed when that call returns. */
struct MaskFunction {
    MemoryContext cxt;
    FmgrInfo finfo;
    Oid func;
    Oid collation;
    Oid checked_role; /* the role whose EXECUTE privilege was checked */
    uint32 hash;      /* syscache hash of func, to match invalidations */
    int running;      /* calls in progress */
    bool stale;       /* pg_proc changed: resolve again before the next call */
    bool retired;     /* no longer in the table: free when not running */
};

constexpr int function_slots = 16;
MaskFunction *functions[function_slots];
int next_victim = 0;

void retire(MaskFunction *f)
{
    if (f->running == 0)
        MemoryContextDelete(f->cxt);
    else
        f->retired = true;
}

/* A resolved mask function in a new memory context.  Plain C. */
MaskFunction *new_mask_function(Oid func, Oid collation)
{
    MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "pg_consent mask function", ALLOCSET_SMALL_SIZES);
    MaskFunction *f = static_cast<MaskFunction *>(MemoryContextAllocZero(cxt, sizeof(MaskFunction)));
    PG_TRY();
    {
        fmgr_info_cxt(func, &f->finfo, cxt);
    }
    PG_CATCH();
    {
        MemoryContextDelete(cxt);
        PG_RE_THROW();
    }
    PG_END_TRY();
    f->cxt = cxt;
    f->func = func;
    f->collation = collation;
    f->hash = GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(func));
    return f;
}

/* The cached, privilege-checked entry of a mask function; resolves it when
 * missing or stale.  Plain C. */
MaskFunction *mask_function(Oid func, Oid type)
{
    register_invalidation_callbacks(); /* also without the preload */
    int slot = -1;
    for (int i = 0; i < function_slots; i++)
        if (functions[i] && functions[i]->func == func) {
            slot = i;
            break;
        }
    Oid role = GetUserId();
    if (slot >= 0 && !functions[slot]->stale) {
        MaskFunction *f = functions[slot];
        if (f->checked_role != role) {
            if (function_aclcheck(func, role, ACL_EXECUTE) != ACLCHECK_OK)
                aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(func));
            f->checked_role = role;
        }
        return f;
    }
    if (slot < 0) {
        for (int i = 0; i < function_slots && slot < 0; i++)
            if (!functions[i])
                slot = i;
        if (slot < 0) {
            slot = next_victim;
            next_victim = (next_victim + 1) % function_slots;
        }
    }
    if (functions[slot]) {
        retire(functions[slot]);
        functions[slot] = nullptr;
    }
    /* errors for a function that no longer exists, too */
    if (function_aclcheck(func, role, ACL_EXECUTE) != ACLCHECK_OK)
        aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(func));
    MaskFunction *f = new_mask_function(func, get_typcollation(type));
    f->checked_role = role;
    functions[slot] = f;
    return f;
}

/* Calls a mask function on one value.  Plain C. */
Datum call_function(MaskFunction *f, Datum value, bool *isnull)
{
    alignas(FunctionCallInfoBaseData) char data[SizeForFunctionCallInfo(1)];
    FunctionCallInfo fcinfo = reinterpret_cast<FunctionCallInfo>(data);
    InitFunctionCallInfoData(*fcinfo, &f->finfo, 1, f->collation, nullptr, nullptr);
    fcinfo->args[0].value = value;
    fcinfo->args[0].isnull = false;
    Datum result = FunctionCallInvoke(fcinfo);
    *isnull = fcinfo->isnull;
    return result;
}

Datum mask_with_function(Oid func, Datum value, Oid type, bool *isnull)
{
    MaskFunction *f = pg([&] { return mask_function(func, type); });
    f->running++;
    Datum result;
    try {
        result = pg([&] { return call_function(f, value, isnull); });
    } catch (...) {
        /* an error: leave a retired entry to leak rather than free what the
         * aborting function may still point into */
        f->running--;
        throw;
    }
    if (--f->running == 0 && f->retired)
        pg([&] { MemoryContextDelete(f->cxt); });
    return result;
}

} // namespace

/* pg_proc changed: mark the affected mask functions (all on a cache reset)
 * stale.  Only marks: the entries may be in use further up the stack. */
void mask_procs_changed(uint32 hashvalue) noexcept
{
    for (MaskFunction *f : functions)
        if (f && (hashvalue == 0 || f->hash == hashvalue))
            f->stale = true;
}

MaskedValue build_mask(const MaskSpec &spec, Datum value, Oid base_type)
{
    if (spec.kind == MaskKind::Function) {
        bool isnull = false;
        Datum d = mask_with_function(spec.func, value, base_type, &isnull);
        return {d, isnull};
    }
    Assert(fits(spec.kind, base_type)); /* parse_mask() checked it */
    switch (spec.kind) {
    case MaskKind::Null:
        return {(Datum)0, true};
    case MaskKind::Redact:
        return {redacted(), false};
    case MaskKind::Partial:
    case MaskKind::Email:
    case MaskKind::Initials: {
        std::string_view bytes = value_bytes(value, base_type);
        /* ASCII is valid UTF-8, one character per byte (no CR LF), and the
         * same bytes in every server encoding (all are ASCII-safe) */
        if (plain_ascii(bytes))
            return {PointerGetDatum(mask_ascii(spec, bytes)), false};
        std::string storage;
        std::string_view s = utf8_of(bytes, spec.kind, &storage);
        /* one buffer for the backend: no allocation per masked cell once warm */
        static std::string out;
        out.clear();
        if (spec.kind == MaskKind::Partial)
            mask_partial(s, spec.prefix, spec.suffix, out);
        else if (spec.kind == MaskKind::Email)
            mask_email(s, out);
        else
            mask_initials(s, out);
        Datum d = text_datum(out);
        if (out.capacity() > 4096)
            std::string().swap(out); /* a huge value's buffer is not kept */
        return {d, false};
    }
    case MaskKind::Year:
    case MaskKind::Month:
        return {truncate_temporal(value, base_type, spec.kind == MaskKind::Year), false};
    case MaskKind::Generalize:
        if (base_type == DATEOID)
            return {truncate_temporal(value, base_type, true), false};
        return {PointerGetDatum(pg([&] { return generalize_address(value); })), false};
    case MaskKind::Hash:
        return {mask_hash(value, base_type), false};
    case MaskKind::Function:
        break;
    }
    throw Error(ERRCODE_INTERNAL_ERROR, "unexpected mask kind");
}

} // namespace consent

using namespace consent;

namespace {

/* The parsed mask of the last call of consent.mask_value, per call site. */
struct MaskValueCache {
    Oid type;
    Oid base_type;
    MaskSpec spec;
    int mask_len;
    char mask[FLEXIBLE_ARRAY_MEMBER];
};

} // namespace

/* consent.mask_value(value anyelement, mask text) RETURNS anyelement */
CONSENT_FUNCTION(consent_mask_value)
{
    return entry([&]() -> Datum {
        if (PG_ARGISNULL(1))
            throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "mask must not be null", "",
                        "To mask a value with NULL, use the mask 'null'.");
        if (PG_ARGISNULL(0))
            PG_RETURN_NULL();
        Oid type = get_fn_expr_argtype(fcinfo->flinfo, 0);
        if (!OidIsValid(type))
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "could not determine the type of the value to mask");
        text *mask = pg([&] { return PG_GETARG_TEXT_PP(1); });
        const char *mask_data = VARDATA_ANY(mask);
        int mask_len = static_cast<int>(VARSIZE_ANY_EXHDR(mask));

        auto *cache = static_cast<MaskValueCache *>(fcinfo->flinfo->fn_extra);
        if (!cache || cache->type != type || cache->mask_len != mask_len ||
            memcmp(cache->mask, mask_data, static_cast<size_t>(mask_len)) != 0) {
            Oid base_type = pg([&] { return getBaseType(type); });
            MaskSpec spec = parse_mask(std::string(mask_data, static_cast<size_t>(mask_len)), base_type);
            if (!cache || cache->mask_len < mask_len) {
                void *mem = pg([&] {
                    return MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
                                              offsetof(MaskValueCache, mask) + static_cast<size_t>(mask_len));
                });
                if (cache)
                    pg([&] { pfree(cache); });
                cache = static_cast<MaskValueCache *>(mem);
                fcinfo->flinfo->fn_extra = cache;
            }
            cache->type = type;
            cache->base_type = base_type;
            new (&cache->spec) MaskSpec(spec);
            cache->mask_len = mask_len;
            memcpy(cache->mask, mask_data, static_cast<size_t>(mask_len));
        }
        MaskedValue m = mask_of(cache->spec, PG_GETARG_DATUM(0), cache->base_type);
        if (m.isnull)
            PG_RETURN_NULL();
        return m.value;
    });
}

/* consent.check_mask(mask text, base_type regtype) RETURNS void */
CONSENT_FUNCTION(consent_check_mask)
{
    return entry([&]() -> Datum {
        if (PG_ARGISNULL(0))
            throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "mask must not be null");
        if (PG_ARGISNULL(1))
            throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "type must not be null");
        std::string spec = pg([&] { return text_to_cstring(PG_GETARG_TEXT_PP(0)); });
        parse_mask(spec, PG_GETARG_OID(1));
        PG_RETURN_VOID();
    });
}
