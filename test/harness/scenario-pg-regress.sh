#!/usr/bin/env bash
# PostgreSQL's own regression suite, with and without pg_consent.
#
# Runs the core regression suite (src/test/regress, parallel_schedule) of a
# PostgreSQL 15 source tree twice against ONE server started with
# shared_preload_libraries = pg_consent:
#   1. vanilla:     database "regression" without the extension;
#   2. pg_consent:  database "regression" re-created by pg_regress with
#                   --load-extension=pg_consent (CREATE EXTENSION ran).
# Some tests fail in the vanilla run too (the installed server is a newer
# minor version than the tests: rules, alter_table), so the runs are
# compared with each other, not with zero.  A test that fails with the
# extension passes this check when its output equals the vanilla run's
# output, or when every difference between the two outputs is a listing of
# the extension's own objects: rows added to a query result, the row count
# "(N rows)" grown by exactly that many, each row naming an object of the
# extension (an OID, a name or a qualified name read from the catalog after
# the run: members of the extension and what depends on them internally,
# everything in its schemas, roles it created).  Re-padded columns are no
# difference.  Anything else (a changed or missing line, a message, a plan)
# fails.  The vanilla run fails the check too when its output mentions
# "consent" (the suite never does): the preloaded library acted in a
# database without the extension.  Such a test of the extension run is
# compared with the expected output instead.
#
# Then PostgreSQL's isolation suite (src/test/isolation, isolation_schedule:
# concurrent sessions, locks, snapshots, serializable, two-phase commit)
# the same two ways, database "isolation_regression", with the installed
# pg_isolation_regress: the run with the extension must fail no spec the
# vanilla run passes, and the vanilla run's differences must not mention
# consent.
#
# Sources, in this order:
#   $PG_REGRESS_SOURCE           a tarball or an extracted (unconfigured) tree
#   ../shared/vendor/postgresql-15.18.tar.bz2   beside the repository
#                                (checked against SHA256SUMS there)
#   Debian's source package      apt-get source --download-only postgresql-15
# none found: prints a SKIP line and exits 0.
#
# The suite runs with psql and libpq built from that tree (psql 15.20 stops
# reading a script after a rejected COPY ... FROM stdin), the installed
# pg_regress, and regress.so, autoinc.so and refint.so built from the
# tree's C files against the INSTALLED server's headers (they are loaded
# into it).  The build is cached in ${CONSENT_BUILD_CACHE:-
# /var/cache/pg_consent (root) or $HOME/.cache/pg_consent}/
# postgresql-<version>-<first 16 hex digits of the tarball's sha256>; later
# runs reuse it (the libraries are rebuilt when the server's version
# changes).  Building takes about 40 s on 2 cores, each suite run 30-70 s.
#
# PostgreSQL refuses to run as root: pg_virtualenv -t starts the server as
# user postgres then (as any other user, as that user).
#
# Environment:
#   PG_REGRESS_SOURCE=path       tarball or tree (see above)
#   CONSENT_BUILD_CACHE=dir      build cache
#   PG_REGRESS_MAX_CONNECTIONS=n parallel tests at once (default 20)
#   PG_REGRESS_TIMEOUT=s         limit per suite run (default 900)
#   PG_REGRESS_KEEP=1            keep the work directory; then
#   test/harness/scenario-pg-regress.sh --compare <work directory>
#                                repeats only the comparison
# Logs: test/harness/log/pg-regress/ (both pg_regress outputs and diffs,
# the extension's objects, the comparison).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
self=$top/test/harness/$(basename "$0")
pgbin=/usr/lib/postgresql/15/bin
pg_config=$pgbin/pg_config
pgxs_regress=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress
pglib=/usr/lib/postgresql/15/lib
export PATH=$pgbin:$PATH
label="PostgreSQL regression suite with pg_consent"

# The suite run here is 15's, against Debian's PostgreSQL 15: when make test
# tests another server (PG_CONFIG), that server's own suite is not run.
if [ "${1:-}" != --inside ] && [ -n "${PG_CONFIG:-}" ]; then
    under_test=$("$PG_CONFIG" --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
    if [ "$under_test" != 15 ]; then
        echo "SKIP $label: it runs PostgreSQL 15's suite on the Debian 15 server; this run tests PostgreSQL $under_test"
        exit 0
    fi
fi

# ---------------------------------------------------------------------------
# Inside pg_virtualenv (this script runs itself): both suite runs, then the
# extension's objects and roles, read while the server still runs.
if [ "${1:-}" = --inside ]; then
    work=$2
    run() {  # name, more pg_regress options
        local name=$1; shift
        mkdir -p "$work/$name/results"
        # the server (user postgres when we are root) writes COPY ... TO files there
        [ "$(id -u)" -eq 0 ] && chmod 1777 "$work/$name/results"
        local t0=$SECONDS
        timeout --kill-after=30 "${PG_REGRESS_TIMEOUT:-900}" \
            "$PGR_PG_REGRESS" --inputdir="$work/in" --outputdir="$work/$name" \
            --bindir="$PGR_BINDIR" --dlpath="$work/lib" \
            --schedule="$work/in/parallel_schedule" \
            --max-connections="${PG_REGRESS_MAX_CONNECTIONS:-20}" \
            --dbname=regression "$@" >"$work/$name.out" 2>&1
        echo "$? $((SECONDS - t0))" >"$work/$name.rc"
    }
    roles() { psql -X -At -d postgres -c 'SELECT rolname FROM pg_roles ORDER BY 1'; }
    psql -X -At -d postgres -c 'SHOW server_version' >"$work/server-version"
    run vanilla
    roles >"$work/roles.vanilla"
    run consent --load-extension=pg_consent
    roles >"$work/roles.consent"
    # Every object of the extension: its members, what depends on them
    # internally or automatically (array types, row types, indexes,
    # constraints, ...), and everything in its schemas.  One line each:
    #   oid <TAB> catalog <TAB> bare name <TAB> identity
    # A bare name that another object of the same catalog also uses (the
    # type consent.name and pg_catalog.name) is left empty.
    psql -X -At -F $'\t' -d regression >"$work/objects" 2>"$work/objects.err" <<'SQL'
WITH RECURSIVE ext AS (
    SELECT oid FROM pg_extension WHERE extname = 'pg_consent'
), obj(classid, objid) AS (
    SELECT classid, objid FROM pg_depend
     WHERE refclassid = 'pg_extension'::regclass AND refobjid = (SELECT oid FROM ext) AND deptype = 'e'
    UNION
    SELECT 'pg_namespace'::regclass, n.oid FROM pg_namespace n
     JOIN pg_depend d ON d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = (SELECT oid FROM ext)
    UNION
    SELECT 'pg_class'::regclass, oid FROM pg_class WHERE relnamespace IN (SELECT objid FROM obj0)
    UNION
    SELECT 'pg_type'::regclass, oid FROM pg_type WHERE typnamespace IN (SELECT objid FROM obj0)
    UNION
    SELECT 'pg_proc'::regclass, oid FROM pg_proc WHERE pronamespace IN (SELECT objid FROM obj0)
    UNION
    SELECT d.classid, d.objid FROM pg_depend d JOIN obj o ON d.refclassid = o.classid AND d.refobjid = o.objid
     WHERE d.deptype IN ('i', 'a')
), obj0 AS (
    SELECT n.oid AS objid FROM pg_namespace n
     JOIN pg_depend d ON d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = (SELECT oid FROM ext)
), named AS (
    SELECT DISTINCT o.objid, o.classid::regclass::text AS cat,
           CASE o.classid
             WHEN 'pg_class'::regclass THEN (SELECT relname::text FROM pg_class WHERE oid = o.objid)
             WHEN 'pg_type'::regclass THEN (SELECT typname::text FROM pg_type WHERE oid = o.objid)
             WHEN 'pg_proc'::regclass THEN (SELECT proname::text FROM pg_proc WHERE oid = o.objid)
             WHEN 'pg_namespace'::regclass THEN (SELECT nspname::text FROM pg_namespace WHERE oid = o.objid)
             WHEN 'pg_constraint'::regclass THEN (SELECT conname::text FROM pg_constraint WHERE oid = o.objid)
             WHEN 'pg_trigger'::regclass THEN (SELECT tgname::text FROM pg_trigger WHERE oid = o.objid)
             WHEN 'pg_event_trigger'::regclass THEN (SELECT evtname::text FROM pg_event_trigger WHERE oid = o.objid)
             WHEN 'pg_policy'::regclass THEN (SELECT polname::text FROM pg_policy WHERE oid = o.objid)
             WHEN 'pg_rewrite'::regclass THEN NULL   -- _RETURN
             WHEN 'pg_operator'::regclass THEN (SELECT oprname::text FROM pg_operator WHERE oid = o.objid)
           END AS name,
           (pg_identify_object(o.classid, o.objid, 0)).identity AS identity
      FROM obj o
)
SELECT objid, cat,
       CASE WHEN name IS NULL THEN ''
            WHEN cat = 'pg_class' AND EXISTS (SELECT FROM pg_class c WHERE c.relname = n.name AND c.oid <> ALL (SELECT objid FROM named WHERE cat = 'pg_class')) THEN ''
            WHEN cat = 'pg_type' AND EXISTS (SELECT FROM pg_type t WHERE t.typname = n.name AND t.oid <> ALL (SELECT objid FROM named WHERE cat = 'pg_type')) THEN ''
            WHEN cat = 'pg_proc' AND EXISTS (SELECT FROM pg_proc p WHERE p.proname = n.name AND p.oid <> ALL (SELECT objid FROM named WHERE cat = 'pg_proc')) THEN ''
            WHEN cat = 'pg_constraint' AND EXISTS (SELECT FROM pg_constraint c WHERE c.conname = n.name AND c.oid <> ALL (SELECT objid FROM named WHERE cat = 'pg_constraint')) THEN ''
            WHEN cat = 'pg_trigger' AND EXISTS (SELECT FROM pg_trigger t WHERE t.tgname = n.name AND t.oid <> ALL (SELECT objid FROM named WHERE cat = 'pg_trigger')) THEN ''
            WHEN cat = 'pg_operator' THEN ''
            ELSE name END,
       coalesce(identity, '')
  FROM named n
UNION ALL
SELECT oid, 'pg_extension', extname::text, extname::text FROM pg_extension WHERE extname = 'pg_consent'
ORDER BY 2, 1;
SQL
    # PostgreSQL's isolation suite, the same two ways (database
    # isolation_regression), when its specs and pg_isolation_regress are there
    if [ -n "${PGR_ISOLATION_REGRESS:-}" ] && [ -f "$work/iso-in/isolation_schedule" ]; then
        iso_run() {  # name, more pg_isolation_regress options
            local name=$1; shift
            mkdir -p "$work/$name"
            local t0=$SECONDS
            timeout --kill-after=30 "${PG_REGRESS_TIMEOUT:-900}" \
                "$PGR_ISOLATION_REGRESS" --inputdir="$work/iso-in" --outputdir="$work/$name" \
                --bindir="$PGR_BINDIR" --schedule="$work/iso-in/isolation_schedule" \
                --dbname=isolation_regression "$@" >"$work/$name.out" 2>&1
            echo "$? $((SECONDS - t0))" >"$work/$name.rc"
        }
        iso_run iso-vanilla
        iso_run iso-consent --load-extension=pg_consent
    fi
    exit 0
fi

# ---------------------------------------------------------------------------
# The comparison of the two runs in work directory $1; writes the report
# to $2 and prints it.  Exit 0: no difference beyond listings of the
# extension's objects.  (perl: postgresql-common needs it, so it is there.)
compare() {
    perl - "$1" "$2" <<'PERL'
use strict; use warnings;
my ($work, $report) = @ARGV;
sub slurp { open(my $fh, '<', $_[0]) or return ''; local $/; my $s = <$fh>; $s =~ s/\s+$//; return $s; }
my $version = slurp("$work/source-version");
my $server = slurp("$work/server-version");
my ($t_van) = (split ' ', slurp("$work/vanilla.rc"))[1] // '?';
my ($t_ext) = (split ' ', slurp("$work/consent.rc"))[1] // '?';
open(my $rep, '>', $report) or die "$report: $!";
sub out { print @_; print $rep @_; }
sub rep { print $rep @_; }

# test name => status, from pg_regress's output
sub statuses {
    my ($file) = @_;
    my (%st, @order);
    open(my $fh, '<', $file) or return ({}, []);
    while (<$fh>) {
        next unless /^(?:test\s+|\s+)(\S+)\s+\.\.\.\s+(ok|FAILED|failed \(ignored\))/;
        my ($t, $s) = ($1, $2);
        $st{$t} = $s eq 'ok' ? 'ok' : 'failed';
        push @order, $t;
    }
    return (\%st, \@order);
}
my ($van, $van_order) = statuses("$work/vanilla.out");
my ($ext, $ext_order) = statuses("$work/consent.out");

# the extension's objects, as tokens (whole words in a line)
my (%tok);
open(my $ofh, '<', "$work/objects") or die;
while (<$ofh>) {
    chomp; my ($oid, $cat, $name, $ident) = split /\t/, $_, -1;
    $tok{$oid} = 1 if $oid && $oid =~ /^\d+$/ && $oid > 0;
    $tok{$name} = 1 if defined $name && length($name) >= 3;
    if (defined $ident && length $ident) {
        $tok{$ident} = 1;
        (my $noargs = $ident) =~ s/\(.*//s;      # consent.f(integer) => consent.f
        $tok{$noargs} = 1 if $noargs =~ /\./;
    }
}
close $ofh;
my $alt = join '|', map { quotemeta } sort { length($b) <=> length($a) } keys %tok;
my $tokre = qr/(?<![A-Za-z0-9_])(?:$alt)(?![A-Za-z0-9_])/;

sub norm { my $l = shift; $l =~ s/^\s+|\s+$//g; $l =~ s/\s+/ /g;
           return 'SEPARATOR' if $l =~ /^-[-+]*$/; return $l; }
sub rows { my $l = shift; return $l =~ /^\((\d+) rows?\)\s*$/ ? $1 : undef; }

# Compares the outputs of one test; returns the list of differences that are
# not listings of the extension's objects (empty: allowed), and how many
# rows of extension objects were added.
sub judge {
    my ($t, $fa) = @_;
    my $fb = "$work/consent/results/$t.out";
    return (["(no output of the extension run)\n"], 0) unless -f $fb;
    return (["(no output to compare with: $fa)\n"], 0) unless -f $fa;
    my @u = `diff -U 1000000 '$fa' '$fb'`;
    return ([], 0) unless @u;
    @u = grep { !/^(---|\+\+\+|@@) / } @u;
    my @bad; my $added = 0;
    my @seg;     # indexes into @u of the current segment
    my $flush = sub {
        my ($end) = @_;   # index of the count line ending the segment, or undef
        my @ch = grep { $u[$_] =~ /^[-+]/ } @seg;
        return unless @ch;
        # Added rows that name an extension object are listings; the other
        # changed lines must be the same text, in the same order, on both
        # sides: rows and headers re-padded around a wider column.
        my (@minus, @plus, $old, $new);
        my $ext_rows = 0;
        for my $i (@ch) {
            my ($sign, $text) = (substr($u[$i], 0, 1), substr($u[$i], 1));
            if (defined rows($text)) { if ($sign eq '-') { $old = rows($text) } else { $new = rows($text) } next; }
            if ($sign eq '-') { push @minus, norm($text); next; }
            if ($text =~ $tokre) { $ext_rows++; next; }
            push @plus, norm($text);
        }
        my $ok = join("\n", @minus) eq join("\n", @plus);
        if ($ok) {
            if (defined $end && $u[$end] =~ /^ / && !defined $old && !defined $new) { $old = $new = rows(substr($u[$end], 1)); }
            $ok = 0 unless defined $old && defined $new && $new - $old == $ext_rows && $ext_rows > 0;
        }
        if ($ok) { $added += $ext_rows; return; }
        # report the segment: from its first line (the statement) to the end
        my ($from, $to) = ($seg[0], $seg[-1]);
        my $first = $ch[0];
        $from = $first - 25 if $first - $from > 25;
        my @lines = @u[$from .. $to];
        if (@lines > 80) { @lines = (@lines[0 .. 79], " ... (" . (@lines - 80) . " more lines)\n"); }
        push @bad, join('', @lines);
    };
    for my $i (0 .. $#u) {
        push @seg, $i;
        my $l = $u[$i];
        if ($l =~ /^[ +]/ && defined rows(substr($l, 1))) { $flush->($i); @seg = (); }
    }
    $flush->(undef) if @seg;
    return (\@bad, $added);
}

my @tests = @$ext_order;
my @van_failed = grep { $van->{$_} eq 'failed' } @$van_order;
my @ext_failed = grep { $ext->{$_} eq 'failed' } @tests;
# The vanilla database has no extension, but the server preloads the
# library: the suite never says "consent", so a hunk of the vanilla run that
# does is the library acting where it must not.
my (%van_hunks, @van_consent);
if (open(my $dfh, '<', "$work/vanilla/regression.diffs")) {
    my ($t, $h) = ('', undef);
    my $end = sub { if (defined $h && $h =~ /^\+.*consent/mi) { push @{ $van_hunks{$t} }, $h; } $h = undef; };
    while (my $l = <$dfh>) {
        if ($l =~ m{^diff .* \S*/results/(\S+)\.out$}) { $end->(); $t = $1; next; }
        next if $l =~ /^(---|\+\+\+) /;
        if ($l =~ /^@@ /) { $end->(); $h = $l; next; }
        $h .= $l if defined $h;
    }
    $end->();
}
@van_consent = grep { $van_hunks{$_} } @$van_order;

# the expected file pg_regress compared each failed test of the extension run with
my %expected;
if (open(my $dfh, '<', "$work/consent/regression.diffs")) {
    while (<$dfh>) { $expected{$2} = $1 if m{^diff \S+ (\S+) \S*/results/(\S+)\.out$}; }
}

# Each failed test of the extension run against the vanilla run's output;
# against the expected output instead when the vanilla run is not vanilla
# there (pg_consent messages, see above).
my (@same, @listing, @new, @fixed);
for my $t (@ext_failed) {
    my $base = $van_hunks{$t} && $expected{$t} ? $expected{$t} : "$work/vanilla/results/$t.out";
    my ($bad, $added) = judge($t, $base);
    my $name = $base eq "$work/vanilla/results/$t.out" ? $t : "$t (against the expected output)";
    if (@$bad) { push @new, [$name, $bad, $base]; }
    elsif ($added) { push @listing, "$name (+$added rows)"; }
    else { push @same, $name; }
}
@fixed = grep { ($ext->{$_} // '') eq 'ok' } @van_failed;
my $missing = grep { !exists $ext->{$_} } @$van_order;

for my $t (@van_consent) {
    my @h = @{ $van_hunks{$t} };
    out("\n=== $t, vanilla run: expected (-) vs output (+)\n");
    for my $k (0 .. $#h) {
        if ($k == 4) { out("... (" . (@h - 4) . " more hunks: see vanilla.diffs)\n"); }
        if ($k >= 4) { rep($h[$k]); } else { out($h[$k]); }
    }
}
for my $n (@new) {
    my ($t, $bad, $base) = @$n;
    out(sprintf "\n=== %s: %s (-) vs pg_consent run output (+)\n", $t,
        $base =~ m{/vanilla/results/} ? 'vanilla run output' : 'expected output');
    my $k = 0;
    for my $seg (@$bad) {
        if (++$k > 6) { out("... (" . (@$bad - 6) . " more differences: $report)\n"); rep($_) for @$bad[6 .. $#$bad]; last; }
        out($seg, "---\n");
    }
}
out("\n") if @van_consent || @new;
out(sprintf "PostgreSQL %s regression suite against server %s\n", $version, $server);
out(sprintf "tests run: %d (vanilla run %d, %s s; pg_consent run %d, %s s)\n",
    scalar(@tests), scalar(@$van_order), $t_van, scalar(@tests), $t_ext);
out(sprintf "vanilla failures: %d%s\n", scalar(@van_failed), @van_failed ? " (@van_failed)" : '');
out(sprintf "pg_consent run failures: %d%s\n", scalar(@ext_failed), @ext_failed ? " (@ext_failed)" : '');
out(sprintf "  same output as vanilla: %d%s\n", scalar(@same), @same ? " (@same)" : '');
out(sprintf "  differ only by listings of pg_consent objects: %d%s\n", scalar(@listing), @listing ? " (@listing)" : '');
out(sprintf "  differ otherwise: %d%s\n", scalar(@new), @new ? " (" . join(' ', map { $_->[0] } @new) . ")" : '');
out(sprintf "failed in the vanilla run only: %s\n", "@fixed") if @fixed;
out(sprintf "pg_consent messages in the vanilla run (database without the extension): %d%s\n",
    scalar(@van_consent), @van_consent ? " (@van_consent)" : '');
my $pass = !@new && !@van_consent && !$missing && @tests >= @$van_order && @tests > 0;
out("\ntests missing from the pg_consent run: $missing\n") if $missing;
my @why;
push @why, scalar(@new) . ' test(s) behave differently with the extension' if @new;
push @why, scalar(@van_consent) . ' test(s) show pg_consent messages in the database without it' if @van_consent;
push @why, 'the runs are incomplete' if !@why;
out(sprintf "%s: %s\n", $pass ? 'PASS' : 'FAIL',
    $pass ? 'the extension fails no test beyond the vanilla run (listings of its own objects aside)'
          : join('; ', @why));
close $rep;
exit($pass ? 0 : 1);
PERL
}

# The isolation suite's two runs in work directory $1 (report to $2): the
# run with the extension fails no spec the vanilla run passes, and the
# vanilla run's differences never mention consent.  Timing-dependent specs
# have alternative expected outputs; a spec that fails both ways is left to
# PostgreSQL.
compare_isolation() {
    local w=$1 report=$2 t van ext van_failed ext_failed n_van n_ext new=() mention=''
    statuses() { sed -n 's/^\(test \|[ ]*\)\([^ ]*\)[ ]*\.\.\. \(ok\|FAILED\|failed\).*/\2 \3/p' "$1"; }
    [ -f "$w/iso-consent.rc" ] || { echo "isolation suite: did not run" | tee "$report"; return 1; }
    van=$(statuses "$w/iso-vanilla.out"); ext=$(statuses "$w/iso-consent.out")
    n_van=$(grep -c . <<<"$van"); n_ext=$(grep -c . <<<"$ext")
    van_failed=$(awk '$2 != "ok" {print $1}' <<<"$van")
    ext_failed=$(awk '$2 != "ok" {print $1}' <<<"$ext")
    for t in $ext_failed; do
        grep -qx -- "$t" <<<"$van_failed" || new+=("$t")
    done
    grep -qi consent "$w/iso-vanilla/regression.diffs" 2>/dev/null && mention=yes
    {
        echo "PostgreSQL isolation suite: vanilla run $n_van specs ($(cut -d' ' -f2 "$w/iso-vanilla.rc") s), failed: ${van_failed:-none}"
        echo "  with pg_consent: $n_ext specs ($(cut -d' ' -f2 "$w/iso-consent.rc") s), failed: ${ext_failed:-none}"
        [ ${#new[@]} -eq 0 ] || { echo "  failed with the extension only: ${new[*]}"; head -n 80 "$w/iso-consent/regression.diffs" 2>/dev/null; }
        [ -z "$mention" ] || echo "  the vanilla run's differences mention consent"
    } | tee "$report"
    [ ${#new[@]} -eq 0 ] && [ -z "$mention" ] && [ "$n_ext" -gt 0 ] && [ "$n_ext" -eq "$n_van" ]
}

# --compare WORKDIR: only the comparison, on a work directory kept with
# PG_REGRESS_KEEP=1 (to check the check).
if [ "${1:-}" = --compare ]; then
    rc=0
    compare "$2" "$2/compare.txt" || rc=1
    [ ! -f "$2/iso-consent.rc" ] || compare_isolation "$2" "$2/compare-isolation.txt" || rc=1
    exit $rc
fi

# ---------------------------------------------------------------------------
say() { echo "pg-regress: $*"; }
skip() { echo "$label: SKIP ($*)"; exit 0; }
die() { echo "$label: FAILED ($*)"; exit 1; }
t_start=$SECONDS

# apt-get install, only for what is missing (root or sudo without password)
need_pkgs() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo -n true 2>/dev/null || die "missing packages: ${missing[*]} (install them, or run as root)"
        sudo=(sudo -n)
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
        || die "apt-get install ${missing[*]} failed"
}

for need in "$pgxs_regress" "$pg_config" "$pgbin/postgres"; do
    [ -x "$need" ] || die "$need is missing (install postgresql-15 and postgresql-server-dev-15: test/harness/deps.sh)"
done
command -v pg_virtualenv >/dev/null || die "pg_virtualenv is missing (postgresql-common)"
[ -f "$pglib/pg_consent.so" ] || die "pg_consent is not installed (make install)"

if [ "$(id -u)" -eq 0 ]; then
    cache_root=${CONSENT_BUILD_CACHE:-/var/cache/pg_consent}
else
    cache_root=${CONSENT_BUILD_CACHE:-$HOME/.cache/pg_consent}
fi
mkdir -p "$cache_root" || die "cannot create the build cache $cache_root"

# ---------------------------------------------------------------------------
# Find the sources: a tarball (kind=tarball) or an extracted tree (kind=tree).
kind='' source=''
if [ -n "${PG_REGRESS_SOURCE:-}" ]; then
    if [ -f "$PG_REGRESS_SOURCE" ]; then
        kind=tarball; source=$(realpath "$PG_REGRESS_SOURCE")
    elif [ -f "$PG_REGRESS_SOURCE/src/test/regress/parallel_schedule" ] && [ -x "$PG_REGRESS_SOURCE/configure" ]; then
        kind=tree; source=$(realpath "$PG_REGRESS_SOURCE")
    else
        die "PG_REGRESS_SOURCE=$PG_REGRESS_SOURCE is neither a tarball nor a PostgreSQL source tree"
    fi
elif [ -f "$top/../shared/vendor/postgresql-15.18.tar.bz2" ]; then
    kind=tarball; source=$(realpath "$top/../shared/vendor/postgresql-15.18.tar.bz2")
    sums=$top/../shared/vendor/SHA256SUMS
    if [ -f "$sums" ]; then
        (cd "$top/../shared/vendor" && grep ' postgresql-15.18.tar.bz2$' SHA256SUMS | sha256sum --quiet -c -) \
            || die "$source does not match $sums"
    fi
else
    # Debian's source package; kept in the cache once downloaded
    src_dl=$cache_root/debian-source
    found=$(ls "$src_dl"/postgresql-15_15.*.orig.tar.* 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$found" ] && command -v apt-get >/dev/null; then
        say "no tarball given: trying apt-get source postgresql-15"
        tmp_dl=$(mktemp -d)
        chmod 755 "$tmp_dl"
        if (cd "$tmp_dl" && timeout 300 apt-get source --download-only -qq postgresql-15 >"$tmp_dl/log" 2>&1); then
            mkdir -p "$src_dl" && mv "$tmp_dl"/postgresql-15_15.*.orig.tar.* "$src_dl/" 2>/dev/null
            found=$(ls "$src_dl"/postgresql-15_15.*.orig.tar.* 2>/dev/null | sort -V | tail -n 1)
        else
            say "apt-get source failed: $(tail -n 1 "$tmp_dl/log")"
        fi
        rm -rf "$tmp_dl"
    fi
    [ -n "$found" ] || skip "no PostgreSQL 15 source: set PG_REGRESS_SOURCE to a postgresql-15.x tarball or tree"
    kind=tarball; source=$found
fi

# ---------------------------------------------------------------------------
# The build, once per source: <cache>/postgresql-<version>-<key>/
#   src/    the extracted tarball (not for a tree: the tree itself)
#   build/  VPATH build (configure, libpq, psql)
#   inst/   bin/psql, lib/libpq.so.5 (psql's rpath)
#   regress-<server version>/regress.so   against the installed server
if [ "$kind" = tarball ]; then
    key=$(sha256sum "$source" | cut -c1-16)
    base=$(basename "$source"); version=${base#postgresql-}; version=${version#postgresql-15_}
    version=${version%%.tar*}; version=${version%.orig}
else
    key=tree-$( { echo "$source"; stat -c %Y "$source/configure" "$source/src/test/regress/parallel_schedule"; } | sha256sum | cut -c1-16)
    version=$(sed -n "s/^PACKAGE_VERSION='\(.*\)'/\1/p" "$source/configure")
fi
case $version in 15.*) ;; *) die "$source is PostgreSQL '$version', the installed server is 15";; esac
cache=$cache_root/postgresql-$version-$key
mkdir -p "$cache" && chmod 755 "$cache_root" "$cache" 2>/dev/null
exec 9>"$cache/.lock"
flock 9   # another run building the same cache: wait for it

if [ "$kind" = tarball ]; then srcdir=$cache/src; else srcdir=$source; fi
build_log=$cache/build.log
if [ -f "$cache/.built" ] && [ -x "$cache/inst/bin/psql" ]; then
    say "build cache: reusing $cache (psql $version)"
else
    say "build cache: building psql $version into $cache (log: $build_log)"
    t0=$SECONDS
    need_pkgs gcc make
    rm -rf "$cache/build" "$cache/inst" "$cache/keep"
    if [ "$kind" = tarball ]; then
        case $source in *.bz2) need_pkgs bzip2;; *.xz) need_pkgs xz-utils;; esac
        rm -rf "$cache/src" && mkdir -p "$cache/src" \
            && tar -xf "$source" -C "$cache/src" --strip-components=1 \
            || die "cannot extract $source"
    elif [ -f "$srcdir/config.status" ]; then
        die "$srcdir was configured in place: give its tarball or an unconfigured tree"
    fi
    mkdir -p "$cache/build"
    {
        cd "$cache/build" \
        && "$srcdir/configure" --prefix="$cache/inst" --without-readline --without-icu \
               --without-zlib --without-openssl --without-gssapi --without-ldap --disable-nls \
        && make -j2 -C src/backend generated-headers \
        && make -j2 -C src/interfaces/libpq install \
        && make -j2 -C src/bin/psql install
    } >"$build_log" 2>&1 || { tail -n 30 "$build_log"; die "building psql from $source failed (see $build_log)"; }
    cd "$top" || exit 1
    "$cache/inst/bin/psql" --version >/dev/null || die "the built psql does not run (see $build_log)"
    # keep only what later runs read: the suite and the C files of the test
    # libraries (about 20 MB instead of 170)
    rm -rf "$cache/build"
    if [ "$kind" = tarball ]; then
        mkdir -p "$cache/keep/src/test" "$cache/keep/contrib" \
            && mv "$cache/src/src/test/regress" "$cache/src/src/test/isolation" "$cache/keep/src/test/" \
            && mv "$cache/src/contrib/spi" "$cache/keep/contrib/" \
            && rm -rf "$cache/src" && mv "$cache/keep" "$cache/src" \
            || die "cannot prune $cache/src"
    fi
    touch "$cache/.built"
    say "built psql and libpq in $((SECONDS - t0)) s"
fi

# the isolation suite's specs: a cache made without them gets them now
if [ "$kind" = tarball ] && [ ! -f "$srcdir/src/test/isolation/isolation_schedule" ]; then
    tar -xf "$source" -C "$srcdir" --strip-components=1 --wildcards '*/src/test/isolation/*' \
        || die "cannot extract src/test/isolation from $source"
fi

# regress.so, autoinc.so and refint.so (contrib/spi) of the same tree: the
# triggers test expects that version's refint (the installed 15.20 one
# cascades differently).  They are loaded into the installed server: built
# against its headers, once per installed server version.
server_version=$("$pg_config" --version | tr -c 'A-Za-z0-9.\n' _)
regress_dir=$cache/regress-$server_version
if [ ! -f "$regress_dir/.built" ]; then
    [ -f "$("$pg_config" --includedir-server)/postgres.h" ] \
        || die "the server headers are missing (postgresql-server-dev-15: test/harness/deps.sh)"
    rm -rf "$regress_dir" && mkdir -p "$regress_dir"
    cp "$srcdir/src/test/regress/regress.c" "$srcdir/contrib/spi/autoinc.c" "$srcdir/contrib/spi/refint.c" "$regress_dir/" \
        || die "regress.c or contrib/spi is missing from $srcdir"
    cat >"$regress_dir/Makefile" <<EOF
MODULES = regress autoinc refint
PG_CPPFLAGS = -DREFINT_VERBOSE
PG_CONFIG = $pg_config
PGXS := \$(shell \$(PG_CONFIG) --pgxs)
override with_llvm = no
include \$(PGXS)
EOF
    make -C "$regress_dir" >"$regress_dir/build.log" 2>&1 \
        || { tail -n 30 "$regress_dir/build.log"; die "building regress.so failed (see $regress_dir/build.log)"; }
    touch "$regress_dir/.built"
    say "built regress.so, autoinc.so, refint.so against $("$pg_config" --version)"
fi
exec 9>&-   # unlock; the server must not inherit the lock

# ---------------------------------------------------------------------------
# A work directory the server's user can read: the suite's inputs (the
# server reads data/ with COPY FROM), the libraries (--dlpath), the outputs.
work=$(mktemp -d "${TMPDIR:-/tmp}/pg_consent_pgregress.XXXXXX")
chmod 755 "$work"
cleanup() { [ -n "${PG_REGRESS_KEEP:-}" ] && { say "kept $work"; return; }; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/in" "$work/lib"
for f in sql expected data parallel_schedule resultmap; do
    cp -r "$srcdir/src/test/regress/$f" "$work/in/" || die "$srcdir/src/test/regress/$f is missing"
done
cp "$regress_dir/regress.so" "$regress_dir/autoinc.so" "$regress_dir/refint.so" "$work/lib/"
iso_regress=/usr/lib/postgresql/15/lib/pgxs/src/test/isolation/pg_isolation_regress
if [ -x "$iso_regress" ] && [ -f "$srcdir/src/test/isolation/isolation_schedule" ]; then
    mkdir -p "$work/iso-in"
    for f in specs expected isolation_schedule; do
        cp -r "$srcdir/src/test/isolation/$f" "$work/iso-in/" || die "$srcdir/src/test/isolation/$f is missing"
    done
else
    iso_regress=''
    say "no pg_isolation_regress or isolation specs: the isolation suite is not run"
fi
echo "$version" >"$work/source-version"
chmod -R a+rX "$work"

log_dir=$top/test/harness/log/pg-regress
rm -rf "$log_dir"; mkdir -p "$log_dir"

say "running the suite twice (vanilla, then with CREATE EXTENSION pg_consent) against one server"
server_opts=(-o "shared_preload_libraries=pg_consent" -o "max_worker_processes=16"
             -o "max_prepared_transactions=4" -o "fsync=off" -o "log_min_messages=warning")
PGR_PG_REGRESS=$pgxs_regress PGR_BINDIR=$cache/inst/bin PGR_ISOLATION_REGRESS=$iso_regress \
    pg_virtualenv -t -v 15 "${server_opts[@]}" "$self" --inside "$work" >"$log_dir/pg_virtualenv.log" 2>&1
venv_rc=$?
for r in vanilla consent iso-vanilla iso-consent; do
    cp "$work/$r.out" "$log_dir/$r.out" 2>/dev/null
    cp "$work/$r/regression.diffs" "$log_dir/$r.diffs" 2>/dev/null
done
[ -f "$work/consent.rc" ] || { tail -n 30 "$log_dir/pg_virtualenv.log"; die "the server or the suite did not run (pg_virtualenv exit $venv_rc, see $log_dir)"; }
for r in vanilla consent; do
    read -r code secs <"$work/$r.rc"
    case $code in 124|137) say "the $r run was stopped after $secs s (PG_REGRESS_TIMEOUT=${PG_REGRESS_TIMEOUT:-900})";; esac
done
[ -s "$work/objects" ] || { cat "$work/objects.err" 2>/dev/null; die "could not list the extension's objects (did CREATE EXTENSION run?)"; }

# roles the extension created: new since the vanilla run, and not named by
# any of the suite's own SQL files (the tests drop their roles)
comm -13 <(sort "$work/roles.vanilla") <(sort "$work/roles.consent") | while read -r role; do
    grep -rqw -- "$role" "$work/in/sql" || printf '0\tpg_authid\t%s\t%s\n' "$role" "$role"
done >>"$work/objects"
cp "$work/objects" "$log_dir/extension-objects.tsv"

# ---------------------------------------------------------------------------
compare "$work" "$log_dir/compare.txt"
rc=$?
[ -z "$iso_regress" ] || compare_isolation "$work" "$log_dir/compare-isolation.txt" || rc=1
total=$((SECONDS - t_start))
if [ $rc -eq 0 ]; then
    echo "$label: PASS ($total s; details in $log_dir)"
else
    echo "$label: FAILED ($total s; details in $log_dir)"
fi
exit $rc
