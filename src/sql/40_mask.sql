-- pg_consent install script, part 40: the masks (src/mask.cpp, docs/masks.md).

-- Applies a mask spec to one value of any type and returns it as that type
-- (domains are masked as their base type).  NULL value: NULL.  NULL mask: an
-- error.  STABLE: the hash mask depends on consent.pseudonym_key.
-- Not granted to PUBLIC: with the hash mask it computes keyed pseudonyms,
-- which would let any role test guesses against pseudonymized values.
CREATE FUNCTION consent.mask_value(value anyelement, mask text) RETURNS anyelement
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_mask_value';
REVOKE ALL ON FUNCTION consent.mask_value(anyelement, text) FROM PUBLIC;
COMMENT ON FUNCTION consent.mask_value(anyelement, text) IS 'applies a mask (null, redact, partial(p,s), email, initials, year, month, generalize, hash, or schema.function) to one value';

-- Raises an error (22023, 42883 or 42804) unless the mask spec is valid for
-- values of the type (or of its base type, for a domain).
CREATE FUNCTION consent.check_mask(mask text, base_type regtype) RETURNS void
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'consent_check_mask';
COMMENT ON FUNCTION consent.check_mask(text, regtype) IS 'raises an error unless the mask can mask values of the type';
