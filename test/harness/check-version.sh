#!/usr/bin/env bash
# The version is defined once (pg_consent.control); META.json, the built
# install script and the library must agree with it.
set -euo pipefail
cd "$(dirname "$0")/../.."
v=$(sed -n "s/^default_version *= *'\([^']*\)'/\1/p" pg_consent.control)
[ -n "$v" ] || { echo "no default_version in pg_consent.control"; exit 1; }
meta=$(python3 -c 'import json;m=json.load(open("META.json"));print(m["version"], m["provides"]["pg_consent"]["version"])')
[ "$meta" = "$v $v" ] || { echo "META.json says '$meta', control file says $v"; exit 1; }
[ -f "pg_consent--$v.sql" ] || { echo "pg_consent--$v.sql was not built"; exit 1; }
strings -n 3 pg_consent.so | grep -Fx "$v" >/dev/null || { echo "pg_consent.so was not built for version $v"; exit 1; }
for up in src/upgrade/pg_consent--*--*.sql; do
    [ -e "$up" ] || continue
    to=${up##*--}; to=${to%.sql}
    printf '%s\n' "$to" | sort -V -C - <<<"$v" 2>/dev/null || true
done
echo "version $v agrees"
