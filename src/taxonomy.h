/*
 * taxonomy.h — the consent catalog as this backend sees it: categories and
 * their tagged types, purposes, role grants, protected tables, masks.
 *
 * Owns: an in-memory copy of the consent.* catalog tables, loaded lazily in
 * a transaction and dropped by relcache invalidation of those tables.
 * Must never: be read outside a transaction, or keep pointers across a
 * reload (callers get the generation number to notice a reload).
 */
#pragma once

#include "boundary.h"
#include "mask.h"

extern "C" {
#include "access/attnum.h"
}

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace consent {

/* A set of category or purpose indexes; one word inline for up to 64. */
class IndexSet {
  public:
    void resize(size_t n)
    {
        n_ = n;
        small_ = 0;
        words_.assign(n > 64 ? (n + 63) / 64 : 0, 0);
    }
    void set(size_t i)
    {
        if (n_ <= 64)
            small_ |= uint64_t(1) << i;
        else
            words_[i / 64] |= uint64_t(1) << (i % 64);
    }
    /* The set as one word: only while it has at most 64 members. */
    uint64_t word() const { return small_; }
    bool test(size_t i) const
    {
        if (i >= n_)
            return false;
        if (n_ <= 64)
            return (small_ >> i) & 1;
        return (words_[i / 64] >> (i % 64)) & 1;
    }

  private:
    size_t n_ = 0;
    uint64_t small_ = 0;
    std::vector<uint64_t> words_;
};

struct Category {
    std::string key;
    int parent = -1;
    bool special = false;
    Oid type = InvalidOid;
    Oid base_type = InvalidOid;
    std::string default_mask;
    IndexSet ancestors; /* ancestors and itself */
};

struct Purpose {
    std::string key;
    int parent = -1;
    IndexSet ancestors;       /* ancestors and itself */
    IndexSet without_consent; /* categories this purpose's legal basis reaches */
};

/* How a type carries a tag: itself, or built from a tagged type. */
enum class Derivation { None, Direct, Domain, Array, Composite };
struct TypeTag {
    int category = -1;
    Derivation how = Derivation::None;
};

/* How one tagged column of one table is masked. */
struct ColumnRule {
    int category = -1;
    /* the column's type is an array or composite built from a tagged type:
     * the whole value is NULL unless revealed (arrays: by the element's
     * category; composites: only to bypass roles) */
    Derivation how = Derivation::Direct;
    Oid value_type = InvalidOid; /* the column's type, domains resolved */
    bool is_protected = false;   /* the table names its subject column */
    /* protected and not a composite: decided by the category's bit in the
     * decisions remembered for the row's subject (decision.h) */
    bool by_category = false;
    AttrNumber subject_attno = InvalidAttrNumber;
    Oid subject_type = InvalidOid;
    Oid base_type = InvalidOid; /* the tagged type's base, domains resolved */
    MaskSpec mask;
    std::string mask_text;
};

struct Taxonomy {
    bool installed = false; /* pg_consent exists in this database */
    uint64_t generation = 0;
    Oid mask_func = InvalidOid;   /* consent._mask */
    Oid strict_func = InvalidOid; /* consent._mask_strict */
    /* Citus: a tagged column of a Citus table in the query a node sends to
     * the nodes that read its shards, with the sender's session context */
    Oid remote_func = InvalidOid;  /* consent._mask_remote(value, claim) */
    Oid claimed_func = InvalidOid; /* consent._mask_claimed(value, subject, relid, attno, claim) */
    Oid claim_func = InvalidOid;   /* consent._claim(value, claim): a query's claim as a qual */
    /* consent._read_unmasked(relation, role, columns, cells...): the
     * audit's count of a scan planned for a bypass role (bypass.cpp) */
    Oid unmasked_func = InvalidOid;
    std::vector<Category> categories;
    /* With at most 64 categories (decide_all()): per category, itself and
     * its descendants as one word; empty with more categories. */
    std::vector<uint64_t> descendants;
    uint64_t special_categories = 0; /* with descendants: the special ones */
    std::vector<Purpose> purposes;
    std::unordered_map<std::string, int> category_index;
    std::unordered_map<std::string, int> purpose_index;
    std::unordered_map<Oid, int> type_category;                      /* tagged domain -> category */
    std::unordered_map<Oid, std::string> protected_subject;          /* relation -> subject column */
    std::unordered_map<Oid, std::vector<std::string>> purpose_roles; /* role -> purposes */
    std::unordered_map<uint64_t, std::string> column_masks;          /* (relid, attno) -> mask */
    std::vector<Oid> catalog_relids;
};

namespace detail {
/* The taxonomy while nothing invalidated it (nullptr otherwise): the fast
 * path of taxonomy(), called for every masked cell. */
extern const Taxonomy *taxonomy_fresh;
const Taxonomy &taxonomy_slow();
} // namespace detail

/* The current taxonomy, loaded if needed.  Call inside a transaction. */
inline const Taxonomy &taxonomy()
{
    const Taxonomy *t = detail::taxonomy_fresh;
    return t ? *t : detail::taxonomy_slow();
}
/* The taxonomy in use, without reloading it when an invalidation arrived
 * since: for code that runs between a caller's taxonomy() and the caller's
 * use of it (a reload would free the object the caller holds, and renumber
 * the categories its decisions use). */
const Taxonomy &taxonomy_in_use();
/* Category index of a tagged type or a type built from one (a domain over
 * it, an array of it, a composite with such a field), -1 otherwise (fast). */
int tagged_category(Oid type);
TypeTag type_tag(Oid type);
/* The masking rule of (relation, attno); nullptr when the column is not tagged. */
const ColumnRule *column_rule(Oid relid, AttrNumber attno);
namespace detail {
extern uint64_t rules_epoch_counter;
}
/* Changes whenever column rules may have been dropped: pointers returned by
 * column_rule() stay valid while it does not change. */
inline uint64_t rules_epoch()
{
    return detail::rules_epoch_counter;
}
/* The relation itself or its nearest protected ancestor; InvalidOid if none. */
Oid protected_owner(Oid relid);
/* Whether the role may act under the purpose (allowed it or an ancestor). */
bool role_allowed_purpose(Oid role, int purpose);
/* Whether the role is superuser or has BYPASSRLS. */
bool role_bypasses(Oid role);
/* Changes whenever role attributes or memberships may have changed (what
 * role_bypasses() and role_allowed_purpose() answer from). */
uint64_t roles_generation();
/* Forget everything (extension created or dropped, catalog changed). */
void taxonomy_invalidate();

} // namespace consent
