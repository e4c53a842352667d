#!/usr/bin/env bash
# Prints the path of a pg_config for PostgreSQL MAJOR (default 18) on stdout,
# and nothing else there (progress and errors go to stderr):
#
#   test/harness/pg-build.sh 18        ->  /var/cache/pg_consent/postgresql-18.6/bin/pg_config
#   make test PG_CONFIG=$(test/harness/pg-build.sh 18)
#
# In this order:
#   1. $PG<MAJOR>_CONFIG (e.g. PG18_CONFIG), when the user gives one;
#   2. the Debian-packaged /usr/lib/postgresql/<MAJOR>/bin/pg_config, when
#      installed together with its PGXS (postgresql-server-dev-<MAJOR>);
#   3. a build from source, made once into a prefix of its own in the build
#      cache and reused afterwards:
#        ${CONSENT_BUILD_CACHE:-/var/cache/pg_consent (root), else
#          ~/.cache/pg_consent}/postgresql-<version>
#      The source is $PG<MAJOR>_SOURCE (a tarball or an unpacked tree, given
#      by the user), else the newest ../shared/vendor/postgresql-<MAJOR>.*.tar.bz2
#      beside the repository, whose sha256 must match ../shared/vendor/SHA256SUMS.
#      Without a source, an earlier build of that major version in the cache
#      is used when there is one.
# None of these: says so and exits with 3.  Other failures exit with 1.
#
# The build: ./configure --prefix=<cache>/postgresql-<version> --with-icu
# --without-readline --enable-tap-tests, `make` and `make install` at the
# top and in contrib/: the server, psql, pg_dump, pg_upgrade, ..., PGXS with
# pg_regress, pg_isolation_regress + isolationtester, the TAP modules
# (PostgreSQL::Test::Cluster) under lib/pgxs/src/test/perl, and the contrib
# modules (the TAP tests use postgres_fdw, tablefunc, auto_explain); no
# documentation.  About 6 minutes on 2 cores.  The prefix is readable by everyone (the tests run the server as
# an unprivileged user) and written by its owner only; `make install` of
# pg_consent installs into it (run as the cache's owner, root on CI).
# <prefix>/.pg_consent-built records what was built (the source's sha256 and
# the configure options); a run finding the same record reuses the build,
# else it rebuilds.  The build tree is removed after `make install`
# (PG_BUILD_KEEP=1 keeps it in <cache>/postgresql-<version>.build); the logs
# stay in <prefix>/build-logs/.
#
# Missing build packages (gcc, g++, make, perl, libipc-run-perl, libicu-dev,
# zlib1g-dev, pkg-config, bzip2, bison, flex) are installed with apt-get, as
# root or through sudo.  Since PostgreSQL 17 the release tarballs no longer
# carry the generated parsers and scanners: configure needs bison and flex.
#
# Environment:
#   PG<MAJOR>_CONFIG=path       use this pg_config (its version is checked)
#   PG<MAJOR>_SOURCE=path       build from this tarball or tree
#   CONSENT_BUILD_CACHE=dir     the build cache
#   PG_BUILD_CONFIGURE_OPTS='..' more configure options (e.g. --enable-cassert
#                               --enable-debug); part of the record, so
#                               changing them rebuilds
#   PG_BUILD_JOBS=n             make -j (default: the number of CPUs)
#   PG_BUILD_KEEP=1             keep the build tree
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)

major=${1:-18}
case $major in
    [1-9][0-9]) ;;
    *) echo "pg-build: usage: $0 [MAJOR]   (a PostgreSQL major version such as 18)" >&2; exit 1 ;;
esac
say() { echo "pg-build: $*" >&2; }
die() { say "$*"; exit 1; }

# Prints the pg_config and exits, when $1 is a pg_config of the right major version.
accept() {
    local pg_config=$1 from=$2 version
    version=$("$pg_config" --version 2>/dev/null) || die "$pg_config ($from) does not run"
    case $version in
        "PostgreSQL $major".*|"PostgreSQL $major"[a-z]*) ;;
        *) die "$pg_config ($from) is $version, not PostgreSQL $major" ;;
    esac
    [ -f "$("$pg_config" --pgxs)" ] ||
        die "$pg_config ($from) has no PGXS ($("$pg_config" --pgxs) is missing; Debian: postgresql-server-dev-$major)"
    say "$version: $pg_config ($from)"
    echo "$pg_config"
    exit 0
}

# --- 1. given by the user --------------------------------------------------------
config_var=PG${major}_CONFIG
source_var=PG${major}_SOURCE
if [ -n "${!config_var:-}" ]; then
    [ -x "${!config_var}" ] || die "$config_var=${!config_var} is not an executable pg_config"
    accept "${!config_var}" "$config_var"
fi

# --- 2. installed from Debian packages -------------------------------------------
debian=/usr/lib/postgresql/$major/bin/pg_config
if [ -x "$debian" ] && [ -f "$("$debian" --pgxs 2>/dev/null)" ]; then
    accept "$debian" "installed"
fi

# --- 3. built from source in the cache -------------------------------------------
if [ -n "${CONSENT_BUILD_CACHE:-}" ]; then
    cache_root=$CONSENT_BUILD_CACHE
elif [ "$(id -u)" -eq 0 ]; then
    cache_root=/var/cache/pg_consent
else
    cache_root=${HOME:?}/.cache/pg_consent
fi
configure_opts=(--with-icu --without-readline --enable-tap-tests)
# shellcheck disable=SC2206  # split on purpose
[ -n "${PG_BUILD_CONFIGURE_OPTS:-}" ] && configure_opts+=(${PG_BUILD_CONFIGURE_OPTS})

vendor=$(realpath -m "$top/../shared/vendor")
source=${!source_var:-}
fingerprint=
if [ -n "$source" ]; then
    [ -e "$source" ] || die "$source_var=$source does not exist"
    source=$(realpath "$source")
    if [ -d "$source" ]; then
        fingerprint="dir:$source"   # a tree is known by its path only
    else
        fingerprint=$(sha256sum "$source" | awk '{ print $1 }')
    fi
else
    # the newest vendored release of this major version
    source=$(find "$vendor" -maxdepth 1 -name "postgresql-$major.*.tar.bz2" 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$source" ]; then
        sums=$vendor/SHA256SUMS
        [ -f "$sums" ] || die "$sums is missing, cannot verify $source"
        expected=$(awk -v f="$(basename "$source")" '$2 == f { print $1 }' "$sums")
        fingerprint=$(sha256sum "$source" | awk '{ print $1 }')
        if [ -z "$expected" ] || [ "$expected" != "$fingerprint" ]; then
            die "sha256 of $source is $fingerprint, $sums says '${expected:-nothing}'; not building it"
        fi
    fi
fi

if [ -z "$source" ]; then
    # no source: an earlier build of this major version, if any
    for prefix in $(find "$cache_root" -maxdepth 1 -name "postgresql-$major.*" -type d 2>/dev/null | sort -rV || true); do
        if [ -f "$prefix/.pg_consent-built" ] && [ -x "$prefix/bin/pg_config" ]; then
            accept "$prefix/bin/pg_config" "built earlier, $(head -n 1 "$prefix/.pg_consent-built")"
        fi
    done
    say "no PostgreSQL $major: no $config_var given, no $debian (Debian: postgresql-$major" \
        "postgresql-server-dev-$major), no source ($source_var=/path/to/postgresql-$major.X.tar.bz2" \
        "or an unpacked tree; or $vendor/postgresql-$major.*.tar.bz2) and no earlier build in $cache_root"
    exit 3
fi

# The version: from the tarball's name, else from the tree's configure.
version=
if [ -d "$source" ]; then
    version=$(sed -n "s/^PACKAGE_VERSION='\(.*\)'$/\1/p" "$source/configure" 2>/dev/null | head -n 1)
else
    version=$(basename "$source" | sed -n "s/^postgresql-\([0-9][0-9.a-z]*[0-9]\)\.tar\.[a-z0-9]*$/\1/p")
    [ -n "$version" ] ||
        version=$(tar -xOf "$source" --wildcards '*/configure' 2>/dev/null | sed -n "s/^PACKAGE_VERSION='\(.*\)'$/\1/p" | head -n 1)
fi
[ -n "$version" ] || die "cannot tell the PostgreSQL version of $source (no PACKAGE_VERSION in its configure)"
case $version in
    "$major".*|"$major"[a-z]*) ;;
    *) die "$source is PostgreSQL $version, not $major" ;;
esac

prefix=$cache_root/postgresql-$version
build=$cache_root/postgresql-$version.build
stamp=$prefix/.pg_consent-built
# what was built: the source's sha256 (a tree: its path) and the options
want="PostgreSQL $version, source ${fingerprint/#dir:/tree }
configure ${configure_opts[*]}
make: top, contrib"

built() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$prefix/bin/pg_config" ]; }

if built; then accept "$prefix/bin/pg_config" "built earlier"; fi

# --- the build packages ------------------------------------------------------------
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
packages=(gcc g++ make perl libipc-run-perl libicu-dev zlib1g-dev pkg-config bzip2 bison flex)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing build packages: ${missing[*]} (and no apt-get to install them)"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the build ---------------------------------------------------------------------
mkdir -p "$cache_root"
# one build at a time per cache (two test runs starting together)
exec 9>"$cache_root/postgresql-$version.lock"
flock 9
if built; then accept "$prefix/bin/pg_config" "built meanwhile by another run"; fi

rm -rf "$build" "$prefix"
mkdir -p "$build"
if [ -d "$source" ]; then
    [ -x "$source/configure" ] || die "$source has no ./configure; is it a PostgreSQL source tree?"
    [ -f "$source/GNUmakefile" ] && die "$source is configured already (GNUmakefile); give an unconfigured tree or a tarball"
    say "copying $source"
    cp -a "$source/." "$build/"
else
    say "unpacking $source"
    tar -xf "$source" -C "$build" --strip-components=1
fi

jobs=${PG_BUILD_JOBS:-$(nproc)}
logs=$build/build-logs
mkdir -p "$logs"
run_step() {
    local name=$1; shift
    say "$name: $*"
    if ! (cd "$build" && "$@") >"$logs/$name.log" 2>&1; then
        tail -n 40 "$logs/$name.log" >&2
        die "$name failed (see $logs/$name.log)"
    fi
}
start=$(date +%s)
say "building PostgreSQL $version into $prefix (make -j$jobs; several minutes)"
run_step configure ./configure --prefix="$prefix" "${configure_opts[@]}"
# `make` builds the server, the client programs, the PLs and src/test/regress,
# src/test/isolation and src/test/perl; not contrib, not the documentation.
run_step make make -j"$jobs"
run_step make-contrib make -C contrib -j"$jobs"
run_step install make install
run_step install-contrib make -C contrib install
# `make install` installs these too (src/Makefile); say so if a version stops doing it
pgxs_dir=$prefix/lib/pgxs/src
for need in "$prefix/bin/postgres" "$prefix/bin/psql" "$prefix/bin/pg_dump" "$prefix/bin/pg_upgrade" \
            "$pgxs_dir/test/regress/pg_regress" "$pgxs_dir/test/isolation/pg_isolation_regress" \
            "$pgxs_dir/test/isolation/isolationtester" "$pgxs_dir/test/perl/PostgreSQL/Test/Cluster.pm" \
            "$prefix/lib/postgres_fdw.so" "$prefix/lib/tablefunc.so" "$prefix/lib/auto_explain.so"; do
    [ -e "$need" ] || die "the build did not install $need"
done
elapsed=$(( $(date +%s) - start ))

mkdir -p "$prefix/build-logs"
cp "$logs"/*.log "$prefix/build-logs/"
chmod -R go+rX,go-w "$prefix"
[ -n "${PG_BUILD_KEEP:-}" ] || rm -rf "$build"
echo "$want" >"$stamp"
say "built PostgreSQL $version in $elapsed s"
accept "$prefix/bin/pg_config" "built now"
