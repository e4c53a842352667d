#!/usr/bin/env bash
# Installs what pg_consent needs to build and test on Debian 12, and nothing
# that is already there.  Runs apt-get as root or through sudo.
set -euo pipefail

# pgbouncer: test/t/050_pgbouncer.pl runs its own in front of its test
# cluster (the Debian package's service, with no database configured, is
# not used).
packages=(postgresql-15 postgresql-server-dev-15 postgresql-common
          libicu-dev pkg-config g++ make libipc-run-perl perl pgbouncer)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# The Debian package would start a cluster of its own; we never use it.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
