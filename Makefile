# pg_consent — PGXS build.  `make` builds, `make install` installs,
# `make demo` / `make test` do everything from a fresh Debian 12 machine.

EXTENSION   = pg_consent
# The one place the version is defined: the control file.
EXTVERSION  = $(shell sed -n "s/^default_version *= *'\([^']*\)'/\1/p" $(EXTENSION).control)

MODULE_big  = pg_consent
OBJS        = $(patsubst %.cpp,%.o,$(sort $(wildcard src/*.cpp)))
# The install script is assembled from ordered fragments in src/sql/.
SQL_PARTS   = $(sort $(wildcard src/sql/*.sql))
DATA_built  = $(EXTENSION)--$(EXTVERSION).sql
# Released install scripts are frozen in src/versions/; upgrades are one hop each.
DATA        = $(wildcard src/versions/$(EXTENSION)--*.sql)
DOCS        =

# Tests are discovered, not listed.
REGRESS     = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=output_iso --load-extension=$(EXTENSION)
NO_INSTALLCHECK =
ISOLATION   = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
EXTRA_CLEAN = $(DATA_built) src/*.bc src/*.d results regression.diffs regression.out \
              output_iso tmp_check test/t/tmp_check

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS      := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ICU_CFLAGS := $(shell pkg-config --cflags icu-uc icu-i18n 2>/dev/null)
ICU_LIBS   := $(shell pkg-config --libs icu-uc icu-i18n 2>/dev/null)

# Flags stated once.  Our own code builds with -Werror; PostgreSQL's headers
# are system headers (-isystem) so their warnings are not ours.
# -fvisibility=hidden: only what PostgreSQL looks up by name is exported
# (PGDLLEXPORT: the SQL-callable functions, their info records, _PG_init and
# the magic block); the per-cell code reads our globals directly, not
# through the GOT.
PG_CXXFLAGS = -std=c++17 -fPIC -Wall -Wextra -Werror -Wno-register \
              -fvisibility=hidden -fvisibility-inlines-hidden \
              '-DPGDLLEXPORT=__attribute__((visibility("default")))' \
              -Wno-missing-field-initializers -Wno-unused-parameter \
              $(ICU_CFLAGS) -DCONSENT_VERSION='"$(EXTVERSION)"' \
              -MMD -MP $(CONSENT_SANITIZE)
PG_CPPFLAGS = -Isrc
# -Bsymbolic-functions: calls between our own files bind directly, not
# through the PLT (the mask function calls across files for every cell).
SHLIB_LINK  = $(ICU_LIBS) -lstdc++ -Wl,-Bsymbolic-functions $(CONSENT_SANITIZE)

# No LLVM bitcode: PGXS would recompile every .cpp with clang without our flags.
override with_llvm = no

ifneq ($(PGXS),)
include $(PGXS)
override CPPFLAGS := $(patsubst -I$(includedir_server),-isystem $(includedir_server),$(patsubst -I$(includedir_internal),-isystem $(includedir_internal),$(CPPFLAGS)))
else
all install installcheck:
	@echo "pg_config for PostgreSQL 15 not found: run 'make test' or 'make demo' (they install it), or set PG_CONFIG" >&2; exit 1
endif

# header dependencies; the version is compiled into pg_consent.o
-include $(OBJS:.o=.d)

# Objects built for one PostgreSQL are never linked and installed for
# another (make test PG_CONFIG=... after make test): they depend on a stamp
# naming the pg_config and its version, rewritten when either changes.  A
# first stamp is dated 1970, so existing objects are kept.
PG_STAMP := tmp_check/pg_config.stamp
$(shell mkdir -p tmp_check && t='$(PG_CONFIG) $(shell $(PG_CONFIG) --version 2>/dev/null)' && \
        if [ ! -f $(PG_STAMP) ]; then echo "$$t" >$(PG_STAMP) && touch -d @0 $(PG_STAMP); \
        elif [ "$$(cat $(PG_STAMP))" != "$$t" ]; then echo "$$t" >$(PG_STAMP); fi)
$(OBJS): $(PG_STAMP)
src/pg_consent.o: $(EXTENSION).control

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS) $(EXTENSION).control
	cat $(SQL_PARTS) > $@

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps demo test bench bench-scale bench-varied bench-standby bench-backends bench-citus fuzz format
# Install what is missing (apt-get), as root or through sudo.
deps:
	@test/harness/deps.sh

# PG_CONFIG goes on to the sub-makes explicitly (sudo drops MAKEFLAGS) and
# to the scripts in the environment: `make test PG_CONFIG=/x/bin/pg_config`
# builds, installs into and tests that PostgreSQL (test/harness/pg-build.sh
# prints one for PostgreSQL 18).  demo and bench run on PostgreSQL 15.
demo: deps
	@$(MAKE) --no-print-directory all PG_CONFIG="$(PG_CONFIG)"
	@$(SUDO) $(MAKE) --no-print-directory install PG_CONFIG="$(PG_CONFIG)"
	@test/harness/demo.sh

test: deps
	@$(MAKE) --no-print-directory all PG_CONFIG="$(PG_CONFIG)"
	@$(SUDO) $(MAKE) --no-print-directory install PG_CONFIG="$(PG_CONFIG)"
	@PG_CONFIG="$(PG_CONFIG)" test/harness/run-tests.sh

bench: deps
	@$(MAKE) --no-print-directory all PG_CONFIG="$(PG_CONFIG)"
	@$(SUDO) $(MAKE) --no-print-directory install PG_CONFIG="$(PG_CONFIG)"
	@test/bench/run.sh
	@test/bench/load_check.sh

# The shared consent state at 10 million subjects (BENCH_SUBJECTS).
bench-scale: deps
	@$(MAKE) --no-print-directory all PG_CONFIG="$(PG_CONFIG)"
	@$(SUDO) $(MAKE) --no-print-directory install PG_CONFIG="$(PG_CONFIG)"
	@BENCH_SCALE=1 test/bench/run.sh

# The full-scan figures on five data sets (subject order, uuid and text
# subjects, non-ASCII values, consent through parent categories).
bench-varied: deps
	@$(MAKE) --no-print-directory all PG_CONFIG="$(PG_CONFIG)"
	@$(SUDO) $(MAKE) --no-print-directory install PG_CONFIG="$(PG_CONFIG)"
	@BENCH_VARIED=1 test/bench/run.sh

# Point look-ups on a hot standby while the primary commits consent changes.
bench-standby: deps
	@$(MAKE) --no-print-directory all PG_CONFIG="$(PG_CONFIG)"
	@$(SUDO) $(MAKE) --no-print-directory install PG_CONFIG="$(PG_CONFIG)"
	@PG_CONFIG="$(PG_CONFIG)" test/bench/standby.sh

# Point look-ups with hundreds of backends at once (and under consent changes).
bench-backends: deps
	@$(MAKE) --no-print-directory all PG_CONFIG="$(PG_CONFIG)"
	@$(SUDO) $(MAKE) --no-print-directory install PG_CONFIG="$(PG_CONFIG)"
	@PG_CONFIG="$(PG_CONFIG)" test/bench/backends.sh

# Masked against raw on a Citus cluster (a coordinator and two workers).
bench-citus: deps
	@$(MAKE) --no-print-directory all PG_CONFIG="$(PG_CONFIG)"
	@$(SUDO) $(MAKE) --no-print-directory install PG_CONFIG="$(PG_CONFIG)"
	@PG_CONFIG="$(PG_CONFIG)" test/bench/citus.sh

format:
	clang-format -i src/*.cpp src/*.h

fuzz: ; @test/harness/fuzz.sh
