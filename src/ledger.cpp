/*
 * ledger.cpp — triggers that keep the consent catalog honest: the ledger
 * is append-only, and catalog changes reach every backend.
 *
 * Owns: consent._ledger_append_only(), consent._catalog_changed() and
 * consent._subject_state_changed().
 * Must never: let UPDATE, DELETE or TRUNCATE of the ledger through, except
 * while the erasure routine runs in this backend.
 */
#include "boundary.h"
#include "consent.h"
#include "cache.h"
#include "taxonomy.h"

extern "C" {
#include "access/htup_details.h"
#include "commands/trigger.h"
#include "utils/lsyscache.h"
#include "utils/inval.h"
#include "utils/rel.h"
}

namespace consent {
/* Set only by the erasure routine, for the duration of its own statements. */
bool erasure_in_progress = false;
} // namespace consent

using namespace consent;

CONSENT_FUNCTION(consent_ledger_append_only)
{
    return entry([&]() -> Datum {
        if (!CALLED_AS_TRIGGER(fcinfo))
            throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "consent._ledger_append_only() must be a trigger");
        auto *td = reinterpret_cast<TriggerData *>(fcinfo->context);
        if (!erasure_in_progress) {
            const char *op = TRIGGER_FIRED_BY_UPDATE(td->tg_event)   ? "UPDATE"
                             : TRIGGER_FIRED_BY_DELETE(td->tg_event) ? "DELETE"
                                                                     : "TRUNCATE";
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        std::string("the consent ledger is append-only: ") + op + " is not allowed",
                        "Consent is changed by appending events with consent.grant() and consent.withdraw().");
        }
        return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
    });
}

CONSENT_FUNCTION(consent_catalog_changed)
{
    return entry([&]() -> Datum {
        if (!CALLED_AS_TRIGGER(fcinfo))
            throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "consent._catalog_changed() must be a trigger");
        auto *td = reinterpret_cast<TriggerData *>(fcinfo->context);
        Oid relid = RelationGetRelid(td->tg_relation);
        pg([&] { CacheInvalidateRelcacheByRelid(relid); });
        taxonomy_invalidate();
        return PointerGetDatum(nullptr);
    });
}

/* Row trigger on consent.subject_state: the subject's cached decisions are
 * dropped here and, at commit, in every backend (shared ring).  A relcache
 * invalidation, WAL-logged with the commit, tells hot standbys (see
 * cache.cpp).  It names subject_state's TOAST table, which no plan depends
 * on and almost no backend has open: invalidating subject_state itself made
 * every backend replan its statements on it after each consent change. */
CONSENT_FUNCTION(consent_subject_state_changed)
{
    return entry([&]() -> Datum {
        if (!CALLED_AS_TRIGGER(fcinfo))
            throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                        "consent._subject_state_changed() must be a trigger");
        auto *td = reinterpret_cast<TriggerData *>(fcinfo->context);
        Relation rel = td->tg_relation;
        if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event)) {
            cache_everything_changed();
        } else {
            AttrNumber attno = pg([&] { return get_attnum(RelationGetRelid(rel), "subject"); });
            for (HeapTuple tup : {td->tg_trigtuple, td->tg_newtuple}) {
                if (!tup)
                    continue;
                bool isnull;
                Datum d = pg([&] { return heap_getattr(tup, attno, RelationGetDescr(rel), &isnull); });
                if (isnull)
                    continue;
                text *t = reinterpret_cast<text *>(pg([&] { return PG_DETOAST_DATUM_PACKED(d); }));
                cache_subject_changed(std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
            }
        }
        Oid signal = standby_signal_relid(rel);
        pg([&] { CacheInvalidateRelcacheByRelid(signal); });
        return PointerGetDatum(nullptr);
    });
}
