/*
 * taxonomy.cpp — loads the consent catalog into memory and answers the
 * questions the rewrite and the mask decision ask millions of times:
 * is this type tagged, how is this column masked, may this role use this
 * purpose.
 *
 * Owns: the Taxonomy object and its invalidation.
 * Must never: touch the catalog from an invalidation callback (callbacks
 * only mark things stale; the next use reloads inside a transaction).
 */
#include "taxonomy.h"
#include "citus.h"
#include "cache.h"
#include "invalidation.h"
#include "spi.h"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "utils/typcache.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

#include <memory>

namespace consent {

const Taxonomy *detail::taxonomy_fresh = nullptr;
uint64_t detail::rules_epoch_counter = 1;

namespace {

std::unique_ptr<Taxonomy> current;
bool stale = true;
uint64_t generation_counter = 0;
using detail::rules_epoch_counter;
/* Relations whose definition changed: their column rules are dropped. */
std::vector<Oid> dirty_relations;
bool all_relations_dirty = false;
std::unordered_map<uint64_t, ColumnRule> rules; /* (relid << 16 | attno) */
std::unordered_map<Oid, bool> bypass_roles;

uint64_t rule_key(Oid relid, AttrNumber attno)
{
    return (uint64_t(relid) << 16) | uint16_t(attno);
}

} // namespace

/* Our catalog tables changed, or a relation did. */
void taxonomy_relation_changed(Oid relid) noexcept
{
    detail::taxonomy_fresh = nullptr;
    if (relid == InvalidOid) {
        stale = true;
        all_relations_dirty = true;
        return;
    }
    if (!current || !current->installed) {
        /* maybe inside CREATE EXTENSION: any change may be ours */
        stale = true;
        return;
    }
    {
        for (Oid c : current->catalog_relids)
            if (c == relid) {
                stale = true;
                return;
            }
    }
    if (dirty_relations.size() < 1024 && dirty_relations.capacity() > dirty_relations.size())
        dirty_relations.push_back(relid); /* no allocation: a callback must not throw */
    else
        all_relations_dirty = true;
}

namespace {
uint64_t role_changes = 0; /* roles_generation() */
} // namespace

/* pg_authid or pg_auth_members: role attributes or membership changed. */
void taxonomy_roles_changed() noexcept
{
    bypass_roles.clear();
    ++role_changes;
}

namespace {

std::string req(const std::optional<std::string> &v)
{
    return v ? *v : std::string();
}

Oid lookup_function(const char *name, int nargs, const Oid *argtypes)
{
    return pg([&] {
        List *names = list_make2(makeString(pstrdup("consent")), makeString(pstrdup(name)));
        return LookupFuncName(names, nargs, argtypes, true);
    });
}

std::unique_ptr<Taxonomy> load()
{
    auto t = std::make_unique<Taxonomy>();
    t->generation = ++generation_counter;
    Oid ext = pg([] { return get_extension_oid("pg_consent", true); });
    if (!OidIsValid(ext))
        return t;
    /* The extension may exist but be half-created (inside CREATE EXTENSION). */
    Oid nsp = pg([] { return get_namespace_oid("consent", true); });
    Oid cat_rel = OidIsValid(nsp) ? pg([&] { return get_relname_relid("categories", nsp); }) : InvalidOid;
    Oid mask_rel = OidIsValid(nsp) ? pg([&] { return get_relname_relid("column_masks", nsp); }) : InvalidOid;
    if (!OidIsValid(cat_rel) || !OidIsValid(mask_rel))
        return t;
    for (const char *rel : {"categories", "purposes", "purpose_roles", "protected_tables", "column_masks"})
        t->catalog_relids.push_back(pg([&] { return get_relname_relid(rel, nsp); }));
    /* a catalog still being created (a restore, pg_upgrade creating the
     * tables one by one): not installed yet; any change reloads */
    for (Oid relid : t->catalog_relids)
        if (!OidIsValid(relid)) {
            t->catalog_relids.clear();
            return t;
        }

    Spi spi;
    for (auto &row : spi.query("SELECT key, parent, type::oid, base_type::oid, special, default_mask "
                               "FROM consent.categories ORDER BY key COLLATE \"C\"")) {
        Category c;
        c.key = req(row[0]);
        if (row[1]) {
            /* parents sort first; a missing one (a restore loading rows in
             * any order) leaves the category a root until it arrives */
            auto parent = t->category_index.find(*row[1]);
            c.parent = parent == t->category_index.end() ? -1 : parent->second;
        }
        c.type = row[2] ? Oid(std::stoul(*row[2])) : InvalidOid;
        c.base_type = row[3] ? Oid(std::stoul(*row[3])) : InvalidOid;
        c.special = req(row[4]) == "t";
        c.default_mask = req(row[5]);
        t->category_index[c.key] = int(t->categories.size());
        if (OidIsValid(c.type))
            t->type_category[c.type] = int(t->categories.size());
        t->categories.push_back(std::move(c));
    }
    size_t nc = t->categories.size();
    bool one_word = nc <= 64; /* decide_all() works on one word */
    if (one_word)
        t->descendants.assign(nc, 0);
    for (size_t i = 0; i < nc; i++) {
        auto &c = t->categories[i];
        c.ancestors.resize(nc);
        for (int a = int(i); a >= 0; a = t->categories[a].parent) {
            c.ancestors.set(a);
            if (one_word)
                t->descendants[size_t(a)] |= uint64_t(1) << i;
        }
        if (one_word && c.special)
            t->special_categories |= uint64_t(1) << i;
    }

    for (auto &row : spi.query("SELECT key, parent FROM consent.purposes "
                               "ORDER BY key COLLATE \"C\"")) {
        Purpose p;
        p.key = req(row[0]);
        if (row[1]) {
            auto parent = t->purpose_index.find(*row[1]);
            p.parent = parent == t->purpose_index.end() ? -1 : parent->second;
        }
        t->purpose_index[p.key] = int(t->purposes.size());
        t->purposes.push_back(std::move(p));
    }
    size_t np = t->purposes.size();
    for (size_t i = 0; i < np; i++) {
        auto &p = t->purposes[i];
        p.ancestors.resize(np);
        for (int a = int(i); a >= 0; a = t->purposes[a].parent)
            p.ancestors.set(a);
        p.without_consent.resize(nc);
    }
    for (auto &row : spi.query("SELECT p.key, n FROM consent.purposes p, unnest(p.necessary) n")) {
        auto pi = t->purpose_index.find(req(row[0]));
        if (pi == t->purpose_index.end())
            continue;
        auto &p = t->purposes[size_t(pi->second)];
        auto it = t->category_index.find(req(row[1]));
        if (it == t->category_index.end())
            continue;
        /* a necessary category reaches its descendants */
        for (size_t c = 0; c < nc; c++)
            if (t->categories[c].ancestors.test(size_t(it->second)))
                p.without_consent.set(c);
    }
    for (auto &row : spi.query("SELECT role::oid, purpose FROM consent.purpose_roles"))
        t->purpose_roles[Oid(std::stoul(req(row[0])))].push_back(req(row[1]));
    for (auto &row : spi.query("SELECT relation::oid, subject_column FROM consent.protected_tables"))
        t->protected_subject[Oid(std::stoul(req(row[0])))] = req(row[1]);
    for (auto &row : spi.query("SELECT m.relation::oid, a.attnum, m.mask FROM consent.column_masks m "
                               "JOIN pg_attribute a ON a.attrelid = m.relation AND a.attname = m.column_name "
                               "AND NOT a.attisdropped"))
        t->column_masks[rule_key(Oid(std::stoul(req(row[0]))), AttrNumber(std::stoi(req(row[1]))))] = req(row[2]);

    Oid mask_args[4] = {ANYELEMENTOID, ANYOID, OIDOID, INT2OID};
    t->mask_func = lookup_function("_mask", 4, mask_args);
    t->strict_func = lookup_function("_mask_strict", 4, mask_args);
    Oid remote_args[2] = {ANYELEMENTOID, TEXTARRAYOID};
    t->remote_func = lookup_function("_mask_remote", 2, remote_args);
    Oid claimed_args[5] = {ANYELEMENTOID, ANYOID, OIDOID, INT2OID, TEXTARRAYOID};
    t->claimed_func = lookup_function("_mask_claimed", 5, claimed_args);
    t->claim_func = lookup_function("_claim", 2, remote_args);
    Oid unmasked_args[4] = {OIDOID, OIDOID, INT2ARRAYOID, ANYOID};
    t->unmasked_func = lookup_function("_read_unmasked", 4, unmasked_args);
    /* inside CREATE EXTENSION, before the mask functions exist */
    t->installed = OidIsValid(t->mask_func) && OidIsValid(t->strict_func);
    return t;
}

void apply_dirty()
{
    dirty_relations.reserve(1024); /* taxonomy_relation_changed() never allocates */
    if (all_relations_dirty) {
        rules.clear();
        ++rules_epoch_counter;
        all_relations_dirty = false;
        dirty_relations.clear();
        return;
    }
    if (dirty_relations.empty())
        return;
    size_t before = rules.size();
    for (Oid relid : dirty_relations)
        for (auto it = rules.begin(); it != rules.end();)
            it = (Oid(it->first >> 16) == relid) ? rules.erase(it) : std::next(it);
    dirty_relations.clear();
    /* invalidations of relations without cached rules (most: every consent
     * change sends one, see ledger.cpp) leave the call sites' rules valid */
    if (rules.size() != before)
        ++rules_epoch_counter;
}

/* The nearest protected ancestor (inheritance or partitioning) of relid. */
Oid protected_ancestor(const Taxonomy &t, Oid relid)
{
    if (t.protected_subject.count(relid))
        return relid;
    /* a Citus shard is its distributed table's rows on this node */
    Oid distributed = citus::shard_parent(relid);
    if (OidIsValid(distributed))
        return protected_ancestor(t, distributed);
    bool has_parent = pg([&] { return has_superclass(relid); });
    if (!has_parent)
        return InvalidOid;
    Spi spi;
    auto rows = spi.query("WITH RECURSIVE anc(rel, depth) AS ("
                          "  SELECT inhparent, 1 FROM pg_inherits WHERE inhrelid = $1::oid"
                          "  UNION ALL SELECT i.inhparent, anc.depth + 1 FROM pg_inherits i"
                          "  JOIN anc ON i.inhrelid = anc.rel WHERE anc.depth < 100)"
                          "SELECT rel FROM anc ORDER BY depth",
                          {std::to_string(relid)}, true /* also partitions created by this statement */);
    for (auto &row : rows) {
        Oid anc = Oid(std::stoul(req(row[0])));
        if (t.protected_subject.count(anc))
            return anc;
    }
    return InvalidOid;
}

ColumnRule make_rule(const Taxonomy &t, Oid relid, AttrNumber attno)
{
    ColumnRule rule;
    Oid type = pg([&] { return get_atttype(relid, attno); });
    TypeTag tag = type_tag(type);
    if (tag.category < 0)
        return rule;
    rule.category = tag.category;
    rule.how = tag.how;
    rule.value_type = pg([&] { return getBaseType(type); });
    const Category &cat = t.categories[size_t(tag.category)];
    Oid owner = protected_ancestor(t, relid);
    char *attname = pg([&] { return get_attname(relid, attno, false); });
    std::string colname(attname);
    if (OidIsValid(owner)) {
        const std::string &subject = t.protected_subject.at(owner);
        rule.subject_attno = pg([&] { return get_attnum(relid, subject.c_str()); });
        if (rule.subject_attno != InvalidAttrNumber) {
            rule.is_protected = true;
            rule.subject_type = pg([&] { return getBaseType(get_atttype(relid, rule.subject_attno)); });
        }
    }
    rule.mask_text = cat.default_mask;
    /* a mask set on this table's column, or on the protected ancestor's column of the same name */
    auto m = t.column_masks.find(rule_key(relid, attno));
    if (m == t.column_masks.end() && OidIsValid(owner) && owner != relid) {
        AttrNumber anc_attno = pg([&] { return get_attnum(owner, colname.c_str()); });
        m = t.column_masks.find(rule_key(owner, anc_attno));
    }
    if (m != t.column_masks.end())
        rule.mask_text = m->second;
    rule.base_type = pg([&] { return getBaseType(cat.base_type); });
    rule.by_category = rule.is_protected && rule.how != Derivation::Composite;
    if (rule.how == Derivation::Array || rule.how == Derivation::Composite) {
        /* the category's mask applies to its base type, not to this one */
        rule.mask = MaskSpec{};
        rule.mask_text = "null";
        rule.base_type = rule.value_type;
    } else {
        rule.mask = parse_mask(rule.mask_text, rule.base_type);
    }
    return rule;
}

} // namespace

void taxonomy_invalidate()
{
    detail::taxonomy_fresh = nullptr;
    stale = true;
    all_relations_dirty = true;
}

const Taxonomy &taxonomy_in_use()
{
    return current ? *current : taxonomy();
}

const Taxonomy &detail::taxonomy_slow()
{
    detail::taxonomy_fresh = nullptr;
    /* Queries of the load itself are planned through our hooks: while
     * loading, they see an empty taxonomy (nothing of ours is tagged). */
    static const Taxonomy empty;
    static bool loading = false;
    if (loading)
        return current ? *current : empty;
    if (stale || !current) {
        /* Mark fresh first: invalidations arriving during the load mark it
         * stale again and the next call reloads. */
        stale = false;
        all_relations_dirty = true;
        loading = true;
        try {
            current = load();
            loading = false;
            ++detail::decision_stamp; /* decisions remembered under the old one */
        } catch (...) {
            loading = false;
            stale = true;
            current.reset();
            throw;
        }
    }
    apply_dirty();
    /* fresh until a callback or taxonomy_invalidate() says otherwise (the
     * load itself may have marked it stale again) */
    if (!stale)
        detail::taxonomy_fresh = current.get();
    return *current;
}

Oid protected_owner(Oid relid)
{
    const Taxonomy &t = taxonomy();
    return t.installed ? protected_ancestor(t, relid) : InvalidOid;
}

namespace {
std::unordered_map<Oid, TypeTag> derived_tags; /* cleared with the taxonomy */
uint64_t derived_generation = 0;

TypeTag resolve_tag(const Taxonomy &t, Oid type, int depth)
{
    auto it = t.type_category.find(type);
    if (it != t.type_category.end())
        return {it->second, Derivation::Direct};
    if (depth > 16 || !OidIsValid(type))
        return {};
    char typtype = pg([&] { return get_typtype(type); });
    if (typtype == TYPTYPE_DOMAIN) {
        Oid base = pg([&] {
            HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
            if (!HeapTupleIsValid(tup))
                return InvalidOid;
            Oid b = ((Form_pg_type)GETSTRUCT(tup))->typbasetype;
            ReleaseSysCache(tup);
            return b;
        });
        TypeTag inner = resolve_tag(t, base, depth + 1);
        if (inner.category >= 0)
            return {inner.category, inner.how == Derivation::Direct ? Derivation::Domain : inner.how};
        return {};
    }
    Oid elem = pg([&] { return get_element_type(type); });
    if (OidIsValid(elem)) {
        TypeTag inner = resolve_tag(t, elem, depth + 1);
        if (inner.category >= 0)
            return {inner.category, inner.how == Derivation::Composite ? Derivation::Composite : Derivation::Array};
        return {};
    }
    if (typtype == TYPTYPE_COMPOSITE) {
        std::vector<Oid> fields;
        pg([&] {
            TupleDesc desc = lookup_rowtype_tupdesc(type, -1);
            for (int a = 0; a < desc->natts; a++)
                if (!TupleDescAttr(desc, a)->attisdropped)
                    fields.push_back(TupleDescAttr(desc, a)->atttypid);
            ReleaseTupleDesc(desc);
        });
        for (Oid field : fields) {
            TypeTag inner = resolve_tag(t, field, depth + 1);
            if (inner.category >= 0)
                return {inner.category, Derivation::Composite};
        }
    }
    return {};
}
} // namespace

TypeTag type_tag(Oid type)
{
    const Taxonomy &t = taxonomy();
    if (t.type_category.empty())
        return {};
    if (derived_generation != t.generation) {
        derived_tags.clear();
        derived_generation = t.generation;
    }
    auto it = derived_tags.find(type);
    if (it != derived_tags.end())
        return it->second;
    TypeTag tag = resolve_tag(t, type, 0);
    derived_tags[type] = tag;
    return tag;
}

int tagged_category(Oid type)
{
    return type_tag(type).category;
}

const ColumnRule *column_rule(Oid relid, AttrNumber attno)
{
    const Taxonomy &t = taxonomy();
    if (!t.installed || attno <= 0)
        return nullptr;
    uint64_t key = rule_key(relid, attno);
    auto it = rules.find(key);
    if (it == rules.end())
        it = rules.emplace(key, make_rule(t, relid, attno)).first;
    return it->second.category >= 0 ? &it->second : nullptr;
}

bool role_allowed_purpose(Oid role, int purpose)
{
    const Taxonomy &t = taxonomy();
    if (role_bypasses(role))
        return true;
    for (auto &[allowed_role, keys] : t.purpose_roles) {
        bool member = pg([&] { return has_privs_of_role(role, allowed_role); });
        if (!member)
            continue;
        for (auto &k : keys) {
            auto it = t.purpose_index.find(k);
            if (it != t.purpose_index.end() && t.purposes[size_t(purpose)].ancestors.test(size_t(it->second)))
                return true;
        }
    }
    return false;
}

uint64_t roles_generation()
{
    return role_changes;
}

bool role_bypasses(Oid role)
{
    auto it = bypass_roles.find(role);
    if (it != bypass_roles.end())
        return it->second;
    bool bypass = pg([&] { return superuser_arg(role) || has_bypassrls_privilege(role); });
    bypass_roles[role] = bypass;
    return bypass;
}

} // namespace consent
