#!/usr/bin/env bash
# Makes Citus available to the installed PostgreSQL 15, for the tests that
# run pg_consent on a Citus cluster (test/t/060_citus.pl).  Nothing of Citus
# is part of pg_consent or committed to it.
#
# - Citus already installed (citus.so in `pg_config --pkglibdir` and
#   citus.control in `pg_config --sharedir`/extension): does nothing.
# - Else builds it from a source tarball: $CITUS_SOURCE (a .tar.gz, or an
#   unpacked source tree, given by the user) or the project's vendored
#   ../shared/vendor/citus-13.2.2.tar.gz (its sha256 checked against
#   ../shared/vendor/SHA256SUMS).  The build happens in a copy of the source
#   in ${CONSENT_BUILD_CACHE:-/var/cache/pg_consent as root,
#   ~/.cache/pg_consent otherwise}/citus-<version> and is kept there: a later
#   run (after PostgreSQL was reinstalled, say) only runs `make install`.
# - Neither: says so and exits with 3, which callers treat as "skip".
#
# Missing -dev packages (libcurl, lz4, zstd, krb5) are installed with apt-get
# (as root or through sudo).  PG_CONFIG overrides the pg_config to build for.
# Exit codes: 0 Citus is installed, 3 no Citus and no source, 1 failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)

pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$pg_config" ] || { echo "citus: $pg_config not found (install postgresql-server-dev-15)" >&2; exit 1; }
pkglibdir=$("$pg_config" --pkglibdir)
extdir=$("$pg_config" --sharedir)/extension

installed() { [ -f "$pkglibdir/citus.so" ] && [ -f "$extdir/citus.control" ]; }

if installed; then
    echo "citus: already installed ($pkglibdir/citus.so, $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$extdir/citus.control"))"
    exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# --- the source ------------------------------------------------------------
vendor=$top/../shared/vendor
source=${CITUS_SOURCE:-}
if [ -z "$source" ]; then
    if [ -f "$vendor/citus-13.2.2.tar.gz" ]; then
        source=$vendor/citus-13.2.2.tar.gz
        sums=$vendor/SHA256SUMS
        [ -f "$sums" ] || { echo "citus: $sums is missing, cannot verify $source" >&2; exit 1; }
        expected=$(awk '$2 == "citus-13.2.2.tar.gz" { print $1 }' "$sums")
        actual=$(sha256sum "$source" | awk '{ print $1 }')
        if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
            echo "citus: sha256 of $source is $actual, $sums says '${expected:-nothing}'; not building it" >&2
            exit 1
        fi
    else
        echo "citus: Citus is not installed for $("$pg_config" --version) (no $pkglibdir/citus.so)," \
             "and there is no source to build it from: set CITUS_SOURCE=/path/to/citus-X.Y.Z.tar.gz" \
             "(a Citus release supporting PostgreSQL 15) or install Citus; skipping" >&2
        exit 3
    fi
elif [ ! -e "$source" ]; then
    echo "citus: CITUS_SOURCE=$source does not exist" >&2
    exit 1
fi
source=$(realpath "$source")

# --- the -dev packages Citus's configure needs -------------------------------
packages=(libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "citus: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- build in the cache -------------------------------------------------------
if [ -n "${CONSENT_BUILD_CACHE:-}" ]; then
    cache_root=$CONSENT_BUILD_CACHE
elif [ "$(id -u)" -eq 0 ]; then
    cache_root=/var/cache/pg_consent
else
    cache_root=${HOME:?}/.cache/pg_consent
fi
mkdir -p "$cache_root"
# one build at a time per cache (two test runs starting together)
exec 9>"$cache_root/citus.lock"
flock 9
if installed; then echo "citus: installed meanwhile by another run"; exit 0; fi

# unpack (or copy) into a fresh directory; the tarball is never modified
stage=$(mktemp -d "$cache_root/citus-unpack.XXXXXX")
trap 'rm -rf "$stage"' EXIT
if [ -d "$source" ]; then
    cp -a "$source/." "$stage/"
    fingerprint="dir:$source"
else
    tar -xzf "$source" -C "$stage" --strip-components=1
    fingerprint=$(sha256sum "$source" | awk '{ print $1 }')
fi
version=$(sed -n "s/^PACKAGE_VERSION='\(.*\)'$/\1/p" "$stage/configure" 2>/dev/null | head -n 1)
[ -n "$version" ] || { echo "citus: $source has no generated ./configure with a PACKAGE_VERSION; is it a Citus source?" >&2; exit 1; }
build=$cache_root/citus-$version
stamp=$build/.pg_consent-built
want="$fingerprint $("$pg_config" --version)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "citus: reusing the build of Citus $version in $build"
else
    rm -rf "$build"
    mv "$stage" "$build"
    trap - EXIT
    cd "$build"
    # PostgreSQL 15.20 (like 16+) declares have_createdb_privilege() extern in
    # commands/dbcommands.h; Citus < 14 defines a static copy of its own for
    # PostgreSQL < 16.  Rename the (unused) static copy when the server
    # headers declare the function.
    if grep -q 'have_createdb_privilege' "$("$pg_config" --includedir-server)/commands/dbcommands.h" &&
       grep -q '^have_createdb_privilege(void)$' src/include/pg_version_compat.h; then
        sed -i 's/^have_createdb_privilege(void)$/citus_unused_have_createdb_privilege(void)/' src/include/pg_version_compat.h
        echo "citus: renamed the static have_createdb_privilege() of src/include/pg_version_compat.h"
    fi
    echo "citus: building Citus $version in $build (a few minutes)"
    start=$(date +%s)
    ./configure PG_CONFIG="$pg_config" >configure.log 2>&1 || { tail -n 30 configure.log >&2; echo "citus: configure failed (see $build/configure.log)" >&2; exit 1; }
    make -j2 >make.log 2>&1 || { tail -n 40 make.log >&2; echo "citus: make failed (see $build/make.log)" >&2; exit 1; }
    echo "$want" >"$stamp"
    echo "citus: built in $(( $(date +%s) - start )) s"
fi

cd "$build"
$sudo make install >install.log 2>&1 || { tail -n 30 install.log >&2; echo "citus: make install failed (see $build/install.log)" >&2; exit 1; }
installed || { echo "citus: make install did not install $pkglibdir/citus.so" >&2; exit 1; }
echo "citus: installed Citus $version into $pkglibdir"
