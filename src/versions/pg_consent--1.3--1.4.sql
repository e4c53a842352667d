-- pg_consent 1.3 -> 1.4

\echo Use "ALTER EXTENSION pg_consent UPDATE TO '1.4'" to load this file. \quit

-- Removes a category added with consent.define_category(): its tagged type
-- (the domain) and its row in consent.categories, all or nothing.  Refuses
-- (2BP01) while anything depends on it: child categories, purposes that
-- list it as necessary, consent events (the ledger is append-only
-- evidence), and columns, domains, composite types or functions that use
-- its type; it never drops them.  Shipped categories stay (0A000).
CREATE FUNCTION consent.drop_category(key text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    cat consent.categories;
    dependent text;
    type_name text;
    users text;
BEGIN
    PERFORM consent._check_key('category', key);
    SELECT * INTO cat FROM consent.categories c WHERE c.key = drop_category.key FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown category "%"', key USING ERRCODE = '22023';
    END IF;
    IF cat.shipped THEN
        RAISE EXCEPTION 'category "%" is shipped with pg_consent and cannot be dropped', key USING ERRCODE = '0A000',
            DETAIL = 'Only categories added with consent.define_category() can be dropped.';
    END IF;
    SELECT c.key INTO dependent FROM consent.categories c WHERE c.parent = cat.key ORDER BY c.key LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot drop category "%" because other objects depend on it', key USING ERRCODE = '2BP01',
            DETAIL = format('Category "%s" is a child of it.', dependent),
            HINT = 'Drop its child categories first.';
    END IF;
    SELECT p.key INTO dependent FROM consent.purposes p WHERE cat.key = ANY (p.necessary) ORDER BY p.key LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot drop category "%" because other objects depend on it', key USING ERRCODE = '2BP01',
            DETAIL = format('Purpose "%s" lists it among its necessary categories.', dependent);
    END IF;
    IF EXISTS (SELECT FROM consent.ledger l WHERE l.category = cat.key)
       OR EXISTS (SELECT FROM consent.subject_state s WHERE s.category = cat.key) THEN
        RAISE EXCEPTION 'cannot drop category "%" because other objects depend on it', key USING ERRCODE = '2BP01',
            DETAIL = 'The consent ledger holds consent events for it.',
            HINT = 'The ledger is append-only evidence and is never rewritten, so a category it names stays. '
                   'DROP EXTENSION pg_consent CASCADE drops it together with the whole ledger.';
    END IF;
    SELECT format('%I.%I', n.nspname, t.typname) INTO type_name
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = cat.type;
    IF type_name IS NOT NULL THEN
        BEGIN
            EXECUTE format('DROP DOMAIN %s RESTRICT', type_name);
        EXCEPTION WHEN dependent_objects_still_exist THEN
            GET STACKED DIAGNOSTICS users = PG_EXCEPTION_DETAIL;
            RAISE EXCEPTION 'cannot drop category "%" because other objects depend on it', key
                USING ERRCODE = '2BP01', DETAIL = users,
                      HINT = format('Drop those objects or change them to another type than %s first; '
                                    'consent.drop_category() never drops data.', type_name);
        END;
    END IF;
    DELETE FROM consent.categories c WHERE c.key = cat.key;
END
$$;
REVOKE ALL ON FUNCTION consent.drop_category(text) FROM PUBLIC;
