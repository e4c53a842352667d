/*
 * spi.cpp — the SPI query runner of spi.h.
 */
#include "spi.h"
#include "shared_state.h"

extern "C" {
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
}

#include <unordered_map>

namespace consent {

Spi::Spi()
{
    pg([&] {
        GetUserIdAndSecContext(&saved_user_, &saved_sec_);
        SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
                               saved_sec_ | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
        guc_level_ = NewGUCNestLevel();
        (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                                0, false);
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "SPI_connect failed");
    });
}

Spi::~Spi()
{
    try {
        pg([&] {
            SPI_finish();
            AtEOXact_GUC(false, guc_level_);
            SetUserIdAndSecContext(saved_user_, saved_sec_);
        });
    } catch (...) {
        /* already failing: the transaction abort cleans up SPI and GUCs */
        SetUserIdAndSecContext(saved_user_, saved_sec_);
    }
}

namespace {
/* Text parameters as SPI wants them; fill() calls PostgreSQL (inside pg()). */
struct TextParams {
    explicit TextParams(const std::vector<std::optional<std::string>> &p)
        : params(p), n(int(p.size())), types(size_t(n), TEXTOID), values(size_t(n)), nulls(size_t(n), ' ')
    {
    }
    void fill()
    {
        for (int i = 0; i < n; i++) {
            if (params[size_t(i)])
                values[size_t(i)] = CStringGetTextDatum(params[size_t(i)]->c_str());
            else
                nulls[size_t(i)] = 'n';
        }
    }
    const std::vector<std::optional<std::string>> &params;
    int n;
    std::vector<Oid> types;
    std::vector<Datum> values;
    std::vector<char> nulls;
};
} // namespace

void Spi::exec(const char *sql, const std::vector<std::optional<std::string>> &params)
{
    TextParams tp(params);
    pg([&] {
        tp.fill();
        int rc = SPI_execute_with_args(sql, tp.n, tp.types.data(), tp.values.data(), tp.nulls.data(), false, 0);
        if (rc < 0)
            elog(ERROR, "SPI statement failed: %s", SPI_result_code_string(rc));
    });
}

namespace {
/* kept_plan()'s plans, by the address of their SQL literal. */
std::unordered_map<const char *, SPIPlanPtr> kept_plans;
} // namespace

SPIPlanPtr kept_plan(const char *sql, int nargs, const Oid *types)
{
    SPIPlanPtr &kept = kept_plans[sql]; /* inside pg(): a bad_alloc is carried out */
    if (!kept) {
        SPIPlanPtr plan = SPI_prepare(sql, nargs, const_cast<Oid *>(types));
        if (!plan)
            elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        if (SPI_keepplan(plan) != 0)
            elog(ERROR, "SPI_keepplan failed");
        kept = plan;
    }
    return kept;
}

std::vector<Row> spi_text_rows()
{
    std::vector<Row> rows;
    uint64 count = SPI_processed;
    int ncols = SPI_tuptable->tupdesc->natts;
    rows.reserve(count);
    for (uint64 r = 0; r < count; r++) {
        Row row(ncols);
        for (int c = 0; c < ncols; c++) {
            char *v = pg([&] { return SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c + 1); });
            if (v)
                row[c] = std::string(v);
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

std::vector<Row> Spi::query(const char *sql, const std::vector<std::optional<std::string>> &params, bool latest,
                            bool keep)
{
    TextParams tp(params);
    int n = tp.n;
    std::vector<Oid> &types = tp.types;
    std::vector<Datum> &values = tp.values;
    std::vector<char> &nulls = tp.nulls;
    pg([&] {
        tp.fill();
        int rc;
        if (latest || !FirstSnapshotSet) {
            /* The consent state must follow the latest committed data, also
             * in REPEATABLE READ transactions (in parallel mode, where no
             * new snapshot can be taken, the statement's).  And before the transaction's
             * first snapshot (a SET of consent.purpose first in a
             * transaction checks the purpose) SPI would take the
             * transaction snapshot, and a later SET TRANSACTION ISOLATION
             * LEVEL would fail: the statement's snapshot instead
             * (shared::latest_snapshot()).  SPI_prepare() makes no parallel
             * plan, whose start would take the transaction snapshot. */
            SPIPlanPtr plan = keep ? kept_plan(sql, n, types.data()) : SPI_prepare(sql, n, types.data());
            if (!plan)
                elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
            rc = SPI_execute_snapshot(plan, values.data(), nulls.data(), shared::latest_snapshot(),
                                      InvalidSnapshot, true,
                                      false, 0);
        } else {
            rc = SPI_execute_with_args(sql, n, types.data(), values.data(), nulls.data(), true, 0);
        }
        if (rc != SPI_OK_SELECT)
            elog(ERROR, "SPI query failed: %s", SPI_result_code_string(rc));
    });
    return spi_text_rows();
}

} // namespace consent
