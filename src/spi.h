/*
 * spi.h — running catalog queries from C++ through SPI.
 *
 * Owns: the SPI connection for the duration of one C++ scope, and copying
 * result values into C++ strings before SPI memory goes away.
 * Must never: leave SPI connected when the scope ends, whatever happened.
 */
#pragma once

#include "boundary.h"

extern "C" {
#include "executor/spi.h"
#include "utils/snapmgr.h"
}

#include <optional>
#include <string>
#include <vector>

namespace consent {

using Row = std::vector<std::optional<std::string>>;

/* One SPI connection, finished when the object goes out of scope.  Queries
 * run as the bootstrap superuser with search_path = pg_catalog, pg_temp in a
 * security-restricted operation: the consent state must load whatever role
 * asks, and no object of that role may intercept the load. */
class Spi {
  public:
    Spi();
    ~Spi();
    Spi(const Spi &) = delete;
    Spi &operator=(const Spi &) = delete;

    /* Runs a read-only query with text parameters, as of the latest
     * committed state (not the transaction snapshot), returning text values.
     * keep (with latest): prepare the plan once per backend and keep it;
     * sql must then be a string literal (its address is the key). */
    std::vector<Row> query(const char *sql, const std::vector<std::optional<std::string>> &params = {},
                           bool latest = false, bool keep = false);

    /* Runs a statement that may write (catalog maintenance), with text parameters. */
    void exec(const char *sql, const std::vector<std::optional<std::string>> &params = {});

  private:
    Oid saved_user_ = InvalidOid;
    int saved_sec_ = 0;
    int guc_level_ = 0;
};

/* A plan for sql, prepared at its first use and kept for the life of the
 * backend (SPI_keepplan; PostgreSQL's plan cache revalidates it when the
 * tables change).  sql must be a string literal: its address is the key.
 * Call inside pg() with SPI connected. */
SPIPlanPtr kept_plan(const char *sql, int nargs, const Oid *types);

/* The rows of the last SPI query as text values.  Call with SPI connected. */
std::vector<Row> spi_text_rows();

} // namespace consent
