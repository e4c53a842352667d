/*
 * mask_fuzzer.cpp — libFuzzer target for the masks of pg_consent: the mask
 * spec parser (consent::parse_mask: keywords, partial(p,s), function names)
 * and the masks themselves (consent::apply_mask: null, redact, partial,
 * email, initials, hash on text, varchar, char and bytea; generalize on
 * inet and cidr), built from src/mask.cpp and src/boundary.cpp unchanged,
 * with clang -fsanitize=fuzzer,address,undefined.  See README.md.
 *
 * Each input picks a type, a mask spec (arbitrary bytes, or a well-formed
 * spec with fuzzed numbers) and a value (arbitrary bytes: valid or invalid
 * UTF-8, any length).  Besides memory errors and undefined behaviour, the
 * harness aborts when a promise of src/mask.h is broken:
 *  - an error is a consent::Error with a documented SQLSTATE and a message
 *    that is valid UTF-8 (no bytes of a bad value or spec in it);
 *  - 22021 exactly when a mask that reads characters meets invalid UTF-8;
 *  - a text result is valid UTF-8;
 *  - partial(p,s) shows exactly the first p and the last s user-perceived
 *    characters (cut at grapheme boundaries) around '***', and never the
 *    whole value; email shows the first character of the local part,
 *    '***' and the domain; redact, hash and null give their fixed forms;
 *  - generalize keeps at most /24 (IPv4) or /48 (IPv6) and zeroes the host
 *    bits.
 */
#include "boundary.h"
#include "mask.h"

extern "C" {
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include <sys/socket.h> /* AF_INET, used by utils/inet.h */
#include "utils/inet.h"
}

#include <fuzzer/FuzzedDataProvider.h>
#include <unicode/brkiter.h>
#include <unicode/locid.h>
#include <unicode/utext.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "pg_stubs.h"

namespace consent {
/* defined in src/pg_consent.cpp in the extension */
char *pseudonym_key = const_cast<char *>("fuzz-key");
} // namespace consent

namespace {

const Oid types[] = {TEXTOID, VARCHAROID, BPCHAROID, BYTEAOID,  INETOID, CIDROID,
                     DATEOID, TIMESTAMPOID, TIMESTAMPTZOID, INT4OID, JSONBOID, 4242 /* no such type */};

bool is_textlike(Oid t) { return t == TEXTOID || t == VARCHAROID || t == BPCHAROID; }

bool valid_utf8(const std::string &s)
{
    return pg_encoding_verifymbstr(PG_UTF8, s.data(), static_cast<int>(s.size())) == static_cast<int>(s.size());
}

[[noreturn]] void broken(const char *promise, const std::string &detail = {})
{
    fprintf(stderr, "mask_fuzzer: broken promise: %s %s\n", promise, detail.c_str());
    abort();
}

/* Grapheme boundaries of valid UTF-8, with an iterator of our own. */
std::vector<int32_t> boundaries(const std::string &s)
{
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::BreakIterator> bi(icu::BreakIterator::createCharacterInstance(icu::Locale::getRoot(), status));
    UText ut = UTEXT_INITIALIZER;
    utext_openUTF8(&ut, s.data(), static_cast<int64_t>(s.size()), &status);
    bi->setText(&ut, status);
    if (U_FAILURE(status))
        broken("ICU could not segment valid UTF-8");
    std::vector<int32_t> out;
    for (int32_t b = bi->first(); b != icu::BreakIterator::DONE; b = bi->next())
        out.push_back(b);
    utext_close(&ut);
    return out;
}

std::string text_of(Datum d)
{
    const text *t = reinterpret_cast<const text *>(DatumGetPointer(d));
    return std::string(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

void check_partial(const std::string &s, const std::string &out, int prefix, int suffix)
{
    std::vector<int32_t> b = boundaries(s); /* b[0] = 0, b.back() = size */
    size_t graphemes = b.size() - 1;
    if (size_t(prefix) + size_t(suffix) >= graphemes) {
        if (out != "***")
            broken("partial: a value of at most prefix+suffix characters must be only ***", out);
        return;
    }
    size_t head = size_t(b[size_t(prefix)]);
    size_t tail = size_t(b[graphemes - size_t(suffix)]);
    std::string want = s.substr(0, head) + "***" + s.substr(tail);
    if (out != want)
        broken("partial: not the first p and last s characters around ***", out + " instead of " + want);
    if (head + (s.size() - tail) >= s.size())
        broken("partial: shows the whole value");
}

void check_email(const std::string &s, const std::string &out)
{
    size_t at = s.rfind('@');
    if (at == std::string::npos) {
        if (out != "***")
            broken("email: without @ it must be ***", out);
        return;
    }
    std::string first;
    if (at > 0) {
        std::vector<int32_t> b = boundaries(s.substr(0, at));
        first = s.substr(0, size_t(b[1]));
    }
    if (out != first + "***" + s.substr(at))
        broken("email: not first character, ***, @domain", out);
}

void check_result(const consent::MaskSpec &m, Oid type, const std::string &raw, Datum r, bool isnull)
{
    using consent::MaskKind;
    if (m.kind == MaskKind::Null) {
        if (!isnull)
            broken("null: the result must be NULL");
        return;
    }
    if (isnull)
        broken("only the null mask gives NULL");
    if (type == INETOID || type == CIDROID) {
        const inet *in = reinterpret_cast<const inet *>(DatumGetPointer(r));
        int limit = ip_family(in) == PGSQL_AF_INET ? 24 : 48;
        if (ip_bits(in) > limit)
            broken("generalize: keeps more than /24 or /48");
        for (int i = 0; i < ip_addrsize(const_cast<inet *>(in)); i++) {
            int keep = ip_bits(in) - 8 * i;
            unsigned char mask = keep >= 8 ? 0xFF : keep <= 0 ? 0 : static_cast<unsigned char>(0xFF << (8 - keep));
            if (ip_addr(in)[i] & ~mask)
                broken("generalize: host bits not zeroed");
        }
        return;
    }
    if (type == BYTEAOID) {
        if (m.kind == MaskKind::Hash && VARSIZE_ANY_EXHDR(DatumGetPointer(r)) != 32)
            broken("hash: a bytea pseudonym has 32 bytes");
        return;
    }
    std::string out = text_of(r);
    if (!valid_utf8(out))
        broken("a text result must be valid UTF-8");
    std::string s = raw;
    if (type == BPCHAROID)
        while (!s.empty() && s.back() == ' ')
            s.pop_back();
    switch (m.kind) {
    case MaskKind::Redact:
        if (out != "[redacted]")
            broken("redact", out);
        break;
    case MaskKind::Hash:
        if (out.size() != 18 || out.compare(0, 2, "h:") != 0 ||
            out.find_first_not_of("0123456789abcdef", 2) != std::string::npos)
            broken("hash: h: and 16 hex digits", out);
        break;
    case MaskKind::Partial:
        check_partial(s, out, m.prefix, m.suffix);
        break;
    case MaskKind::Email:
        check_email(s, out);
        break;
    default:
        break; /* initials: valid UTF-8 is what is checked */
    }
}

/* A value of the type from the fuzzer's bytes. */
Datum make_value(Oid type, const std::string &bytes)
{
    if (type == INETOID || type == CIDROID) {
        inet *in = static_cast<inet *>(palloc0(sizeof(inet)));
        bool v4 = bytes.empty() || (bytes[0] & 1);
        ip_family(in) = v4 ? PGSQL_AF_INET : PGSQL_AF_INET6;
        int max = v4 ? 32 : 128;
        ip_bits(in) = static_cast<unsigned char>(bytes.size() > 1 ? static_cast<unsigned char>(bytes[1]) % (max + 1) : max);
        for (int i = 0; i < ip_addrsize(in) && size_t(i + 2) < bytes.size(); i++)
            ip_addr(in)[i] = static_cast<unsigned char>(bytes[size_t(i) + 2]);
        SET_INET_VARSIZE(in);
        return PointerGetDatum(in);
    }
    /* text, varchar, char and bytea share the varlena layout */
    return PointerGetDatum(cstring_to_text_with_len(bytes.data(), static_cast<int>(bytes.size())));
}

/* Whether apply_mask can run in this harness: date and timestamp arithmetic
 * is PostgreSQL's (not linked), so those values are only parsed. */
bool appliable(Oid type, const consent::MaskSpec &m)
{
    if (m.kind == consent::MaskKind::Null)
        return true;
    return is_textlike(type) || type == BYTEAOID || type == INETOID || type == CIDROID;
}

std::string well_formed_spec(FuzzedDataProvider &in)
{
    static const char *const words[] = {"null",  "redact", "email", "initials", "hash", "generalize",
                                        "year",  "month",  "pg_catalog.upper", "Email", " hash\t"};
    if (in.ConsumeBool())
        return "partial(" + std::to_string(in.ConsumeIntegralInRange(0, 1001)) + "," +
               std::to_string(in.ConsumeIntegralInRange(0, 1001)) + ")";
    return words[in.ConsumeIntegralInRange<size_t>(0, sizeof(words) / sizeof(words[0]) - 1)];
}

void one_input(FuzzedDataProvider &in)
{
    Oid type = types[in.ConsumeIntegralInRange<size_t>(0, sizeof(types) / sizeof(types[0]) - 1)];
    std::string spec = in.ConsumeBool() ? in.ConsumeRandomLengthString(96) : well_formed_spec(in);
    std::string value = in.ConsumeRemainingBytesAsString();
    bool reads_characters = false;
    try {
        consent::MaskSpec m = consent::parse_mask(spec, type);
        if (!appliable(type, m))
            return;
        using consent::MaskKind;
        reads_characters =
            is_textlike(type) && (m.kind == MaskKind::Partial || m.kind == MaskKind::Email || m.kind == MaskKind::Initials);
        bool isnull = false;
        Datum r = consent::apply_mask(m, make_value(type, value), type, &isnull);
        if (reads_characters && !valid_utf8(value))
            broken("a mask that reads characters accepted invalid UTF-8");
        check_result(m, type, value, r, isnull);
    } catch (const consent::Error &e) {
        if (!valid_utf8(e.what()) || !valid_utf8(e.detail()) || !valid_utf8(e.hint()))
            broken("an error message must be valid UTF-8", e.what());
        std::string code;
        for (int i = 0, packed = e.sqlstate(); i < 5; i++, packed >>= 6)
            code.push_back(static_cast<char>(PGUNSIXBIT(packed)));
        if (code == "22021") {
            if (!reads_characters || valid_utf8(value))
                broken("22021 for a value that is valid UTF-8 or a mask that reads no characters", e.what());
        } else if (code != "22023" && code != "42883" && code != "42804" && code != "42704") {
            broken("an undocumented SQLSTATE", code + " " + e.what());
        }
    } catch (const consent::PgError &e) {
        broken("a PostgreSQL error escaped", e.what());
    } catch (const std::exception &e) {
        broken("a C++ exception escaped", e.what());
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzedDataProvider in(data, size);
    one_input(in);
    fuzz_reset_memory();
    return 0;
}
