/*
 * ledger.cpp — triggers that keep the consent catalog honest: the ledger
 * is append-only, and catalog changes reach every backend.
 *
 * Owns: consent._ledger_append_only() and consent._catalog_changed().
 * Must never: let UPDATE, DELETE or TRUNCATE of the ledger through, except
 * while the erasure routine runs in this backend.
 */
#include "boundary.h"
#include "consent.h"
#include "taxonomy.h"

extern "C" {
#include "commands/trigger.h"
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
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, std::string("the consent ledger is append-only: ") + op + " is not allowed",
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
