/*
 * maskscan.h — masking one cell, shared by the mask functions (one call
 * per cell) and the ConsentMask custom scan (one node per scan).
 */
#pragma once

#include "audit.h"
#include "boundary.h"
#include "decision.h"
#include "mask.h"
#include "taxonomy.h"

extern "C" {
#include "access/attnum.h"
#include "nodes/execnodes.h"
#include "nodes/plannodes.h"
}

namespace consent {

/* One place a tagged column is masked: a call site of consent._mask or a
 * column of a ConsentMask scan.  The caller sets what the call names
 * (relid, attno, strict) and the base types of the value and the subject;
 * mask_cell() looks the column's rule up again whenever the rules change. */
struct MaskSite {
    uint64_t epoch = 0;
    const ColumnRule *rule = nullptr;
    AuditSlot audit;
    Oid relid = InvalidOid;
    AttrNumber attno = 0;
    bool strict = false;
    Oid value_type = InvalidOid;
    Oid subject_type = InvalidOid; /* InvalidOid: no subject (NULL) */
    ClaimedContext *claim = nullptr; /* Citus: decided in another node's context */
};

/* Out of line parts of mask_cell() (rewrite.cpp): the rule after the rules
 * changed (42804 when the argument types are not the column's), and the
 * refusal of a masked cell at a strict site (42501). */
void resolve_site(MaskSite &site);
[[noreturn]] void refuse_strict(const MaskSite &site);

/* A non-NULL cell: the value when revealed, else its mask (maybe NULL), or
 * 42501 for a strict site.  Counts the cell for the audit.  Inline: it runs
 * once per tagged cell (and returns by value: no address-taken local, no
 * stack protector in the caller).  Owns no C++ resources: may ereport
 * directly. */
pg_attribute_always_inline MaskedValue mask_cell(MaskSite &site, const Taxonomy &t, Datum value, Datum subject,
                                                 bool subject_null)
{
    if (site.epoch != rules_epoch())
        resolve_site(site);
    const ColumnRule *rule = site.rule;
    if (!rule)
        return {value, false}; /* no longer tagged: the plan is being replaced */
    const SessionContext &ctx = likely(site.claim == nullptr) ? session_context() : claimed_context_fast(*site.claim);
    bool revealed = cell_revealed(t, ctx, *rule, subject, subject_null);
    audit_cell(*rule, site.relid, site.attno, ctx.purpose, ctx.serial, revealed, site.audit);
    if (revealed)
        return {value, false};
    if (site.strict)
        refuse_strict(site);
    return mask_of(rule->mask, value, rule->base_type);
}

/* consent.mask_scan: whether plans mask in ConsentMask scan nodes. */
extern bool mask_scan_enabled;

/* Replaces, in a finished plan, every scan whose output is made of its
 * relation's columns and mask calls on them by a ConsentMask node over the
 * same scan returning the columns: the masks are computed by the node, one
 * row at a time, instead of by one function-call expression each.
 * The plan may be one another extension builds on (Citus keeps it as a
 * subplan and walks it): the node is an ordinary CustomScan whose
 * custom_private is a list of nodes, as other extensions expect. */
void mask_scans(PlannedStmt *stmt, const Taxonomy &t);
/* Registers the node with PostgreSQL (_PG_init; needed by parallel workers). */
void register_mask_scan();
/* The highest plan_node_id of a finished plan (its tree and sub-plans): the
 * nodes a transformation adds take the next ones. */
int max_plan_node_id(const PlannedStmt *stmt);
/* ReScanCustomScan of a custom scan node that runs one child (custom_ps). */
void rescan_child(CustomScanState *node);

} // namespace consent
