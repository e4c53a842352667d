/*
 * discover.cpp — consent.discover(): finds untagged columns that look like
 * personal data, from their names (English and German) and from a bounded
 * sample of their values, and suggests a data category for each.
 *
 * Owns: the value checks (ICU regular expressions for e-mail addresses,
 * phone numbers, IBANs, dates, names and street addresses; the IBAN mod-97
 * checksum; calendar checks of dates; IPv4/IPv6 parsing), the column-name
 * hints, and the confidence that combines both.
 * Must never: read a value the caller may not read (the samples are read as
 * the caller, through the normal executor with its row-level security and
 * masking, and only from columns the caller holds SELECT privilege on);
 * return or log a sampled value; run unbounded (a row cap and a time budget
 * per table).
 */
#include "boundary.h"
#include "compat.h"
#include "consent.h"
#include "spi.h"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/timeout.h"
#include "utils/tuplestore.h"
}

#include <unicode/regex.h>
#include <unicode/unistr.h>

#include <arpa/inet.h>
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace consent {

namespace {

/* How long sampling one table may take before it is given up. */
constexpr int sample_budget_ms = 2000;
/* Values longer than this are free text, not one datum: not checked. */
constexpr int max_value_chars = 256;
/* Suggestions below this confidence are not listed. */
constexpr double min_confidence = 0.1;

/* ---------------------------------------------------------------------
 * What a column may hold
 * --------------------------------------------------------------------- */

enum Kind { Email, Phone, Iban, Birthdate, Ip, PersonName, Address, NKinds };

struct KindInfo {
    const char *category; /* fideslang key suggested */
    const char *values;   /* what matching values are, for the reason text */
    const char *hint;     /* what the column name suggests */
    double weight;        /* how much a full match of the values alone proves */
    bool from_values;     /* values alone may suggest it (else only with a name hint) */
};

const KindInfo kinds[NKinds] = {
    {"user.contact.email", "e-mail addresses", "an e-mail address", 0.95, true},
    {"user.contact.phone_number", "phone numbers", "a phone number", 0.75, true},
    {"user.financial.bank_account", "IBANs with a valid checksum", "an IBAN", 0.99, true},
    {"user.demographic.date_of_birth", "plausible birth dates (1900 to 13 years ago)", "a date of birth", 0.5, true},
    {"user.device.ip_address", "IP addresses", "an IP address", 0.9, true},
    {"user.name", "name-like values", "a person's name", 0.3, false},
    {"user.contact.address", "address-like values", "a postal address", 0.4, false},
};

/* Column name hints, matched against the normalized name (lowercase words
 * joined by '_', camelCase split, trailing digits dropped) as the whole name
 * or its last words ("customer_email"); the longest match wins. */
struct NameHint {
    const char *words;
    Kind kind;
    double strength;
    bool whole_name_only;
};

const NameHint name_hints[] = {
    {"email", Email, 0.8, false},
    {"e_mail", Email, 0.8, false},
    {"email_address", Email, 0.9, false},
    {"e_mail_address", Email, 0.9, false},
    {"email_addr", Email, 0.9, false},
    {"mail_address", Email, 0.8, false},
    {"emailaddress", Email, 0.9, false},
    {"email_adresse", Email, 0.9, false},
    {"mailadresse", Email, 0.8, false},
    {"mail", Email, 0.5, false},
    {"phone", Phone, 0.8, false},
    {"telephone", Phone, 0.8, false},
    {"phone_number", Phone, 0.9, false},
    {"phonenumber", Phone, 0.9, false},
    {"phone_no", Phone, 0.8, false},
    {"tel", Phone, 0.5, false},
    {"telefon", Phone, 0.8, false},
    {"telefonnummer", Phone, 0.9, false},
    {"handy", Phone, 0.8, false},
    {"handynummer", Phone, 0.9, false},
    {"mobile", Phone, 0.7, false},
    {"mobile_number", Phone, 0.9, false},
    {"mobil", Phone, 0.7, false},
    {"mobilnummer", Phone, 0.9, false},
    {"fax", Phone, 0.6, false},
    {"iban", Iban, 0.9, false},
    {"geburtsdatum", Birthdate, 0.9, false},
    {"geburtstag", Birthdate, 0.8, false},
    {"birthday", Birthdate, 0.9, false},
    {"birthdate", Birthdate, 0.9, false},
    {"birth_date", Birthdate, 0.9, false},
    {"date_of_birth", Birthdate, 0.9, false},
    {"dob", Birthdate, 0.8, false},
    {"born", Birthdate, 0.5, false},
    {"ip", Ip, 0.8, false},
    {"ip_address", Ip, 0.9, false},
    {"ip_addr", Ip, 0.9, false},
    {"ipaddress", Ip, 0.9, false},
    {"ipaddr", Ip, 0.9, false},
    {"ipv4", Ip, 0.8, false},
    {"ipv6", Ip, 0.8, false},
    {"name", PersonName, 0.5, true},
    {"first_name", PersonName, 0.8, false},
    {"firstname", PersonName, 0.8, false},
    {"last_name", PersonName, 0.8, false},
    {"lastname", PersonName, 0.8, false},
    {"given_name", PersonName, 0.8, false},
    {"family_name", PersonName, 0.8, false},
    {"full_name", PersonName, 0.8, false},
    {"fullname", PersonName, 0.8, false},
    {"middle_name", PersonName, 0.8, false},
    {"maiden_name", PersonName, 0.8, false},
    {"surname", PersonName, 0.8, false},
    {"vorname", PersonName, 0.8, false},
    {"nachname", PersonName, 0.8, false},
    {"familienname", PersonName, 0.8, false},
    {"customer_name", PersonName, 0.7, false},
    {"strasse", Address, 0.8, false},
    {"straße", Address, 0.8, false},
    {"street", Address, 0.8, false},
    {"street_address", Address, 0.9, false},
    {"adresse", Address, 0.8, false},
    {"address", Address, 0.8, false},
    {"anschrift", Address, 0.8, false},
    {"addr", Address, 0.5, false},
    {"plz", Address, 0.7, false},
    {"postleitzahl", Address, 0.8, false},
    {"zip", Address, 0.7, false},
    {"zip_code", Address, 0.8, false},
    {"zipcode", Address, 0.8, false},
    {"postcode", Address, 0.8, false},
    {"postal_code", Address, 0.8, false},
    {"hausnummer", Address, 0.7, false},
    {"house_number", Address, 0.7, false},
};

/* The normalized form of a column name: "customerEMail2" -> "customer_e_mail". */
std::string normalize_name(const std::string &name)
{
    std::vector<std::string> words(1);
    auto is_upper = [](char c) { return c >= 'A' && c <= 'Z'; };
    auto is_lower = [](char c) { return c >= 'a' && c <= 'z'; };
    for (size_t i = 0; i < name.size(); i++) {
        char c = name[i];
        bool alnum = is_upper(c) || is_lower(c) || (c >= '0' && c <= '9') || (static_cast<unsigned char>(c) >= 0x80);
        if (!alnum) {
            if (!words.back().empty())
                words.emplace_back();
            continue;
        }
        if (is_upper(c) && i > 0 && is_lower(name[i - 1]) && !words.back().empty())
            words.emplace_back();
        words.back() += is_upper(c) ? char(c - 'A' + 'a') : c;
    }
    std::string out;
    for (auto &w : words) {
        while (!w.empty() && w.back() >= '0' && w.back() <= '9')
            w.pop_back();
        if (w.empty())
            continue;
        if (!out.empty())
            out += '_';
        out += w;
    }
    return out;
}

/* The strongest name hint for a column, or none. */
const NameHint *name_hint(const std::string &column)
{
    std::string n = normalize_name(column);
    const NameHint *best = nullptr;
    size_t best_len = 0;
    for (const auto &h : name_hints) {
        std::string w(h.words);
        bool match = n == w;
        if (!match && !h.whole_name_only && n.size() > w.size() + 1)
            match = n.compare(n.size() - w.size(), w.size(), w) == 0 && n[n.size() - w.size() - 1] == '_';
        if (match && w.size() > best_len) {
            best = &h;
            best_len = w.size();
        }
    }
    return best;
}

/* ---------------------------------------------------------------------
 * Value checks
 * --------------------------------------------------------------------- */

/* The compiled ICU patterns, once per backend. */
struct Patterns {
    std::unique_ptr<icu::RegexPattern> email, phone_intl, phone_national, phone_nanp, iban, date_iso, date_dmy,
        date_slash, date_ymd_slash, person_name, street_de, street_en, street_generic, postcode;
};

/* Compiles one ICU pattern; a failure is a bug of ours (XX000). */
std::unique_ptr<icu::RegexPattern> compile(const char *re, uint32_t flags = 0)
{
    UErrorCode status = U_ZERO_ERROR;
    UParseError perr;
    std::unique_ptr<icu::RegexPattern> p(
        icu::RegexPattern::compile(icu::UnicodeString::fromUTF8(re), flags, perr, status));
    if (U_FAILURE(status) || !p)
        throw Error(ERRCODE_INTERNAL_ERROR,
                    std::string("could not compile a discovery pattern: ") + u_errorName(status),
                    std::string("Pattern: ") + re);
    return p;
}

/* The patterns, compiled on first use. */
const Patterns &patterns()
{
    static std::unique_ptr<Patterns> p;
    if (p)
        return *p;
    auto n = std::make_unique<Patterns>();
    const char *label = R"([\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?)";
    n->email = compile(
        (std::string(R"(^[\p{L}\p{N}.!#\$%\&'*+/=?\^_`\{|\}~\-]{1,64}@(?:)") + label + R"(\.)+\p{L}{2,63}$)").c_str());
    /* +49 30 1234567, +1-202-555-0143, 0049 (0)30 1234567 */
    n->phone_intl = compile(R"(^(?:\+|00)[1-9](?:[ .\-/]?(?:\(0\)|\([0-9]{1,5}\)|[0-9]+))+$)");
    /* (030) 1234-567, 030 1234567, 0301234567 */
    n->phone_national = compile(R"(^(?:\(0[0-9]{1,5}\)|0[0-9]{1,5})(?:[ .\-/]?[0-9]+)+$)");
    /* (202) 555-0143, 202-555-0143 */
    n->phone_nanp = compile(R"(^(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}$)");
    n->iban = compile(R"(^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$)");
    n->date_iso = compile(R"(^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[ T][0-9:.+\- ]*)?$)");
    n->date_dmy = compile(R"(^([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})$)");
    n->date_slash = compile(R"(^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})$)");
    n->date_ymd_slash = compile(R"(^([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})$)");
    n->person_name = compile(R"(^\p{Lu}[\p{Ll}\p{Lo}\p{M}'’\-]*\.?(?:[ \-]\p{Lu}[\p{Ll}\p{Lo}\p{M}'’\-]*\.?){0,4}$)");
    n->street_de = compile(
        R"(^[\p{L}\p{M} .'\-]*(?:stra(?:ß|ss)e|str\.|weg|gasse|platz|allee|ring|damm|ufer)\s*[0-9]{1,4}\s?[a-z]?\b.*$)",
        UREGEX_CASE_INSENSITIVE);
    n->street_en = compile(
        R"(^[0-9]{1,5}[a-z]?\s+[\p{L}\p{M}0-9 .'\-]+\s(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|boulevard|blvd|court|ct|place|pl)\b.*$)",
        UREGEX_CASE_INSENSITIVE);
    n->street_generic = compile(R"(^\p{L}[\p{L}\p{M} .'\-]+\s[0-9]{1,4}\s?[a-zA-Z]?(?:,.*)?$)");
    n->postcode = compile(R"(^(?:[0-9]{5}(?:-[0-9]{4})?|[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})$)");
    p = std::move(n);
    return *p;
}

/* One matcher per pattern for the values of one discover() call. */
class Matcher {
  public:
    explicit Matcher(const icu::RegexPattern &p)
    {
        UErrorCode status = U_ZERO_ERROR;
        m_.reset(p.matcher(status));
        if (U_FAILURE(status) || !m_)
            throw Error(ERRCODE_INTERNAL_ERROR, std::string("could not create a matcher: ") + u_errorName(status));
    }
    /* Whether the whole input matches; groups are then available. */
    bool matches(const icu::UnicodeString &s)
    {
        UErrorCode status = U_ZERO_ERROR;
        m_->reset(s);
        bool ok = m_->matches(status);
        return U_SUCCESS(status) && ok;
    }
    int group_int(int g)
    {
        UErrorCode status = U_ZERO_ERROR;
        icu::UnicodeString s = m_->group(g, status);
        if (U_FAILURE(status))
            return -1;
        int v = 0;
        for (int i = 0; i < s.length(); i++)
            v = v * 10 + (s[i] - '0');
        return v;
    }

  private:
    std::unique_ptr<icu::RegexMatcher> m_;
};

/* Whether y-m-d is a day of the Gregorian calendar. */
bool valid_date(int y, int m, int d)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap ? 1 : 0);
}

/* The value checks of one call. */
class Checker {
  public:
    /* latest_birth: today minus 13 years as yyyymmdd */
    explicit Checker(int latest_birth)
        : latest_birth_(latest_birth), email_(*patterns().email), phone_intl_(*patterns().phone_intl),
          phone_national_(*patterns().phone_national), phone_nanp_(*patterns().phone_nanp), iban_(*patterns().iban),
          date_iso_(*patterns().date_iso), date_dmy_(*patterns().date_dmy), date_slash_(*patterns().date_slash),
          date_ymd_slash_(*patterns().date_ymd_slash), person_name_(*patterns().person_name),
          street_de_(*patterns().street_de), street_en_(*patterns().street_en),
          street_generic_(*patterns().street_generic), postcode_(*patterns().postcode)
    {
    }

    bool email(const icu::UnicodeString &v) { return email_.matches(v); }

    bool phone(const std::string &v, const icu::UnicodeString &u)
    {
        if (date(u).has_value())
            return false;
        bool intl = phone_intl_.matches(u);
        if (!intl && !phone_national_.matches(u) && !phone_nanp_.matches(u))
            return false;
        size_t digits = 0, start = 0;
        if (intl && v.rfind("00", 0) == 0)
            start = 2;
        for (size_t i = start; i < v.size(); i++)
            if (v[i] >= '0' && v[i] <= '9')
                digits++;
        return digits >= 7 && digits <= 15;
    }

    bool iban(const std::string &v)
    {
        std::string s;
        for (char c : v) {
            if (c == ' ')
                continue;
            s += (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c;
        }
        if (s.size() < 15 || s.size() > 34 || !iban_.matches(icu::UnicodeString::fromUTF8(s)))
            return false;
        /* ISO 13616: the country code and check digits move to the end,
         * letters count as 10..35, and the number is 1 modulo 97 */
        std::string r = s.substr(4) + s.substr(0, 4);
        int mod = 0;
        for (char c : r) {
            if (c >= '0' && c <= '9')
                mod = (mod * 10 + (c - '0')) % 97;
            else
                mod = (mod * 100 + (c - 'A' + 10)) % 97;
        }
        return mod == 1;
    }

    /* yyyymmdd of a date written as 1987-06-05, 05.06.1987, 06/05/1987 or
     * 1987/06/05 (day and month of d/m/y are tried both ways). */
    std::optional<int> date(const icu::UnicodeString &u)
    {
        auto ymd = [](int y, int m, int d) -> std::optional<int> {
            if (!valid_date(y, m, d))
                return std::nullopt;
            return y * 10000 + m * 100 + d;
        };
        if (date_iso_.matches(u))
            return ymd(date_iso_.group_int(1), date_iso_.group_int(2), date_iso_.group_int(3));
        if (date_ymd_slash_.matches(u))
            return ymd(date_ymd_slash_.group_int(1), date_ymd_slash_.group_int(2), date_ymd_slash_.group_int(3));
        if (date_dmy_.matches(u))
            return ymd(date_dmy_.group_int(3), date_dmy_.group_int(2), date_dmy_.group_int(1));
        if (date_slash_.matches(u)) {
            int a = date_slash_.group_int(1), b = date_slash_.group_int(2), y = date_slash_.group_int(3);
            if (auto us = ymd(y, a, b))
                return us;
            return ymd(y, b, a);
        }
        return std::nullopt;
    }

    bool birthdate(const icu::UnicodeString &u)
    {
        auto d = date(u);
        return d && *d >= 19000101 && *d <= latest_birth_;
    }

    static bool ip(const std::string &v)
    {
        unsigned char buf[16];
        std::string s = v;
        auto slash = s.find('/');
        if (slash != std::string::npos) /* inet values may carry a netmask */
            s.resize(slash);
        return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
    }

    bool person_name(const icu::UnicodeString &u) { return person_name_.matches(u); }

    bool address(const icu::UnicodeString &u)
    {
        return street_de_.matches(u) || street_en_.matches(u) || street_generic_.matches(u) || postcode_.matches(u);
    }

  private:
    int latest_birth_;
    Matcher email_, phone_intl_, phone_national_, phone_nanp_, iban_, date_iso_, date_dmy_, date_slash_,
        date_ymd_slash_, person_name_, street_de_, street_en_, street_generic_, postcode_;
};

/* ---------------------------------------------------------------------
 * Columns, sampling and the result
 * --------------------------------------------------------------------- */

/* How a column's values are sampled. */
enum class Sampling { None, Text, Date, Inet };

struct Column {
    std::string name;
    Sampling sampling = Sampling::None;
    bool readable = false;
    const NameHint *hint = nullptr;
    int64 sampled = 0; /* non-null values examined */
    int64 matches[NKinds] = {};
    bool was_sampled = false;
};

struct Table {
    Oid relid = InvalidOid;
    char relkind = 'r';
    double reltuples = -1;
    double relpages = 0;
    std::string qualified; /* quoted schema.table */
    std::vector<Column> columns;
    std::string failure; /* why sampling did not happen */
};

struct Suggestion {
    Oid relid;
    std::optional<std::string> column;
    std::optional<std::string> category;
    std::optional<int64> matches, sampled;
    double confidence;
    std::string reason;
};

/* How values of a column type are sampled (domains by their base type). */
Sampling sampling_of(Oid type)
{
    Oid base = getBaseType(type);
    if (base == DATEOID || base == TIMESTAMPOID || base == TIMESTAMPTZOID)
        return Sampling::Date;
    if (base == INETOID)
        return Sampling::Inet;
    char category;
    bool preferred;
    get_type_category_preferred(base, &category, &preferred);
    return category == TYPCATEGORY_STRING ? Sampling::Text : Sampling::None;
}

/* The SQL expression that reads one column for the checks. */
std::string sample_expr(const Column &c)
{
    std::string q = quote_identifier(c.name.c_str());
    switch (c.sampling) {
    case Sampling::Date:
        return "pg_catalog.to_char(" + q + ", 'YYYY-MM-DD')";
    case Sampling::Inet:
        return "pg_catalog.host(" + q + ")";
    default:
        return "pg_catalog.left(" + q + "::pg_catalog.text, " + std::to_string(max_value_chars + 1) + ")";
    }
}

/* SPI as the calling role (no change of user: the caller's privileges,
 * row-level security and masking apply), finished when the scope ends. */
class CallerSpi {
  public:
    CallerSpi()
    {
        pg([] {
            if (SPI_connect() != SPI_OK_CONNECT)
                elog(ERROR, "SPI_connect failed");
        });
    }
    ~CallerSpi()
    {
        try {
            pg([] { SPI_finish(); });
        } catch (...) {
            /* already failing: the transaction abort cleans up SPI */
        }
    }
    CallerSpi(const CallerSpi &) = delete;
    CallerSpi &operator=(const CallerSpi &) = delete;
};

using TextRow = Row;

/* Runs a read-only query with text parameters and returns text values. */
std::vector<TextRow> query_text(const std::string &sql, const std::vector<std::string> &params, long limit = 0)
{
    int n = int(params.size());
    std::vector<Oid> types(n, TEXTOID);
    std::vector<Datum> values(n);
    pg([&] {
        for (int i = 0; i < n; i++)
            values[i] = CStringGetTextDatum(params[i].c_str());
        int rc = SPI_execute_with_args(sql.c_str(), n, types.data(), values.data(), nullptr, true, limit);
        if (rc != SPI_OK_SELECT)
            elog(ERROR, "SPI query failed: %s", SPI_result_code_string(rc));
    });
    return spi_text_rows();
}

/* The per-table time budget: a timeout of our own that cancels the running
 * sample query like a statement timeout, and only that query. */
int sample_timeout_id = -1;
volatile sig_atomic_t sample_timed_out = 0;

/* Signal-time handler of the sampling timer: cancels the running query. */
void sample_timeout_handler(void)
{
    sample_timed_out = 1;
    InterruptPending = true;
    QueryCancelPending = true;
    SetLatch(MyLatch);
}

/* Stops the sampling timer if it runs. */
void disarm_sample_timeout()
{
    if (sample_timeout_id >= 0)
        disable_timeout(TimeoutId(sample_timeout_id), false);
}

/* Runs body in an internal subtransaction.  Returns the PostgreSQL error it
 * raised (the subtransaction then rolled back) or nullptr. */
template <typename F> ErrorData *in_subtransaction(F &&body)
{
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    pg([&] {
        BeginInternalSubTransaction(nullptr);
        MemoryContextSwitchTo(cxt);
    });
    auto rollback = [&] {
        pg([&] {
            disarm_sample_timeout();
            RollbackAndReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(cxt);
            CurrentResourceOwner = owner;
        });
    };
    try {
        body();
    } catch (const PgError &e) {
        rollback();
        return e.edata();
    } catch (...) {
        rollback();
        throw;
    }
    pg([&] {
        ReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(cxt);
        CurrentResourceOwner = owner;
    });
    return nullptr;
}

/* Converts a value in the database encoding to an ICU string. */
icu::UnicodeString to_unicode(const std::string &v)
{
    int enc = GetDatabaseEncoding();
    if (enc == PG_UTF8 || enc == PG_SQL_ASCII)
        return icu::UnicodeString::fromUTF8(v);
    char *utf8 = pg([&] { return pg_server_to_any(v.c_str(), int(v.size()), PG_UTF8); });
    icu::UnicodeString u = icu::UnicodeString::fromUTF8(utf8);
    if (utf8 != v.c_str())
        pg([&] { pfree(utf8); });
    return u;
}

/* Reads a sample of the table's readable columns and runs the checks. */
void sample_table(Table &t, int sample_rows, Checker &check)
{
    std::vector<size_t> cols;
    for (size_t i = 0; i < t.columns.size(); i++)
        if (t.columns[i].readable && t.columns[i].sampling != Sampling::None)
            cols.push_back(i);
    if (cols.empty())
        return;
    std::string list;
    for (size_t k = 0; k < cols.size(); k++)
        list += (k ? ", " : "") + sample_expr(t.columns[cols[k]]);
    /* a partitioned table is sampled through its partitions; inheritance
     * children of an ordinary table are tables of their own */
    std::string from = (t.relkind == 'p' ? "" : "ONLY ") + t.qualified;
    std::string limit = " LIMIT " + std::to_string(sample_rows);
    std::string plain = "SELECT " + list + " FROM " + from + limit;
    std::string sql = plain;
    /* large tables: a page sample (SYSTEM reads only the pages it picks) of
     * about three times sample_rows rows and at least 16 pages, shuffled so
     * that the LIMIT does not keep the rows of the first pages only */
    if (t.reltuples > 10.0 * sample_rows && t.relpages > 0) {
        double pct = std::min(100.0, 100.0 * std::max(3.0 * sample_rows / t.reltuples, 16.0 / t.relpages));
        char buf[64];
        snprintf(buf, sizeof buf, "%.6f", pct);
        sql = "SELECT * FROM (SELECT " + list + " FROM " + from + " TABLESAMPLE SYSTEM (" + buf +
              ") REPEATABLE (0)) s ORDER BY pg_catalog.random()" + limit;
    }

    if (sample_timeout_id < 0)
        sample_timeout_id = pg([] { return int(RegisterTimeout(USER_TIMEOUT, sample_timeout_handler)); });
    std::vector<TextRow> rows;
    ErrorData *err = in_subtransaction([&] {
        sample_timed_out = 0;
        pg([&] { enable_timeout_after(TimeoutId(sample_timeout_id), sample_budget_ms); });
        rows = query_text(sql, {}, sample_rows);
        if (rows.empty() && sql != plain) /* the page sample missed every row */
            rows = query_text(plain, {}, sample_rows);
        pg([] { disarm_sample_timeout(); });
    });
    bool ours = sample_timed_out;
    sample_timed_out = 0;
    if (err) {
        if (err->sqlerrcode == ERRCODE_QUERY_CANCELED && ours) {
            t.failure = "sampling took longer than " + std::to_string(sample_budget_ms / 1000) + " s and was stopped";
            return;
        }
        if (err->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE || err->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE) {
            t.failure = std::string("sampling failed: ") + (err->message ? err->message : "error");
            return;
        }
        throw PgError(err);
    }
    if (ours) /* fired after the query ended: the cancel is ours, not the user's */
        QueryCancelPending = false;

    for (auto &row : rows) {
        for (size_t k = 0; k < cols.size(); k++) {
            Column &c = t.columns[cols[k]];
            if (!row[k])
                continue;
            const std::string &v = *row[k];
            c.sampled++;
            if (c.sampling == Sampling::Inet) {
                c.matches[Ip]++;
                continue;
            }
            icu::UnicodeString u = to_unicode(v);
            if (u.length() > max_value_chars)
                continue;
            u.trim();
            if (c.sampling == Sampling::Date) {
                if (check.birthdate(u))
                    c.matches[Birthdate]++;
                continue;
            }
            std::string s;
            u.toUTF8String(s);
            if (check.email(u))
                c.matches[Email]++;
            if (check.phone(s, u))
                c.matches[Phone]++;
            if (check.iban(s))
                c.matches[Iban]++;
            if (check.birthdate(u))
                c.matches[Birthdate]++;
            if (Checker::ip(s))
                c.matches[Ip]++;
            if (check.person_name(u))
                c.matches[PersonName]++;
            if (check.address(u))
                c.matches[Address]++;
        }
    }
    for (size_t k : cols)
        t.columns[k].was_sampled = true;
}

/* Whether the column's values can show this kind at all. */
bool checkable(Sampling s, Kind k)
{
    switch (s) {
    case Sampling::Text:
        return true;
    case Sampling::Date:
        return k == Birthdate;
    case Sampling::Inet:
        return k == Ip;
    default:
        return false;
    }
}

/* "a of b" for the reason text. */
std::string fmt_count(int64 a, int64 b)
{
    return std::to_string(a) + " of " + std::to_string(b);
}

/* The best suggestion for one column, if any reaches min_confidence. */
std::optional<Suggestion> suggest(const Table &t, const Column &c, const std::vector<std::string> &defined,
                                  const std::string &failure)
{
    auto defined_category = [&](const char *key) {
        for (auto &d : defined)
            if (d == key)
                return true;
        return false;
    };
    if (!c.readable || !failure.empty()) {
        if (c.sampling == Sampling::None && !c.hint)
            return std::nullopt;
        Suggestion s{
            t.relid, c.name, std::nullopt, std::nullopt, std::nullopt, 0.0, c.readable ? failure : "no privilege"};
        if (c.hint) {
            s.category = kinds[c.hint->kind].category;
            s.confidence = c.hint->strength;
            s.reason += std::string("; the column name suggests ") + kinds[c.hint->kind].hint;
        }
        return s;
    }
    bool have_values = c.was_sampled && c.sampled > 0;
    std::optional<Suggestion> best;
    for (int k = 0; k < NKinds; k++) {
        double h = (c.hint && c.hint->kind == k) ? c.hint->strength : 0.0;
        bool values_count = have_values && checkable(c.sampling, Kind(k));
        if (h == 0.0 && !(values_count && kinds[k].from_values))
            continue;
        double conf;
        std::string reason;
        if (values_count) {
            double r = double(c.matches[k]) / double(c.sampled);
            double v = r * kinds[k].weight;
            /* a name hint counts less when the values contradict it */
            double hh = h * (0.3 + 0.7 * r);
            conf = 1.0 - (1.0 - v) * (1.0 - hh);
            reason = fmt_count(c.matches[k], c.sampled) + " sampled values are " + kinds[k].values;
        } else {
            conf = h;
            if (c.sampling == Sampling::None)
                reason = "values not checked (type)";
            else if (c.was_sampled)
                reason = "no values sampled";
            else
                reason = "values not checked";
        }
        if (h > 0.0)
            reason += std::string("; the column name suggests ") + kinds[k].hint;
        if (!defined_category(kinds[k].category))
            reason += "; category not defined in consent.categories";
        conf = std::round(conf * 100.0) / 100.0;
        if (conf < min_confidence)
            continue;
        if (!best || conf > best->confidence) {
            Suggestion s{t.relid, c.name, std::string(kinds[k].category), std::nullopt, std::nullopt, conf, reason};
            if (c.was_sampled) {
                s.matches = c.matches[k];
                s.sampled = c.sampled;
            }
            best = s;
        }
    }
    return best;
}

} // namespace

} // namespace consent

using namespace consent;

/* consent.discover(schema name, sample_rows int): suggested categories of
 * untagged columns. */
CONSENT_FUNCTION(consent_discover)
{
    return entry([&]() -> Datum {
        if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
            throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "schema and sample_rows must not be null");
        std::string schema(NameStr(*PG_GETARG_NAME(0)));
        int sample_rows = PG_GETARG_INT32(1);
        if (sample_rows < 1 || sample_rows > 1000000)
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "sample_rows must be between 1 and 1000000",
                        "sample_rows is " + std::to_string(sample_rows) + ".");
        Oid nsp = pg([&] { return get_namespace_oid(schema.c_str(), true); });
        if (!OidIsValid(nsp))
            throw Error(ERRCODE_INVALID_SCHEMA_NAME, "schema \"" + schema + "\" does not exist");
        if (pg([&] { return namespace_aclcheck(nsp, GetUserId(), ACL_USAGE); }) != ACLCHECK_OK)
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied for schema " + schema, "",
                        "consent.discover reads with the privileges of the calling role.");

        std::vector<Suggestion> out;
        {
            CallerSpi spi;
            std::vector<std::string> defined;
            for (auto &row : query_text("SELECT key FROM consent.categories", {}))
                defined.push_back(*row[0]);
            int latest_birth = std::stoi(
                *query_text("SELECT pg_catalog.to_char(current_date - interval '13 years', 'YYYYMMDD')", {})[0][0]);
            Checker check(latest_birth);

            /* Untagged columns of the schema's ordinary and partitioned
             * tables (partitions are read through their parent), with the
             * caller's privilege on each.  Catalogs only. */
            auto rows = query_text(
                "SELECT c.oid, c.relkind, c.reltuples, c.relpages, "
                "       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), "
                "       a.attname, a.atttypid, "
                "       pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT') "
                "FROM pg_catalog.pg_class c "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
                "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
                "  AND NOT EXISTS (SELECT FROM consent.categories k WHERE k.type = a.atttypid) "
                "ORDER BY c.relname COLLATE \"C\", c.oid, a.attnum",
                {schema});
            std::vector<Table> tables;
            for (auto &row : rows) {
                Oid relid = Oid(std::stoul(*row[0]));
                if (tables.empty() || tables.back().relid != relid) {
                    Table t;
                    t.relid = relid;
                    t.relkind = (*row[1])[0];
                    t.reltuples = std::stod(*row[2]);
                    t.relpages = std::stod(*row[3]);
                    t.qualified = *row[4];
                    tables.push_back(std::move(t));
                }
                Column c;
                c.name = *row[5];
                Oid type = Oid(std::stoul(*row[6]));
                c.sampling = pg([&] { return sampling_of(type); });
                c.readable = *row[7] == "t";
                c.hint = name_hint(c.name);
                tables.back().columns.push_back(std::move(c));
            }
            for (auto &t : tables) {
                pg([] { CHECK_FOR_INTERRUPTS(); });
                sample_table(t, sample_rows, check);
                for (auto &c : t.columns)
                    if (auto s = suggest(t, c, defined, t.failure))
                        out.push_back(std::move(*s));
            }
        }

        pg([&] { InitMaterializedSRF(fcinfo, 0); });
        auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
        for (auto &s : out) {
            Datum values[7];
            bool nulls[7] = {false, false, false, false, false, false, false};
            pg([&] {
                values[0] = ObjectIdGetDatum(s.relid);
                if (s.column)
                    values[1] = DirectFunctionCall1(namein, CStringGetDatum(s.column->c_str()));
                else
                    nulls[1] = true;
                if (s.category)
                    values[2] = CStringGetTextDatum(s.category->c_str());
                else
                    nulls[2] = true;
                if (s.matches)
                    values[3] = Int64GetDatum(*s.matches);
                else
                    nulls[3] = true;
                if (s.sampled)
                    values[4] = Int64GetDatum(*s.sampled);
                else
                    nulls[4] = true;
                values[5] = Float4GetDatum(float4(s.confidence));
                values[6] = CStringGetTextDatum(s.reason.c_str());
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            });
        }
        return (Datum)0;
    });
}
