/*
 * erase.cpp — what the protected tables hold about one data subject:
 * consent.subject_report() (GDPR Art. 15, right of access) and
 * consent.erase_subject() (Art. 17, right to erasure).
 *
 * Owns: finding a subject's rows in every protected table and in the
 * inheritance children and partitions that inherit its protection; reading
 * their tagged cells by tuple id (so the masking rewrite does not apply: the
 * report is for auditors, who must see what is stored); nulling those cells,
 * table by table as the table's owner; pseudonymizing the subject's ledger
 * events while the ledger's erasure_in_progress flag lets the UPDATE through.
 * Must never: leave erasure_in_progress set once erase_subject() returns or
 * fails; change anything when an erasure could not be complete; show a
 * report to a role that is neither superuser nor consent_auditor; run a
 * table owner's code (triggers, index expressions, policies) with the
 * erasing superuser's privileges; write the raw subject into a message, the
 * erase event or the returned report of an erasure.
 */
#include "boundary.h"
#include "citus.h"
#include "cache.h"
#include "consent.h"
#include "spi.h"

extern "C" {
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "catalog/pg_authid.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"
}

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace consent {
/* Defined in ledger.cpp: while true, the ledger's append-only trigger lets
 * UPDATE and DELETE through.  Set only around the pseudonymizing UPDATE. */
extern bool erasure_in_progress;
} // namespace consent

namespace consent {

namespace {

struct TaggedColumn {
    std::string name;
    AttrNumber attnum = InvalidAttrNumber;
    std::string category;
    bool not_null = false;   /* the column or its type forbids NULL */
    bool generated = false;  /* a generated column cannot be set */
    bool referenced = false; /* a foreign key references it */
};

/* One table that holds subjects' rows: a protected table, or an inheritance
 * child or partition of one (the nearest protected ancestor names the
 * subject column). */
struct Target {
    Oid relid = InvalidOid;
    char relkind = 'r';
    std::string name; /* schema-qualified, quoted where needed */
    std::string subject_column;
    AttrNumber subject_attno = InvalidAttrNumber; /* invalid: the column is gone */
    Oid subject_type = InvalidOid;                /* base type of the subject column */
    Oid owner = InvalidOid;
    bool deferrable_trigger = false; /* a user trigger that may fire at commit */
    std::vector<TaggedColumn> columns;
};

/* An oid from SPI's text form. */
Oid oid_of(const std::optional<std::string> &v)
{
    return v ? Oid(std::stoul(*v)) : InvalidOid;
}

/* Every table that holds subjects' rows, ordered by name.  Catalog reads as
 * the bootstrap superuser (spi.h). */
std::vector<Target> protected_targets()
{
    std::vector<Target> out;
    Spi spi;
    auto rels = spi.query(
        "WITH RECURSIVE tree(relid, owner, depth) AS ("
        "  SELECT p.relation::oid, p.relation::oid, 0 FROM consent.protected_tables p"
        "  UNION ALL"
        "  SELECT i.inhrelid, t.owner, t.depth + 1 FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid"
        "  WHERE t.depth < 100"
        "    AND NOT EXISTS (SELECT FROM consent.protected_tables q WHERE q.relation::oid = i.inhrelid)) "
        "SELECT relid, relkind, name, subject_column, relowner,"
        "       EXISTS (SELECT FROM pg_trigger g WHERE g.tgrelid = x.relid AND NOT g.tgisinternal"
        "               AND g.tgdeferrable AND g.tgenabled <> 'D') FROM ("
        "  SELECT DISTINCT ON (t.relid) t.relid, c.relkind, t.relid::regclass::text AS name, p.subject_column,"
        "         c.relowner"
        "  FROM tree t JOIN pg_class c ON c.oid = t.relid"
        "  JOIN consent.protected_tables p ON p.relation::oid = t.owner"
        "  ORDER BY t.relid, t.depth) x "
        "ORDER BY name COLLATE \"C\", relid");
    for (auto &r : rels) {
        Target t;
        t.relid = oid_of(r[0]);
        t.relkind = (*r[1])[0];
        t.name = *r[2];
        t.subject_column = *r[3];
        t.owner = oid_of(r[4]);
        t.deferrable_trigger = *r[5] == "t";
        out.push_back(std::move(t));
    }
    for (auto &t : out) {
        auto cols = spi.query("SELECT a.attnum, a.attname, k.key, a.attnotnull OR ty.typnotnull, a.attgenerated <> '', "
                              "  EXISTS (SELECT FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = a.attrelid"
                              "          AND a.attnum = ANY (f.confkey)) "
                              "FROM pg_attribute a JOIN consent.categories k ON k.type::oid = a.atttypid "
                              "JOIN pg_type ty ON ty.oid = a.atttypid "
                              "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                              {std::to_string(t.relid)});
        for (auto &c : cols) {
            TaggedColumn tc;
            tc.attnum = AttrNumber(std::stoi(*c[0]));
            tc.name = *c[1];
            tc.category = *c[2];
            tc.not_null = *c[3] == "t";
            tc.generated = *c[4] == "t";
            tc.referenced = *c[5] == "t";
            t.columns.push_back(std::move(tc));
        }
        Oid relid = t.relid;
        const char *col = t.subject_column.c_str();
        t.subject_attno = pg([&] { return get_attnum(relid, col); });
        if (t.subject_attno != InvalidAttrNumber) {
            AttrNumber attno = t.subject_attno;
            t.subject_type = pg([&] { return getBaseType(get_atttype(relid, attno)); });
        }
    }
    return out;
}

/* Why the table cannot be read for a subject, or empty. */
std::string unreadable(const Target &t)
{
    if (t.subject_attno == InvalidAttrNumber)
        return "subject column \"" + t.subject_column + "\" does not exist";
    if (t.relkind == RELKIND_FOREIGN_TABLE)
        return "foreign table: its rows cannot be read or erased by pg_consent";
    return {};
}

/* Whether key is an integer in canonical decimal form (what subject_key()
 * makes of an integer subject column) that fits bigint. */
bool canonical_integer(const std::string &key)
{
    size_t i = key[0] == '-' ? 1 : 0;
    if (key.size() == i || key.size() - i > 19)
        return false;
    for (size_t j = i; j < key.size(); j++)
        if (key[j] < '0' || key[j] > '9')
            return false;
    if (key[i] == '0' && (key.size() - i > 1 || i == 1))
        return false; /* 007 or -0 */
    errno = 0;
    (void)std::strtoll(key.c_str(), nullptr, 10);
    return errno != ERANGE;
}

/* Whether key is a uuid in canonical form (lowercase, with hyphens). */
bool canonical_uuid(const std::string &key)
{
    if (key.size() != 36)
        return false;
    for (size_t i = 0; i < key.size(); i++) {
        char c = key[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* The WHERE condition selecting the subject's rows ($1 = the subject key as
 * text), comparing as masking does (the subject column's value in its
 * canonical text form equals the key) while letting an index on the subject
 * column serve it.  Empty when no row of the table can belong to the key. */
std::optional<std::string> subject_predicate(const Target &t, const std::string &key)
{
    std::string col = quote_identifier(t.subject_column.c_str());
    switch (t.subject_type) {
    case INT2OID:
    case INT4OID:
    case INT8OID:
        if (!canonical_integer(key))
            return std::nullopt;
        return col + " = $1::pg_catalog.int8";
    case UUIDOID:
        if (!canonical_uuid(key))
            return std::nullopt;
        return col + " = $1::pg_catalog.uuid";
    default:
        return col + "::pg_catalog.text = $1";
    }
}

using Cells = std::vector<std::optional<std::string>>; /* one row: the tagged columns in order */

/* The tagged cells of the subject's rows of one table, in tuple order.  The
 * rows are found with SPI (an ordinary query on the untagged subject column)
 * and read by tuple id, so no masking expression stands between the stored
 * value and the auditor. */
std::vector<Cells> read_cells(const Target &t, const std::string &pred, const std::string &key)
{
    if (citus::is_citus_table(t.relid)) {
        /* A Citus table's rows are on the nodes holding its shards: read
         * through Citus, each column claimed as the role these queries run
         * as (the bootstrap superuser, spi.h), so the nodes reveal them. */
        std::string role = pg([] { return std::string(GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false)); });
        /* an array literal (a constant, as the planner finds claims): the
         * name double-quoted with backslash escapes, as array_in reads it */
        std::string element = "\"";
        for (char ch : role) {
            if (ch == '"' || ch == '\\')
                element += '\\';
            element += ch;
        }
        element += '"';
        std::string claim =
            pg([&] { return std::string(quote_literal_cstr(("{" + element + ",NULL,NULL,f}").c_str())); });
        std::string sql = "SELECT ";
        for (size_t c = 0; c < t.columns.size(); c++)
            sql += std::string(c ? ", " : "") + "consent._mask_remote(" + quote_identifier(t.columns[c].name.c_str()) +
                   ", " + claim + "::text[])::text";
        if (t.columns.empty())
            sql += "1";
        sql += " FROM ONLY " + t.name + " WHERE " + pred;
        std::vector<Cells> out;
        Spi spi;
        for (auto &r : spi.query(sql.c_str(), {key})) {
            Cells row(t.columns.size());
            for (size_t c = 0; c < t.columns.size(); c++)
                row[c] = r[c];
            out.push_back(std::move(row));
        }
        return out;
    }
    std::vector<std::string> tids;
    {
        Spi spi;
        std::string sql = "SELECT ctid FROM ONLY " + t.name + " WHERE " + pred + " ORDER BY ctid";
        for (auto &r : spi.query(sql.c_str(), {key}))
            tids.push_back(*r[0]);
    }
    std::vector<Cells> out;
    size_t ncols = t.columns.size();
    if (tids.empty() || ncols == 0) {
        out.resize(tids.size(), Cells(ncols));
        return out;
    }
    std::vector<AttrNumber> attnos;
    for (auto &c : t.columns)
        attnos.push_back(c.attnum);
    size_t nrows = tids.size();
    char **cells = nullptr;
    bool *found = nullptr;
    Oid relid = t.relid;
    pg([&] {
        cells = static_cast<char **>(palloc0(sizeof(char *) * nrows * ncols));
        found = static_cast<bool *>(palloc0(sizeof(bool) * nrows));
        Relation rel = table_open(relid, AccessShareLock);
        TupleDesc desc = RelationGetDescr(rel);
        TupleTableSlot *slot = table_slot_create(rel, nullptr);
        for (size_t r = 0; r < nrows; r++) {
            ItemPointer tid = reinterpret_cast<ItemPointer>(
                DatumGetPointer(DirectFunctionCall1(tidin, CStringGetDatum(tids[r].c_str()))));
            if (!table_tuple_fetch_row_version(rel, tid, GetActiveSnapshot(), slot))
                continue;
            found[r] = true;
            for (size_t c = 0; c < ncols; c++) {
                bool isnull;
                Datum v = slot_getattr(slot, attnos[c], &isnull);
                if (isnull)
                    continue;
                Oid out_fn;
                bool varlena;
                getTypeOutputInfo(TupleDescAttr(desc, attnos[c] - 1)->atttypid, &out_fn, &varlena);
                cells[r * ncols + c] = OidOutputFunctionCall(out_fn, v);
            }
        }
        ExecDropSingleTupleTableSlot(slot);
        table_close(rel, NoLock);
    });
    for (size_t r = 0; r < nrows; r++) {
        if (!found[r])
            continue;
        Cells row(ncols);
        for (size_t c = 0; c < ncols; c++)
            if (cells[r * ncols + c])
                row[c] = std::string(cells[r * ncols + c]);
        out.push_back(std::move(row));
    }
    return out;
}

/* Appends s as a JSON string. */
void json_string(std::string &out, std::string_view s)
{
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20) {
                static const char hex[] = "0123456789abcdef";
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xF];
            } else {
                out += char(c);
            }
        }
    }
    out += '"';
}

/* s as a JSON string. */
std::string json_string(std::string_view s)
{
    std::string out;
    json_string(out, s);
    return out;
}

/* The JSON text as jsonb (keys sorted the jsonb way: deterministic). */
Datum as_jsonb(const std::string &json)
{
    return pg([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(json.c_str())); });
}

/* The subject argument as the ledger's text key (as consent.grant stores
 * it: integers in decimal, uuids in canonical form, text as given). */
std::string subject_arg(FunctionCallInfo fcinfo)
{
    if (PG_ARGISNULL(0))
        throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "subject must not be null");
    Oid type = pg([&] { return get_fn_expr_argtype(fcinfo->flinfo, 0); });
    std::string key;
    if (type == INT8OID || type == UUIDOID) {
        char buf[64];
        key = std::string(subject_key(PG_GETARG_DATUM(0), type, buf));
    } else {
        key = pg([&] { return text_to_cstring(PG_GETARG_TEXT_PP(0)); });
    }
    if (key.empty())
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "subject must not be empty");
    return key;
}

/* Superuser, or has the privileges of consent_auditor. */
bool is_auditor(Oid role)
{
    if (superuser_arg(role))
        return true;
    Oid auditor = get_role_oid("consent_auditor", true);
    return OidIsValid(auditor) && has_privs_of_role(role, auditor);
}

/* A read-write SPI connection as the calling role, finished with the scope. */
class WriteSpi {
  public:
    WriteSpi()
    {
        pg([] {
            if (SPI_connect() != SPI_OK_CONNECT)
                elog(ERROR, "SPI_connect failed");
        });
    }
    ~WriteSpi()
    {
        try {
            pg([] { SPI_finish(); });
        } catch (...) {
            /* already failing: the transaction abort cleans up SPI */
        }
    }
    WriteSpi(const WriteSpi &) = delete;
    WriteSpi &operator=(const WriteSpi &) = delete;

    /* Runs one statement as the role owning the table it changes, in a
     * security-restricted operation (as VACUUM and REFRESH MATERIALIZED VIEW
     * run the owner's code): triggers, index expressions, constraints and
     * policies of the table then run with its owner's privileges, not the
     * erasing superuser's. */
    uint64 exec_as(Oid owner, const std::string &sql, const std::vector<std::string> &params, int expect)
    {
        Oid saved_user;
        int saved_sec;
        GetUserIdAndSecContext(&saved_user, &saved_sec);
        SetUserIdAndSecContext(owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
        uint64 n;
        try {
            n = exec(sql, params, expect);
        } catch (...) {
            SetUserIdAndSecContext(saved_user, saved_sec);
            throw;
        }
        SetUserIdAndSecContext(saved_user, saved_sec);
        return n;
    }

    /* Runs one statement with text parameters; returns the rows processed
     * and, for RETURNING, the first column of the first row. */
    uint64 exec(const std::string &sql, const std::vector<std::string> &params, int expect,
                std::optional<std::string> *first = nullptr)
    {
        int n = int(params.size());
        std::vector<Oid> types(n, TEXTOID);
        std::vector<Datum> values(n);
        char *value = nullptr;
        uint64 processed = pg([&] {
            for (int i = 0; i < n; i++)
                values[i] = CStringGetTextDatum(params[i].c_str());
            int rc = SPI_execute_with_args(sql.c_str(), n, types.data(), values.data(), nullptr, false, 0);
            if (rc != expect)
                elog(ERROR, "SPI statement failed: %s", SPI_result_code_string(rc));
            if (first && SPI_tuptable && SPI_processed > 0)
                value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
            return SPI_processed;
        });
        if (first)
            *first = value ? std::optional<std::string>(value) : std::nullopt;
        return processed;
    }
};

/* The pseudonym of an erased subject: a keyed hash, so the ledger keeps the
 * events without the identifier.  Keyed with consent.pseudonym_key when set
 * (the same subject always gets the same pseudonym, and whoever holds the
 * key can recompute it), else with a random salt that is forgotten at once
 * (nobody can link the pseudonym to the subject again). */
std::string make_pseudonym(const std::string &key, bool *keyed)
{
    std::string secret;
    *keyed = pseudonym_key && pseudonym_key[0] != '\0';
    if (*keyed) {
        secret = pseudonym_key;
    } else {
        unsigned char salt[32];
        if (!pg_strong_random(salt, sizeof salt))
            throw Error(ERRCODE_INTERNAL_ERROR, "could not generate a random salt for the pseudonym");
        secret.assign(reinterpret_cast<char *>(salt), sizeof salt);
    }
    /* domain separation: never equal to a hash mask of the same value */
    std::string message = "pg_consent erase:" + key;
    uint8 digest[PG_SHA256_DIGEST_LENGTH];
    const char *error = nullptr;
    bool ok = pg([&] {
        pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
        if (!ctx) {
            error = "out of memory";
            return false;
        }
        bool good = pg_hmac_init(ctx, reinterpret_cast<const uint8 *>(secret.data()), secret.size()) == 0 &&
                    pg_hmac_update(ctx, reinterpret_cast<const uint8 *>(message.data()), message.size()) == 0 &&
                    pg_hmac_final(ctx, digest, sizeof digest) == 0;
        if (!good)
            error = pstrdup(pg_hmac_error(ctx));
        pg_hmac_free(ctx);
        return good;
    });
    std::fill(secret.begin(), secret.end(), '\0');
    if (!ok)
        throw Error(ERRCODE_INTERNAL_ERROR, std::string("could not compute the pseudonym: ") + error);
    static const char hex[] = "0123456789abcdef";
    std::string out = "erased:";
    for (uint8 b : digest) {
        out += hex[b >> 4];
        out += hex[b & 0xF];
    }
    return out;
}

/* One problem that makes an erasure incomplete. */
struct Problem {
    std::string message, hint;
};

/* Everything that would make an erasure partial or fail, before anything
 * is changed. */
std::vector<Problem> erasure_problems(const std::vector<Target> &targets)
{
    std::vector<Problem> problems;
    for (auto &t : targets) {
        if (t.relkind == RELKIND_PARTITIONED_TABLE && t.subject_attno != InvalidAttrNumber)
            continue; /* no storage: its partitions are targets of their own */
        if (t.subject_attno == InvalidAttrNumber) {
            problems.push_back({"subject column \"" + t.subject_column + "\" of table " + t.name + " does not exist",
                                "Declare the table's subject column again with consent.protect()."});
            continue;
        }
        if (t.relkind == RELKIND_FOREIGN_TABLE && !t.columns.empty()) {
            problems.push_back(
                {"table " + t.name + " is a foreign table", "Erase the subject's data at the foreign server."});
            continue;
        }
        if (t.deferrable_trigger && !t.columns.empty())
            problems.push_back({"table " + t.name + " has a deferrable trigger",
                                "A deferred trigger would fire at commit with the privileges of the superuser "
                                "who erases; drop it or make it not deferrable."});
        for (auto &c : t.columns) {
            if (c.not_null)
                problems.push_back({"tagged column \"" + c.name + "\" of table " + t.name + " is NOT NULL",
                                    "Allow NULL: ALTER TABLE " + t.name + " ALTER COLUMN " +
                                        quote_identifier(c.name.c_str()) + " DROP NOT NULL."});
            if (c.generated)
                problems.push_back({"tagged column \"" + c.name + "\" of table " + t.name + " is a generated column",
                                    "Generated columns cannot be set to NULL; drop the expression first."});
            if (c.referenced)
                problems.push_back(
                    {"tagged column \"" + c.name + "\" of table " + t.name + " is referenced by a foreign key",
                     "Reference the table by a column that is not consent-tagged."});
        }
    }
    Spi spi;
    auto rows = spi.query("SELECT EXISTS (SELECT FROM consent.categories WHERE key = 'user'),"
                          "       EXISTS (SELECT FROM consent.purposes WHERE key = 'legal_obligation')");
    if (*rows[0][0] != "t" || *rows[0][1] != "t")
        problems.push_back({"the category \"user\" or the purpose \"legal_obligation\" does not exist",
                            "The erase event is recorded under them; recreate the shipped category and purpose."});
    return problems;
}

} // namespace

} // namespace consent

using namespace consent;

/* consent.subject_report(subject): every tagged value the protected tables
 * hold about the subject, the decision per purpose, and its ledger history. */
CONSENT_FUNCTION(consent_subject_report)
{
    return entry([&]() -> Datum {
        if (!pg([] { return is_auditor(GetUserId()) && is_auditor(GetOuterUserId()); }))
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied to report on a data subject",
                        "Only superusers and members of consent_auditor may read subject reports.",
                        "Grant the role consent_auditor.");
        std::string key = subject_arg(fcinfo);
        std::vector<Target> targets = protected_targets();

        std::string values, skipped;
        std::vector<std::string> decided_categories, decisions;
        size_t nvalues = 0;
        for (auto &t : targets) {
            if (t.relkind == RELKIND_PARTITIONED_TABLE && t.subject_attno != InvalidAttrNumber)
                continue;
            std::string why = unreadable(t);
            if (!why.empty()) {
                skipped += std::string(skipped.empty() ? "" : ", ") + "{\"table\": " + json_string(t.name) +
                           ", \"reason\": " + json_string(why) + "}";
                continue;
            }
            auto pred = subject_predicate(t, key);
            if (!pred || t.columns.empty())
                continue;
            auto rows = read_cells(t, *pred, key);
            for (size_t r = 0; r < rows.size(); r++) {
                for (size_t c = 0; c < t.columns.size(); c++) {
                    if (!rows[r][c])
                        continue;
                    const TaggedColumn &col = t.columns[c];
                    size_t d = 0;
                    while (d < decided_categories.size() && decided_categories[d] != col.category)
                        d++;
                    if (d == decided_categories.size()) {
                        /* the decision of every purpose for this category */
                        Spi spi;
                        auto rows_p = spi.query(
                            "SELECT p.key, p.basis, p.basis <> 'consent' AND EXISTS ("
                            "         SELECT FROM unnest(p.necessary) n WHERE $2 = n OR starts_with($2, n || '.')),"
                            "       consent.granted($1, $2, p.key::text) "
                            "FROM consent.purposes p ORDER BY p.key COLLATE \"C\"",
                            {key, col.category});
                        std::string obj = "{";
                        for (auto &p : rows_p) {
                            bool by_basis = *p[2] == "t";
                            bool revealed = by_basis || (p[3] && *p[3] == "t");
                            obj += std::string(obj.size() > 1 ? ", " : "") + json_string(*p[0]) +
                                   ": {\"revealed\": " + (revealed ? "true" : "false") +
                                   ", \"by\": " + json_string(by_basis ? *p[1] : "consent") + "}";
                        }
                        obj += "}";
                        decided_categories.push_back(col.category);
                        decisions.push_back(obj);
                    }
                    values += std::string(nvalues++ ? ", " : "") + "{\"table\": " + json_string(t.name) +
                              ", \"column\": " + json_string(col.name) +
                              ", \"category\": " + json_string(col.category) + ", \"row\": " + std::to_string(r + 1) +
                              ", \"value\": " + json_string(*rows[r][c]) + ", \"decisions\": " + decisions[d] + "}";
                }
            }
        }

        std::string ledger, generated_at;
        size_t nevents = 0;
        {
            Spi spi;
            auto rows = spi.query(
                "SELECT coalesce(jsonb_agg(jsonb_build_object("
                "         'id', l.id, 'category', l.category, 'purpose', l.purpose, 'action', l.action,"
                "         'valid_until', l.valid_until, 'recorded_at', l.recorded_at, 'recorded_by', l.recorded_by,"
                "         'source', l.source, 'evidence', l.evidence) ORDER BY l.recorded_at, l.id), '[]')::text,"
                "       count(*), to_jsonb(now())::text "
                "FROM consent.ledger l WHERE l.subject = $1",
                {key});
            ledger = *rows[0][0];
            nevents = std::stoul(*rows[0][1]);
            generated_at = *rows[0][2];
        }
        if (nvalues == 0 && nevents == 0)
            pg([] {
                ereport(NOTICE, (errmsg("no tagged value and no consent event of this subject were found"),
                                 errdetail("The report is empty.")));
            });
        std::string json = "{\"subject\": " + json_string(key) + ", \"generated_at\": " + generated_at +
                           ", \"values\": [" + values + "], \"ledger\": " + ledger + ", \"skipped\": [" + skipped +
                           "]}";
        return as_jsonb(json);
    });
}

/* consent.erase_subject(subject): nulls the subject's tagged cells in every
 * protected table and pseudonymizes its ledger events, in one transaction. */
CONSENT_FUNCTION(consent_erase_subject)
{
    return entry([&]() -> Datum {
        if (!pg([] { return superuser(); }))
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied to erase a data subject",
                        "Only superusers may erase a data subject.",
                        "Run it as a superuser, or through a SECURITY DEFINER function owned by one.");
        std::string key = subject_arg(fcinfo);
        /* a Citus node replaying another node's erasure: the tables' cells
         * are the cluster's (that node erased them), the ledger is ours */
        std::vector<Target> targets = citus::replaying_call() ? std::vector<Target>{} : protected_targets();

        std::vector<Problem> problems = erasure_problems(targets);
        if (!problems.empty()) {
            std::string detail;
            if (problems.size() > 1) {
                detail = "All problems: ";
                for (size_t i = 0; i < problems.size(); i++)
                    detail += (i ? "; " : "") + problems[i].message;
                detail += ". ";
            }
            detail += "Nothing was erased.";
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "cannot erase subject: " + problems[0].message,
                        detail, problems[0].hint);
        }

        /* What is there to erase: tagged cells, ledger events, derived state. */
        struct TableWork {
            const Target *target;
            std::string predicate;
            int64 cells = 0;
            std::vector<bool> nonnull;
            uint64 found = 0; /* the subject's rows, as the superuser sees them */
            uint64 rows = 0;  /* rows updated */
        };
        std::vector<TableWork> work;
        int64 cells = 0;
        for (auto &t : targets) {
            if (t.relkind == RELKIND_PARTITIONED_TABLE || t.columns.empty())
                continue;
            auto pred = subject_predicate(t, key);
            if (!pred)
                continue;
            TableWork w{&t, *pred, 0, std::vector<bool>(t.columns.size(), false), 0, 0};
            auto rows = read_cells(t, *pred, key);
            w.found = rows.size();
            for (auto &row : rows)
                for (size_t c = 0; c < row.size(); c++)
                    if (row[c]) {
                        w.cells++;
                        w.nonnull[c] = true;
                    }
            cells += w.cells;
            work.push_back(std::move(w));
        }
        int64 events_before, states_before;
        {
            Spi spi;
            auto rows = spi.query("SELECT (SELECT count(*) FROM consent.ledger WHERE subject = $1),"
                                  "       (SELECT count(*) FROM consent.subject_state WHERE subject = $1)",
                                  {key});
            events_before = std::stoll(*rows[0][0]);
            states_before = std::stoll(*rows[0][1]);
        }
        if (cells == 0 && events_before == 0 && states_before == 0) {
            pg([] {
                ereport(NOTICE, (errmsg("nothing to erase: no tagged value and no consent event of this subject "
                                        "were found"),
                                 errdetail("Nothing was changed.")));
            });
            return as_jsonb("{\"erased\": false, \"tables\": [], \"ledger_events\": 0, \"subject_state\": 0}");
        }

        bool keyed = false;
        std::string pseudonym = make_pseudonym(key, &keyed);
        std::string tables_json, table_names;
        uint64 events = 0, states = 0;
        std::optional<std::string> erase_event;
        {
            WriteSpi spi;
            /* 1. the tagged cells */
            for (auto &w : work) {
                const Target &t = *w.target;
                std::string sql = "UPDATE ONLY " + t.name + " SET ";
                for (size_t c = 0; c < t.columns.size(); c++)
                    sql += std::string(c ? ", " : "") + quote_identifier(t.columns[c].name.c_str()) + " = NULL";
                sql += " WHERE " + w.predicate;
                w.rows = spi.exec_as(t.owner, sql, {key}, SPI_OK_UPDATE);
                if (w.rows < w.found)
                    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                                "cannot erase subject: row-level security hides rows of table " + t.name +
                                    " from its owner",
                                std::to_string(w.found - w.rows) + " of the subject's " + std::to_string(w.found) +
                                    " rows could not be updated. Nothing was erased.",
                                "The erasure updates each table as its owner; let the owner's policies reach "
                                "every row, or disable FORCE ROW LEVEL SECURITY.");
                if (w.rows == 0)
                    continue;
                std::string cols;
                for (size_t c = 0; c < t.columns.size(); c++)
                    if (w.nonnull[c])
                        cols += std::string(cols.empty() ? "" : ", ") + json_string(t.columns[c].name);
                tables_json += std::string(tables_json.empty() ? "" : ", ") + "{\"table\": " + json_string(t.name) +
                               ", \"rows\": " + std::to_string(w.rows) + ", \"cells\": " + std::to_string(w.cells) +
                               ", \"columns\": [" + cols + "]}";
                table_names += std::string(table_names.empty() ? "" : ", ") + json_string(t.name);
            }

            /* 2. the ledger: no new event of the subject may commit from
             * here on (grant and withdraw insert with ROW EXCLUSIVE) */
            spi.exec("LOCK TABLE consent.ledger IN SHARE ROW EXCLUSIVE MODE", {}, SPI_OK_UTILITY);
            erasure_in_progress = true;
            try {
                events = spi.exec("UPDATE consent.ledger SET subject = $2, source = NULL, evidence = NULL "
                                  "WHERE subject = $1",
                                  {key, pseudonym}, SPI_OK_UPDATE);
            } catch (...) {
                erasure_in_progress = false;
                throw;
            }
            erasure_in_progress = false;

            /* 3. the derived state follows its events to the pseudonym; a
             * pseudonym that already has state (the same subject erased
             * before, with the same key) keeps the later event of each pair */
            spi.exec("INSERT INTO consent.subject_state AS s (subject, category, purpose, event_id, action,"
                     "                                       valid_until, recorded_at, withdrawn_at, withdrawn_id)"
                     "  SELECT $2, category, purpose, event_id, action, valid_until, recorded_at, withdrawn_at,"
                     "         withdrawn_id FROM consent.subject_state WHERE subject = $1 "
                     "ON CONFLICT ON CONSTRAINT subject_state_pkey DO UPDATE SET"
                     "  event_id = CASE WHEN (excluded.recorded_at, excluded.event_id) > (s.recorded_at, s.event_id)"
                     "                  THEN excluded.event_id ELSE s.event_id END,"
                     "  action = CASE WHEN (excluded.recorded_at, excluded.event_id) > (s.recorded_at, s.event_id)"
                     "                THEN excluded.action ELSE s.action END,"
                     "  valid_until = CASE WHEN (excluded.recorded_at, excluded.event_id) > (s.recorded_at, s.event_id)"
                     "                     THEN excluded.valid_until ELSE s.valid_until END,"
                     "  recorded_at = greatest(excluded.recorded_at, s.recorded_at),"
                     "  withdrawn_at = CASE WHEN s.withdrawn_at IS NULL"
                     "                        OR (excluded.withdrawn_at, excluded.withdrawn_id)"
                     "                           > (s.withdrawn_at, s.withdrawn_id)"
                     "                      THEN excluded.withdrawn_at ELSE s.withdrawn_at END,"
                     "  withdrawn_id = CASE WHEN s.withdrawn_at IS NULL"
                     "                        OR (excluded.withdrawn_at, excluded.withdrawn_id)"
                     "                           > (s.withdrawn_at, s.withdrawn_id)"
                     "                      THEN excluded.withdrawn_id ELSE s.withdrawn_id END",
                     {key, pseudonym}, SPI_OK_INSERT);
            states = spi.exec("DELETE FROM consent.subject_state WHERE subject = $1", {key}, SPI_OK_DELETE);

            /* 4. the evidence that the erasure happened, under the pseudonym */
            std::string evidence = "{\"tables\": [" + table_names + "], \"cells\": " + std::to_string(cells) +
                                   ", \"ledger_events\": " + std::to_string(events) + "}";
            spi.exec("INSERT INTO consent.ledger (subject, category, purpose, action, recorded_at, recorded_by,"
                     "                            source, evidence)"
                     "  VALUES ($1, 'user', 'legal_obligation', 'erase', clock_timestamp(), consent._acting_role(),"
                     "          'consent.erase_subject', $2::jsonb) RETURNING id",
                     {pseudonym, evidence}, SPI_OK_INSERT_RETURNING, &erase_event);
        }

        /* 5. nothing of the subject may remain, also not what another
         * transaction committed while this one ran (REPEATABLE READ would
         * not see it) */
        {
            Spi spi;
            auto rows = spi.query("SELECT (SELECT count(*) FROM consent.ledger WHERE subject = $1)"
                                  "     + (SELECT count(*) FROM consent.subject_state WHERE subject = $1)",
                                  {key}, true);
            if (*rows[0][0] != "0")
                throw Error(ERRCODE_T_R_SERIALIZATION_FAILURE,
                            "could not erase subject: consent events of the subject were recorded concurrently",
                            "Nothing was erased.", "Retry the erasure.");
        }

        /* the caches of every backend drop both subjects through the row
         * trigger on consent.subject_state, which the moves above fired */

        std::string json = "{\"erased\": true, \"pseudonym\": " + json_string(pseudonym) +
                           ", \"pseudonym_key\": " + (keyed ? "\"consent.pseudonym_key\"" : "\"random salt\"") +
                           ", \"tables\": [" + tables_json + "], \"ledger_events\": " + std::to_string(events) +
                           ", \"subject_state\": " + std::to_string(states) +
                           ", \"erase_event\": " + (erase_event ? *erase_event : "null") + "}";
        citus::forward_call(fcinfo); /* the other nodes' ledgers */
        return as_jsonb(json);
    });
}
