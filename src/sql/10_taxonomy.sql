-- pg_consent install script, part 10: taxonomy (categories and tagged types)
-- and purposes (with their legal basis and the roles allowed them).

-- Tells every backend that the consent catalog changed (relcache
-- invalidation of the changed catalog table); fired by triggers.
CREATE FUNCTION consent._catalog_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'consent_catalog_changed';

CREATE TRIGGER categories_changed AFTER INSERT OR UPDATE OR DELETE ON consent.categories
    FOR EACH ROW EXECUTE FUNCTION consent._catalog_changed();
CREATE TRIGGER categories_truncated AFTER TRUNCATE ON consent.categories
    FOR EACH STATEMENT EXECUTE FUNCTION consent._catalog_changed();
CREATE TRIGGER purposes_changed AFTER INSERT OR UPDATE OR DELETE ON consent.purposes
    FOR EACH ROW EXECUTE FUNCTION consent._catalog_changed();
CREATE TRIGGER purposes_truncated AFTER TRUNCATE ON consent.purposes
    FOR EACH STATEMENT EXECUTE FUNCTION consent._catalog_changed();
CREATE TRIGGER purpose_roles_changed AFTER INSERT OR UPDATE OR DELETE ON consent.purpose_roles
    FOR EACH ROW EXECUTE FUNCTION consent._catalog_changed();
CREATE TRIGGER purpose_roles_truncated AFTER TRUNCATE ON consent.purpose_roles
    FOR EACH STATEMENT EXECUTE FUNCTION consent._catalog_changed();
CREATE TRIGGER protected_tables_changed AFTER INSERT OR UPDATE OR DELETE ON consent.protected_tables
    FOR EACH ROW EXECUTE FUNCTION consent._catalog_changed();
CREATE TRIGGER protected_tables_truncated AFTER TRUNCATE ON consent.protected_tables
    FOR EACH STATEMENT EXECUTE FUNCTION consent._catalog_changed();
CREATE TRIGGER column_masks_changed AFTER INSERT OR UPDATE OR DELETE ON consent.column_masks
    FOR EACH ROW EXECUTE FUNCTION consent._catalog_changed();
CREATE TRIGGER column_masks_truncated AFTER TRUNCATE ON consent.column_masks
    FOR EACH STATEMENT EXECUTE FUNCTION consent._catalog_changed();
-- Row triggers, fired also by logical replication's apply worker, so that a
-- subscriber's backends learn of replicated catalog changes.
ALTER TABLE consent.categories ENABLE ALWAYS TRIGGER categories_changed;
ALTER TABLE consent.purposes ENABLE ALWAYS TRIGGER purposes_changed;
ALTER TABLE consent.purpose_roles ENABLE ALWAYS TRIGGER purpose_roles_changed;
ALTER TABLE consent.protected_tables ENABLE ALWAYS TRIGGER protected_tables_changed;
ALTER TABLE consent.column_masks ENABLE ALWAYS TRIGGER column_masks_changed;

-- Shipped categories and purposes cannot be changed or removed: pg_dump
-- restores them from CREATE EXTENSION, so a change would silently revert
-- (define your own category or purpose, or set a column's mask instead).
CREATE FUNCTION consent._shipped_immutable() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.shipped THEN
        RAISE EXCEPTION '% "%" is shipped with pg_consent and cannot be changed', TG_ARGV[0], OLD.key
            USING ERRCODE = '55000',
                  HINT = 'Define your own with consent.define_' || TG_ARGV[0] || '(), or use consent.set_mask() per column.';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER categories_shipped BEFORE UPDATE OR DELETE ON consent.categories
    FOR EACH ROW EXECUTE FUNCTION consent._shipped_immutable('category');
CREATE TRIGGER purposes_shipped BEFORE UPDATE OR DELETE ON consent.purposes
    FOR EACH ROW EXECUTE FUNCTION consent._shipped_immutable('purpose');

-- Raises 22023 unless key is a well-formed dotted key.
CREATE FUNCTION consent._check_key(what text, key text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    IF key IS NULL THEN
        RAISE EXCEPTION '% key must not be null', what USING ERRCODE = '22004';
    END IF;
    IF key !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' OR length(key) > 200 THEN
        RAISE EXCEPTION 'invalid % key "%"', what, key USING ERRCODE = '22023',
            DETAIL = 'Keys are dot-separated lowercase identifiers of at most 200 characters, e.g. user.contact.email.';
    END IF;
END
$$;


-- Adds a data category and its consent-tagged column type.
CREATE FUNCTION consent.define_category(key text, base_type regtype, type_name text,
                                        mask text DEFAULT 'null', special boolean DEFAULT false,
                                        label text DEFAULT NULL)
    RETURNS regtype LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    parent_key text := consent._parent_key(key);
    parent_special boolean;
    schema_name text;
    bare_name text;
    base regtype;
    result regtype;
BEGIN
    PERFORM consent._check_key('category', key);
    IF base_type IS NULL OR type_name IS NULL OR mask IS NULL OR special IS NULL THEN
        RAISE EXCEPTION 'base_type, type_name, mask and special must not be null' USING ERRCODE = '22004';
    END IF;
    IF EXISTS (SELECT FROM consent.categories c WHERE c.key = define_category.key) THEN
        RAISE EXCEPTION 'category "%" already exists', key USING ERRCODE = '42710';
    END IF;
    IF parent_key IS NOT NULL THEN
        SELECT c.special INTO parent_special FROM consent.categories c WHERE c.key = parent_key;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'parent category "%" of "%" does not exist', parent_key, key USING ERRCODE = '22023',
                HINT = 'Define the parent category first.';
        END IF;
        IF parent_special AND NOT special THEN
            RAISE EXCEPTION 'category "%" must be special because its parent "%" is', key, parent_key
                USING ERRCODE = '22023';
        END IF;
    END IF;
    -- The base type must not itself be tagged.
    IF EXISTS (SELECT FROM consent.categories c WHERE c.type = base_type) THEN
        RAISE EXCEPTION 'base type % is already a consent-tagged type', base_type USING ERRCODE = '22023';
    END IF;
    base := base_type;
    IF (SELECT typtype FROM pg_type WHERE oid = base) NOT IN ('b', 'e', 'r', 'm', 'd') THEN
        RAISE EXCEPTION 'base type % cannot carry a consent tag', base USING ERRCODE = '22023',
            DETAIL = 'Only base, enum, range and domain types can be tagged.';
    END IF;
    PERFORM consent.check_mask(mask, base);

    IF type_name ~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$' THEN
        schema_name := split_part(type_name, '.', 1);
        bare_name := split_part(type_name, '.', 2);
    ELSIF type_name ~ '^[a-z_][a-z0-9_]*$' THEN
        schema_name := 'consent';
        bare_name := type_name;
    ELSE
        RAISE EXCEPTION 'invalid type name "%"', type_name USING ERRCODE = '42602',
            HINT = 'Use a lowercase identifier, optionally schema-qualified.';
    END IF;
    IF schema_name IN ('pg_catalog', 'information_schema', 'pg_toast') OR schema_name LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'cannot create a consent-tagged type in schema "%"', schema_name USING ERRCODE = '42939',
            DETAIL = 'System schemas are not dumped by pg_dump.';
    END IF;
    IF to_regnamespace(quote_ident(schema_name)) IS NULL THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema_name USING ERRCODE = '3F000';
    END IF;
    IF to_regtype(quote_ident(schema_name) || '.' || quote_ident(bare_name)) IS NOT NULL THEN
        RAISE EXCEPTION 'type %.% already exists', schema_name, bare_name USING ERRCODE = '42710';
    END IF;
    EXECUTE format('CREATE DOMAIN %I.%I AS %s', schema_name, bare_name, base::text);
    result := to_regtype(quote_ident(schema_name) || '.' || quote_ident(bare_name));
    EXECUTE format('COMMENT ON DOMAIN %I.%I IS %L', schema_name, bare_name,
                   'consent-tagged: ' || key);
    INSERT INTO consent.categories (key, parent, label, type, base_type, special, default_mask)
        VALUES (key, parent_key, label, result, base, special, mask);
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION consent.define_category(text, regtype, text, text, boolean, text) FROM PUBLIC;

-- Adds a processing purpose.
CREATE FUNCTION consent.define_purpose(key text, basis text DEFAULT 'consent',
                                       necessary text[] DEFAULT '{}', label text DEFAULT NULL)
    RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    parent_key text := consent._parent_key(key);
    missing text;
BEGIN
    PERFORM consent._check_key('purpose', key);
    IF basis IS NULL OR necessary IS NULL THEN
        RAISE EXCEPTION 'basis and necessary must not be null' USING ERRCODE = '22004';
    END IF;
    IF basis NOT IN ('consent', 'contract', 'legal_obligation', 'vital_interest', 'public_task',
                     'legitimate_interest') THEN
        RAISE EXCEPTION 'unknown legal basis "%"', basis USING ERRCODE = '22023',
            HINT = 'Use consent, contract, legal_obligation, vital_interest, public_task or legitimate_interest.';
    END IF;
    IF basis = 'consent' AND cardinality(necessary) > 0 THEN
        RAISE EXCEPTION 'a purpose based on consent cannot list necessary categories' USING ERRCODE = '22023',
            DETAIL = 'Only purposes with another legal basis (GDPR Art. 6(1)(b)-(f)) see categories without consent.';
    END IF;
    SELECT n INTO missing FROM unnest(necessary) n
        WHERE n IS NULL OR NOT EXISTS (SELECT FROM consent.categories c WHERE c.key = n) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unknown category "%" in necessary', coalesce(missing, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT FROM consent.purposes p WHERE p.key = define_purpose.key) THEN
        RAISE EXCEPTION 'purpose "%" already exists', key USING ERRCODE = '42710';
    END IF;
    IF parent_key IS NOT NULL AND NOT EXISTS (SELECT FROM consent.purposes p WHERE p.key = parent_key) THEN
        RAISE EXCEPTION 'parent purpose "%" of "%" does not exist', parent_key, key USING ERRCODE = '22023',
            HINT = 'Define the parent purpose first.';
    END IF;
    INSERT INTO consent.purposes (key, parent, label, basis, necessary)
        VALUES (key, parent_key, label, basis, necessary);
END
$$;
REVOKE ALL ON FUNCTION consent.define_purpose(text, text, text[], text) FROM PUBLIC;

-- Lets a role act under a purpose (and its children).
CREATE FUNCTION consent.allow_purpose(role regrole, purpose text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    IF role IS NULL OR purpose IS NULL THEN
        RAISE EXCEPTION 'role and purpose must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT FROM consent.purposes p WHERE p.key = allow_purpose.purpose) THEN
        RAISE EXCEPTION 'unknown purpose "%"', purpose USING ERRCODE = '22023';
    END IF;
    INSERT INTO consent.purpose_roles (role, purpose) VALUES (role, purpose) ON CONFLICT DO NOTHING;
END
$$;
REVOKE ALL ON FUNCTION consent.allow_purpose(regrole, text) FROM PUBLIC;

-- Takes back allow_purpose.
CREATE FUNCTION consent.revoke_purpose(role regrole, purpose text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    IF role IS NULL OR purpose IS NULL THEN
        RAISE EXCEPTION 'role and purpose must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT FROM consent.purposes p WHERE p.key = revoke_purpose.purpose) THEN
        RAISE EXCEPTION 'unknown purpose "%"', purpose USING ERRCODE = '22023';
    END IF;
    DELETE FROM consent.purpose_roles r WHERE r.role = revoke_purpose.role AND r.purpose = revoke_purpose.purpose;
    IF NOT FOUND THEN
        RAISE NOTICE 'role % was not allowed purpose "%"', role, purpose;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION consent.revoke_purpose(regrole, text) FROM PUBLIC;

-- The purpose the session acts under, NULL when none.
CREATE FUNCTION consent.current_purpose() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('consent.purpose', true), '') $$;
