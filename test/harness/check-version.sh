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
# every released version reaches the current one through one-hop scripts
for frozen in src/versions/pg_consent--[0-9]*.sql; do
    case $frozen in *--*--*) continue;; esac
    from=${frozen#src/versions/pg_consent--}; from=${from%.sql}
    [ "$from" != "$v" ] || { echo "$frozen freezes the current version $v"; exit 1; }
    cur=$from
    while [ "$cur" != "$v" ]; do
        next=$(ls src/versions/pg_consent--"$cur"--*.sql 2>/dev/null | head -n 1)
        [ -n "$next" ] || { echo "no upgrade script from $cur (towards $v)"; exit 1; }
        cur=${next##*--}; cur=${cur%.sql}
    done
done
echo "version $v agrees"
