/*
 * record.cpp — recording consent: consent.grant(), consent.withdraw() and
 * consent._record(), the one path by which events enter the ledger.
 *
 * An event is validated in memory (key syntax, known category and purpose,
 * reserved subjects), then written by four statements whose plans are
 * prepared once per backend: lock the (subject, category, purpose) row of
 * the derived state (inserting a placeholder when the pair is new), take the
 * event time after the lock, append to the ledger, update the derived state.
 * The row lock makes the ledger order of a pair follow commit order, so the
 * derived state always holds its latest event.  The statements run as the
 * bootstrap superuser with a fixed search_path (spi.h), so the caller needs
 * EXECUTE on the function and nothing else; recorded_by is the acting role.
 *
 * Owns: event validation and the saved plans of the ledger writes.
 * Must never: write the ledger without the derived state (both happen in
 * the caller's transaction, or neither does), or take the event time before
 * the row lock.
 */
#include "boundary.h"
#include "consent.h"
#include "cache.h"
#include "citus.h"
#include "spi.h"
#include "taxonomy.h"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

#include <optional>
#include <string>

namespace consent {

namespace {

enum PlanId { LOCK_PAIR, PLACEHOLDER, APPEND, UPDATE_STATE, HOLDS_GRANT, N_PLANS };

struct PlanDef {
    const char *sql;
    int nargs;
    Oid types[9];
};

const PlanDef plan_defs[N_PLANS] = {
    {"SELECT 1 FROM consent.subject_state s WHERE s.subject = $1 AND s.category = $2 AND s.purpose = $3 FOR UPDATE",
     3,
     {TEXTOID, TEXTOID, TEXTOID}},
    /* a placeholder row for a new pair, never committed as such */
    {"INSERT INTO consent.subject_state (subject, category, purpose, event_id, action, recorded_at)"
     " VALUES ($1, $2, $3, 0, 'none', '-infinity') ON CONFLICT ON CONSTRAINT subject_state_pkey DO NOTHING",
     3,
     {TEXTOID, TEXTOID, TEXTOID}},
    {"INSERT INTO consent.ledger (subject, category, purpose, action, valid_until, recorded_at, recorded_by,"
     " source, evidence) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
     9,
     {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, JSONBOID}},
    {"UPDATE consent.subject_state s SET event_id = $4, action = $5, valid_until = $6, recorded_at = $7,"
     " withdrawn_at = CASE WHEN $5 = 'withdraw' THEN $7 ELSE s.withdrawn_at END,"
     " withdrawn_id = CASE WHEN $5 = 'withdraw' THEN $4 ELSE s.withdrawn_id END"
     " WHERE s.subject = $1 AND s.category = $2 AND s.purpose = $3",
     7,
     {TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}},
    /* whether a withdrawal has anything to withdraw: a grant on the pair, an
     * ancestor or a descendant of it */
    {"SELECT EXISTS (SELECT FROM consent.subject_state s WHERE s.subject = $1 AND s.action = 'grant'"
     " AND (s.category = $2 OR starts_with(s.category, $2 || '.') OR starts_with($2, s.category || '.'))"
     " AND (s.purpose = $3 OR starts_with(s.purpose, $3 || '.') OR starts_with($3, s.purpose || '.')))",
     3,
     {TEXTOID, TEXTOID, TEXTOID}},
};

/* Runs one of the statements, its plan kept for the life of the backend
 * (kept_plan(); revalidated when the tables change, also across DROP/CREATE
 * EXTENSION), inside an open Spi (call inside pg()); returns the rows. */
uint64 run_plan(PlanId id, Datum *values, const char *nulls)
{
    const PlanDef &d = plan_defs[id];
    int rc = SPI_execute_plan(kept_plan(d.sql, d.nargs, d.types), values, nulls, false, 0);
    if (rc < 0)
        elog(ERROR, "consent ledger statement failed: %s", SPI_result_code_string(rc));
    return SPI_processed;
}

/* Raises 22004/22023 unless key is a well-formed dotted key (as
 * consent._check_key does for the catalog functions). */
void check_key(const char *what, const std::optional<std::string> &key)
{
    if (!key)
        throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, std::string(what) + " key must not be null");
    const std::string &k = *key;
    bool ok = !k.empty() && k.size() <= 200;
    bool word_start = true;
    for (size_t i = 0; ok && i < k.size(); i++) {
        char c = k[i];
        if (word_start)
            ok = c >= 'a' && c <= 'z';
        else
            ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
        word_start = c == '.';
    }
    if (!ok || word_start)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string("invalid ") + what + " key \"" + k + "\"",
                    "Keys are dot-separated lowercase identifiers of at most 200 characters, e.g. user.contact.email.");
}

/* One event to record. */
struct Change {
    std::optional<std::string> subject, category, purpose;
    std::optional<std::string> action; /* checked by the ledger's constraints */
    std::optional<TimestampTz> valid_until;
    Datum source = 0, evidence = 0; /* valid when the flags say so */
    bool has_source = false, has_evidence = false;
};

void validate(const Change &c)
{
    if (!c.subject)
        throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "subject must not be null");
    if (c.subject->empty())
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "subject must not be empty");
    if (c.subject->rfind("erased:", 0) == 0)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "subject \"" + *c.subject + "\" is reserved for erased subjects",
                    "consent.erase_subject() names erased subjects erased:<pseudonym>.");
    check_key("category", c.category);
    check_key("purpose", c.purpose);
    const Taxonomy &t = taxonomy();
    if (!t.category_index.count(*c.category))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown category \"" + *c.category + "\"", "",
                    "See consent.categories for the defined categories.");
    if (!t.purpose_index.count(*c.purpose))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown purpose \"" + *c.purpose + "\"", "",
                    "See consent.purposes for the defined purposes.");
}

/* Appends one event and updates the derived state; returns the event id. */
int64 record(const Change &c)
{
    validate(c);
    std::string role = pg([] { return std::string(GetUserNameFromId(GetOuterUserId(), false)); });
    Spi spi;
    return pg([&] {
        Datum key[3] = {CStringGetTextDatum(c.subject->c_str()), CStringGetTextDatum(c.category->c_str()),
                        CStringGetTextDatum(c.purpose->c_str())};
        if (run_plan(LOCK_PAIR, key, nullptr) == 0) {
            run_plan(PLACEHOLDER, key, nullptr);
            if (run_plan(LOCK_PAIR, key, nullptr) != 1)
                elog(ERROR, "could not lock the consent state of subject \"%s\"", c.subject->c_str());
        }
        /* the event time is taken after the lock: commit order */
        TimestampTz at = GetCurrentTimestamp();
        if (c.valid_until && *c.valid_until <= at)
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("valid_until must be in the future"),
                     errdetail("valid_until is %s.", DatumGetCString(DirectFunctionCall1(
                                                         timestamptz_out, TimestampTzGetDatum(*c.valid_until))))));
        Datum action = c.action ? CStringGetTextDatum(c.action->c_str()) : Datum(0);
        Datum until = c.valid_until ? TimestampTzGetDatum(*c.valid_until) : Datum(0);
        Datum row[9] = {
            key[0],   key[1],    key[2], action, until, TimestampTzGetDatum(at), CStringGetTextDatum(role.c_str()),
            c.source, c.evidence};
        char nulls[10] = "         ";
        nulls[3] = c.action ? ' ' : 'n';
        nulls[4] = c.valid_until ? ' ' : 'n';
        nulls[7] = c.has_source ? ' ' : 'n';
        nulls[8] = c.has_evidence ? ' ' : 'n';
        if (run_plan(APPEND, row, nulls) != 1)
            elog(ERROR, "consent ledger insert returned no row");
        bool isnull;
        Datum id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
        int64 event_id = DatumGetInt64(id);
        Datum state[7] = {key[0], key[1], key[2], Int64GetDatum(event_id), action, until, TimestampTzGetDatum(at)};
        char state_nulls[8] = "       ";
        state_nulls[4] = c.action ? ' ' : 'n';
        state_nulls[5] = c.valid_until ? ' ' : 'n';
        if (run_plan(UPDATE_STATE, state, state_nulls) != 1)
            elog(ERROR, "consent state of subject \"%s\" was not updated", c.subject->c_str());
        return event_id;
    });
}

/* Whether the subject holds a grant that a withdrawal of (category,
 * purpose) takes back, for the notice of withdraw(). */
bool holds_grant(const Change &c)
{
    Spi spi;
    return pg([&] {
        Datum key[3] = {CStringGetTextDatum(c.subject->c_str()), CStringGetTextDatum(c.category->c_str()),
                        CStringGetTextDatum(c.purpose->c_str())};
        run_plan(HOLDS_GRANT, key, nullptr);
        bool isnull;
        Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
        return !isnull && DatumGetBool(d);
    });
}

std::optional<std::string> text_arg(FunctionCallInfo fcinfo, int argno)
{
    if (PG_ARGISNULL(argno))
        return std::nullopt;
    text *t = reinterpret_cast<text *>(pg([&] { return PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(argno)); }));
    return std::string(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

/* The subject argument (text, bigint or uuid, as the function is declared)
 * as the ledger's text key. */
std::optional<std::string> subject_arg(FunctionCallInfo fcinfo)
{
    if (PG_ARGISNULL(0))
        return std::nullopt;
    auto *type = static_cast<Oid *>(fcinfo->flinfo->fn_extra);
    if (!type) {
        Oid declared = pg([&] {
            HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
            if (!HeapTupleIsValid(tup))
                elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
            Form_pg_proc proc = (Form_pg_proc)GETSTRUCT(tup);
            Oid t = proc->pronargs > 0 ? proc->proargtypes.values[0] : InvalidOid;
            ReleaseSysCache(tup);
            return t;
        });
        type = static_cast<Oid *>(pg([&] { return MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid)); }));
        *type = declared;
        fcinfo->flinfo->fn_extra = type;
    }
    if (*type == TEXTOID)
        return text_arg(fcinfo, 0);
    if (*type != INT8OID && *type != UUIDOID)
        throw Error(ERRCODE_DATATYPE_MISMATCH, "a consent subject must be text, bigint or uuid");
    char buf[64];
    return std::string(subject_key(PG_GETARG_DATUM(0), *type, buf));
}

/* The event of arguments (subject, category, purpose, ...): subject as read
 * by the caller (its type depends on the function). */
Change change_of(FunctionCallInfo fcinfo, std::optional<std::string> subject, std::optional<std::string> action)
{
    Change c;
    c.subject = std::move(subject);
    c.category = text_arg(fcinfo, 1);
    c.purpose = text_arg(fcinfo, 2);
    c.action = std::move(action);
    return c;
}

/* valid_until, source and evidence from arguments first, first+1, first+2. */
void read_grant_args(FunctionCallInfo fcinfo, int first, Change &c)
{
    if (!PG_ARGISNULL(first))
        c.valid_until = PG_GETARG_TIMESTAMPTZ(first);
    c.has_source = !PG_ARGISNULL(first + 1);
    c.source = c.has_source ? PG_GETARG_DATUM(first + 1) : 0;
    c.has_evidence = !PG_ARGISNULL(first + 2);
    c.evidence = c.has_evidence ? PG_GETARG_DATUM(first + 2) : 0;
}

} // namespace

} // namespace consent

using namespace consent;

/* consent.grant(subject, category, purpose, valid_until, source, evidence) */
CONSENT_FUNCTION(consent_grant)
{
    return entry([&]() -> Datum {
        Change c = change_of(fcinfo, subject_arg(fcinfo), "grant");
        read_grant_args(fcinfo, 3, c);
        int64 id = record(c);
        citus::forward_call(fcinfo); /* recorded on every node of a Citus cluster */
        PG_RETURN_INT64(id);
    });
}

/* consent.withdraw(subject, category, purpose): recorded even when nothing
 * was granted, with a notice (evidence of the refusal). */
CONSENT_FUNCTION(consent_withdraw)
{
    return entry([&]() -> Datum {
        Change c = change_of(fcinfo, subject_arg(fcinfo), "withdraw");
        const Taxonomy &t = taxonomy();
        if (c.subject && !c.subject->empty() && c.category && c.purpose && t.category_index.count(*c.category) &&
            t.purpose_index.count(*c.purpose) && !holds_grant(c)) {
            std::string s = *c.subject, cat = *c.category, pur = *c.purpose;
            pg([&] {
                ereport(NOTICE, (errmsg("subject %s holds no grant for category \"%s\" and purpose \"%s\"", s.c_str(),
                                        cat.c_str(), pur.c_str()),
                                 errdetail("The withdrawal is recorded anyway, as evidence of the refusal.")));
            });
        }
        int64 id = record(c);
        citus::forward_call(fcinfo);
        PG_RETURN_INT64(id);
    });
}

/* consent._record(subject, category, purpose, action, valid_until, source,
 * evidence): the common path, callable by superusers only.  The ledger's
 * constraints check the action and that only grants expire. */
CONSENT_FUNCTION(consent_record)
{
    return entry([&]() -> Datum {
        std::optional<std::string> subject = text_arg(fcinfo, 0);
        Change c = change_of(fcinfo, std::move(subject), text_arg(fcinfo, 3));
        read_grant_args(fcinfo, 4, c);
        PG_RETURN_INT64(record(c));
    });
}
