/*
 * mask.h — the masks: what a consent-tagged cell looks like when the session
 * may not see it.
 *
 * Owns: parsing and checking mask specs ('null', 'redact', 'partial(2,1)',
 * 'email', 'initials', 'year', 'month', 'generalize', 'hash', or a
 * schema-qualified function 'myschema.myfn'), and applying one to a value.
 * Must never: reveal a whole value, cut a user-perceived character, produce
 * invalid text, or decide whether a cell is masked (that is the caller's job).
 *
 * Both functions throw C++ exceptions (consent::Error, consent::PgError):
 * call them only from code running inside consent::entry().
 */
#pragma once

#include "boundary.h"

#include <string>

namespace consent {

enum class MaskKind { Null, Redact, Partial, Email, Initials, Year, Month, Generalize, Hash, Function };

struct MaskSpec {
    MaskKind kind = MaskKind::Null;
    int prefix = 0;        /* partial: user-perceived characters kept at the start */
    int suffix = 0;        /* partial: user-perceived characters kept at the end */
    Oid func = InvalidOid; /* function mask: the function from the base type to itself */
};

/*
 * Parses a mask spec and checks that it can mask values of base_type (a
 * domain is resolved to its base type).  Throws consent::Error with SQLSTATE
 * 22023 for a malformed spec or a mask that does not fit the type, 42883 for
 * an unknown function, 42804 for a function with the wrong signature.
 */
MaskSpec parse_mask(const std::string &spec, Oid base_type);

/* A masked value: a Datum, or NULL. */
struct MaskedValue {
    Datum value;
    bool isnull;
};

/*
 * Applies a mask parsed for base_type (parse_mask() checked that it fits)
 * to one non-NULL value of base_type (already resolved from any domain).
 * The result is palloc'd in CurrentMemoryContext.  Called once per masked
 * cell: no catalog lookups beyond the cached ones.
 */
MaskedValue build_mask(const MaskSpec &spec, Datum value, Oid base_type);
/* build_mask(), with the null mask (most masked cells) inline. */
inline MaskedValue mask_of(const MaskSpec &spec, Datum value, Oid base_type)
{
    if (spec.kind == MaskKind::Null)
        return {(Datum)0, true};
    return build_mask(spec, value, base_type);
}

} // namespace consent
