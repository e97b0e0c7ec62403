#!/usr/bin/env bash
# Issue 9's adversarial captures at full scale, for the record: peak RSS (GNU time -v), wall
# time and exit status of `resetscope analyze` per scenario, format (terminal, json,
# markdown, html, --extract) and input (the file, mapped; a pipe, streamed). The scenarios
# and their ground truth are tests/common/adversarial.rs (see fixtures/adversarial/NOTES.md);
# tests/hostile.rs runs them at a smaller scale under `--memory 64M`.
#
# Usage: scripts/adversarial-full-scale.sh [options] [SCENARIO...]
#   --bin PATH         binary to measure (default target/release/resetscope, built first)
#   --memory SIZE      also pass --memory SIZE (default: none; today's binary has no flag)
#   --scale S          full (default: the issue's sizes) or test (tests/hostile.rs's)
#   --max-file-mb N    a scenario whose capture would be larger is not written to disk: it is
#                      generated into a FIFO and analysed through the pipe only (default 400)
#   --max-seconds N    stop a run after N s of CPU time (ulimit -t; default 180), or after
#                      5 times that of wall time
#   --max-gib N        address-space limit of a run (ulimit -v), beyond the mapped capture
#                      (default 8): a run that needs more aborts, and is reported so
#   --out DIR          scratch directory (default: a new one under ${TMPDIR:-/tmp}, removed)
#   --no-build         use the binary and the generator as built
#   --list             list the scenarios and their estimated sizes, and stop
#   -h, --help
# SCENARIO: names as --list prints them (default: all of the scale).
#
# Prints a Markdown table on stdout and, first, the binary's baseline (the least ulimit -v
# under which it analyses the race fixture). Captures are written one at a time and deleted
# after their runs. Needs cargo, GNU time (/usr/bin/time), timeout, mkfifo.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
bin=
memory=
scale=full
max_file_mb=400
max_seconds=180
max_gib=8
out=
build=1
list=0
only=()

die() { echo "adversarial-full-scale.sh: error: $*" >&2; exit 1; }
log() { echo "adversarial-full-scale.sh: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=${2:?}; shift 2 ;;
        --memory) memory=${2:?}; shift 2 ;;
        --scale) scale=${2:?}; shift 2 ;;
        --max-file-mb) max_file_mb=${2:?}; shift 2 ;;
        --max-seconds) max_seconds=${2:?}; shift 2 ;;
        --max-gib) max_gib=${2:?}; shift 2 ;;
        --out) out=${2:?}; shift 2 ;;
        --no-build) build=0; shift ;;
        --list) list=1; shift ;;
        -h|--help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) die "unknown option: $1 (see --help)" ;;
        *) only+=("$1"); shift ;;
    esac
done
case $scale in full|test) ;; *) die "--scale must be full or test" ;; esac
/usr/bin/time -v true >/dev/null 2>&1 || die "GNU time is needed: apt-get install time"
command -v timeout >/dev/null || die "timeout (coreutils) is needed"

# ---------------------------------------------------------------- build
cd "$repo"
if [ $build = 1 ]; then
    log "building (cargo build --release; the generator: cargo test --release --test hostile --no-run)"
    cargo build --release >&2 || die "cargo build --release failed"
fi
gen=$(cargo test --release --test hostile --no-run 2>&1 |
    sed -n 's/.*Executable tests\/hostile.rs (\(.*\))/\1/p' | tail -n 1)
[ -n "$gen" ] && [ -x "$repo/$gen" ] || die "cannot find the tests/hostile.rs executable"
gen=$repo/$gen
bin=${bin:-$repo/target/release/resetscope}
[ -x "$bin" ] || die "$bin not found"

generate() {  # generate OUTDIR [NAME] [list]: the generator's lines for the scale
    RESETSCOPE_ADVERSARIAL_OUT=$1 RESETSCOPE_ADVERSARIAL_SCALE=$scale \
        RESETSCOPE_ADVERSARIAL_ONLY=${2:-} RESETSCOPE_ADVERSARIAL_LIST=${3:-} \
        "$gen" write_adversarial_captures --ignored --exact --nocapture --test-threads 1 |
        awk '{ i = index($0, "adversarial\t"); if (i) print substr($0, i) }'
    # (libtest prints "test NAME ... " before the first line of the test's own output)
}

if [ -z "$out" ]; then
    out=$(mktemp -d "${TMPDIR:-/tmp}/resetscope-adversarial.XXXXXX")
    trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
mapfile -t scenarios < <(generate "$out" "" 1)
[ ${#scenarios[@]} -gt 0 ] || die "the generator listed no scenario"
if [ $list = 1 ]; then
    printf '%s\n' "${scenarios[@]}" | awk -F'\t' '{ printf "%-32s ~%8.1f MB\n", $2, $4 / 1e6 }'
    exit 0
fi

# ---------------------------------------------------------------- baseline
race=$repo/fixtures/go-idle-race/capture.pcap
baseline() {  # the least ulimit -v (KiB) under which FORMAT analyses the race fixture
    local lo=1024 hi=262144 mid
    while [ $((hi - lo)) -gt 128 ]; do
        mid=$(((lo + hi) / 2))
        if (ulimit -v $mid; exec "$bin" analyze -f "$1" "$race") >/dev/null 2>&1; then hi=$mid; else lo=$mid; fi
    done
    echo $hi
}
echo "### Baseline"
echo
for f in terminal json markdown html; do
    echo "- \`$f\` on fixtures/go-idle-race ($(stat -c %s "$race") bytes, mapped): least \`ulimit -v\` $(baseline $f) KiB"
done
echo

# ---------------------------------------------------------------- runs
# measure LABEL INPUT_KIND FORMAT CAPTURE_ARG LIMIT_KIB [< stdin]: one run; appends a row.
rows=()
tsv=$out/figures.tsv
: >"$tsv"
measure() {
    local label=$1 input=$2 fmt=$3 arg=$4 limit=$5 tf=$out/time.txt end=$out/end.txt
    local args=(analyze -f "$fmt") rc=0
    [ "$fmt" = extract ] && args=(analyze --extract "$out/extract.pcap")
    [ -n "$memory" ] && args+=(--memory "$memory")
    args+=("$arg")
    rm -f "$tf" "$out/extract.pcap"
    (ulimit -v "$limit"; ulimit -S -t "$max_seconds"; ulimit -c 0
        exec /usr/bin/time -v -o "$tf" timeout -s KILL $((max_seconds * 5)) "$bin" "${args[@]}") 2>"$out/stderr.txt" | tail -c 400 >"$end" || rc=$?
    local rss wall cpu status complete
    cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { if (u != "") printf "%.1f", u + s }' "$tf" 2>/dev/null)
    rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$tf" 2>/dev/null)
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$tf" 2>/dev/null)
    status=$(awk -F': ' '/Exit status/ { print $2 }' "$tf" 2>/dev/null)
    if grep -q 'Command terminated by signal' "$tf" 2>/dev/null; then
        status="signal $(sed -n 's/.*Command terminated by signal \([0-9]*\).*/\1/p' "$tf")"
    fi
    case $status in
        137|"signal 9") status="stopped after $((max_seconds * 5)) s of wall time" ;;
        152|"signal 24") status="stopped after ${max_seconds} s of CPU (SIGXCPU)" ;;
        "signal 6") status="SIGABRT ($(grep -o 'memory allocation of [0-9]* bytes failed' "$out/stderr.txt" | head -n 1))" ;;
    esac
    case $fmt in
        json) grep -q ']}$' "$end" && complete=yes || complete=no ;;
        markdown) grep -q "Wireshark's\*\$" "$end" && complete=yes || complete=no ;;
        html) grep -q '</html>$' "$end" && complete=yes || complete=no ;;
        *) [ -s "$end" ] && complete=yes || complete=no ;;
    esac
    [ "$fmt" = extract ] && [ -f "$out/extract.pcap" ] &&
        complete="$complete, extract $(stat -c %s "$out/extract.pcap") B"
    rows+=("| $label | $fmt | $input | ${status:-?} | ${wall:-?} | ${cpu:-?} | ${rss:-?} | $complete |")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$fmt" "$input" "${status:-?}" "${wall:-?}" "${cpu:-?}" "${rss:-?}" "$complete" >>"$tsv"
    log "$label $fmt $input: ${status:-?}, ${wall:-?} wall, ${cpu:-?} s CPU, ${rss:-?} MiB, complete: $complete"
    rm -f "$out/extract.pcap"
}

formats=(terminal json markdown html extract)
for line in "${scenarios[@]}"; do
    IFS=$'\t' read -r _ name path est <<<"$line"
    if [ ${#only[@]} -gt 0 ] && ! printf '%s\n' "${only[@]}" | grep -qx "$name"; then continue; fi
    gib=$((max_gib * 1024 * 1024))
    if [ "$est" -gt $((max_file_mb * 1000000)) ]; then
        log "$name: ~$((est / 1000000)) MB > $max_file_mb MB: generated into a FIFO, pipe input only"
        for fmt in "${formats[@]}"; do
            rm -f "$path"; mkfifo "$path"
            generate "$out" "$name" >/dev/null &
            # Through cat: resetscope's standard input is then a pipe, as from tcpdump -w -.
            # (Given the FIFO itself, the second pass of markdown, html and --extract opens
            # it again and waits for a writer forever.)
            measure "$name (FIFO, ~$((est / 1000000)) MB)" pipe "$fmt" /dev/stdin "$gib" < <(cat "$path")
            wait || true
            rm -f "$path"
        done
        rows+=("| $name | (all) | file | not run: the capture would be ~$((est / 1000000)) MB | | | | |")
        continue
    fi
    log "$name: writing ~$((est / 1000000)) MB"
    generate "$out" "$name" >/dev/null
    size=$(stat -c %s "$path")
    for fmt in "${formats[@]}"; do
        measure "$name ($((size / 1000000)) MB)" file "$fmt" "$path" $((gib + size / 1024 + 1))
    done
    for fmt in "${formats[@]}"; do
        measure "$name ($((size / 1000000)) MB)" pipe "$fmt" /dev/stdin "$gib" < <(cat "$path")
    done
    rm -f "$path"
done

echo "### Runs ($(date -u +%Y-%m-%d), $("$bin" --version 2>/dev/null | head -n 1)${memory:+, --memory $memory})"
echo
echo "Limits: \`ulimit -v\` ${max_gib} GiB (+ the capture's size when mapped), \`ulimit -t\` ${max_seconds} s of CPU per run."
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs."
echo
echo "| scenario | format | input | exit | wall | CPU (s) | peak RSS (MiB) | report complete |"
echo "|---|---|---|---|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
