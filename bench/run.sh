#!/usr/bin/env bash
# Benchmark resetscope against tshark on one large capture made of repeated
# real traffic (bench/make-large.py).  See docs/benchmark.md.
#
# Usage: bench/run.sh [options]
#   -n, --runs N        timed runs per tool and file (default 5)
#   -p, --packets N     packets in the large capture (default 1200000)
#   -m, --mem-packets M packets in the second capture, on which only
#                       resetscope is timed, to compare its peak memory
#                       (default N/2; e.g. 4800000 for a 4x larger one)
#   -c, --cpu N         CPU both tools are pinned to with taskset (default 0)
#   -f, --file PCAP     benchmark this capture instead of generating one
#                       (the memory comparison is then skipped)
#       --format FMT    resetscope's report format (default json)
#       --no-build      use the existing target/release/resetscope
#       --no-tshark     time resetscope only (no ratio)
#   -h, --help
#
# Environment: RESETSCOPE_BIN times another binary (cargo build still runs
# unless --no-build); RESETSCOPE_BENCH_CACHE (default bench/.cache) holds the
# generated captures, per-run logs and results.md.
#
# Prints progress on stderr and a Markdown report on stdout (also written to
# $CACHE/results.md).  Exits non-zero if either tool fails on any run.
# Needs: cargo, python3, tshark, capinfos, taskset, GNU time (/usr/bin/time;
# installed with apt-get if missing and running as root).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cache=${RESETSCOPE_BENCH_CACHE:-$here/.cache}

runs=5
packets=1200000
mem_packets=
cpu=0
file=
build=1
with_tshark=1
format=json

die() { echo "run.sh: error: $*" >&2; exit 1; }
log() { echo "run.sh: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        -n|--runs) runs=${2:?}; shift 2 ;;
        -p|--packets) packets=${2:?}; shift 2 ;;
        -m|--mem-packets) mem_packets=${2:?}; shift 2 ;;
        -c|--cpu) cpu=${2:?}; shift 2 ;;
        -f|--file) file=${2:?}; shift 2 ;;
        --format) format=${2:?}; shift 2 ;;
        --no-build) build=0; shift ;;
        --no-tshark) with_tshark=0; shift ;;
        -h|--help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $packets =~ ^[1-9][0-9]*$ ]] || die "--packets must be a positive integer"
mem_packets=${mem_packets:-$((packets / 2))}
[[ $mem_packets =~ ^[1-9][0-9]*$ ]] || die "--mem-packets must be a positive integer"
[[ $cpu =~ ^[0-9]+$ ]] || die "--cpu must be a CPU number"

# ---------------------------------------------------------------- tools
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found${2:+ ($2)}"; }
need python3
need taskset "apt-get install util-linux"
need capinfos "apt-get install wireshark-common"
[ $with_tshark = 0 ] || need tshark "apt-get install tshark"
if ! /usr/bin/time -f %M true >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing GNU time"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >&2 \
            || die "could not install GNU time"
    fi
    /usr/bin/time -f %M true >/dev/null 2>&1 \
        || die "GNU time (/usr/bin/time) is needed: apt-get install time"
fi
taskset -c "$cpu" true 2>/dev/null || die "cannot pin to CPU $cpu"

mkdir -p "$cache"
bin=${RESETSCOPE_BIN:-$repo/target/release/resetscope}
if [ $build = 1 ]; then
    need cargo
    log "building resetscope (cargo build --release)"
    (cd "$repo" && cargo build --release) >&2 || die "cargo build --release failed"
fi
[ -x "$bin" ] || die "$bin not found (build it, or drop --no-build)"

# ---------------------------------------------------------------- captures
if [ -n "$file" ]; then
    [ -r "$file" ] || die "cannot read $file"
    big=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
    second=
else
    big=$cache/large-$packets.pcap
    second=$cache/large-$mem_packets.pcap
    log "generating captures in $cache (skipped when up to date)"
    python3 "$here/make-large.py" --out "$big" --packets "$packets" --reuse >&2 \
        || die "make-large.py failed"
    python3 "$here/make-large.py" --out "$second" --packets "$mem_packets" --reuse >&2 \
        || die "make-large.py failed"
fi

count_packets() {
    capinfos -c -M "$1" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}'
}
file_mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.0f", b / 1e6 }'; }

# ---------------------------------------------------------------- timing
# run_tool NAME PCAP OUT -- one run; appends "wall_s maxrss_kb" to $cache/NAME.times
# and fails loudly (with the tool's stderr) if the tool exits non-zero.
tool_cmd() {  # tool pcap -> command words in the global array cmd
    case $1 in
        resetscope) cmd=("$bin" analyze "$2" --format "$format") ;;
        tshark) cmd=(tshark -r "$2" -q -z conv,tcp) ;;
    esac
}

run_once() {  # tool pcap label stdout-file
    local tool=$1 pcap=$2 label=$3 out=$4 t0 t1 rc=0
    local err=$cache/$label.stderr rss=$cache/$label.rss
    tool_cmd "$tool" "$pcap"
    t0=$(date +%s%N)
    /usr/bin/time -f %M -o "$rss" taskset -c "$cpu" "${cmd[@]}" \
        </dev/null >"$out" 2>"$err" || rc=$?
    t1=$(date +%s%N)
    if [ $rc != 0 ]; then
        echo "run.sh: error: $tool failed (exit $rc) on $pcap:" >&2
        echo "  command: taskset -c $cpu ${cmd[*]}" >&2
        tail -n 20 "$err" | sed 's/^/  | /' >&2
        exit 1
    fi
    # GNU time appends "Command exited with non-zero status" lines on
    # failure; on success the last line is the peak RSS in KiB.
    echo "$(( (t1 - t0) / 1000 )) $(tail -n 1 "$rss")" >>"$cache/$label.times"
}

# bench TOOL PCAP LABEL: one untimed warm-up run, then $runs timed runs.
# Sets: med_s min_s max_s rss_kb (median peak RSS)
bench() {
    local tool=$1 pcap=$2 label=$3 i
    : >"$cache/$label.times"
    log "$label: warm-up run"
    if [ "$tool" = resetscope ] && [ "$format" = json ]; then
        run_once "$tool" "$pcap" "$label" "$cache/$label.out.json"
        python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \
            "$cache/$label.out.json" 2>/dev/null \
            || log "warning: resetscope output for $pcap is not valid JSON ($cache/$label.out.json)"
    else
        run_once "$tool" "$pcap" "$label" "$cache/$label.out.txt"
    fi
    : >"$cache/$label.times"
    for ((i = 1; i <= runs; i++)); do
        run_once "$tool" "$pcap" "$label" /dev/null
        log "$label: run $i/$runs: $(tail -n 1 "$cache/$label.times" |
            awk '{ printf "%.3f s, %.1f MiB", $1 / 1e6, $2 / 1024 }')"
    done
    read -r med_s min_s max_s rss_kb < <(awk '
        { t[NR] = $1; r[NR] = $2 }
        function median(a, n,   i, j, x) {
            for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        END {
            min = t[1]; max = t[1]
            for (i = 1; i <= NR; i++) { if (t[i] < min) min = t[i]; if (t[i] > max) max = t[i] }
            printf "%.6f %.6f %.6f %d\n", median(t, NR) / 1e6, min / 1e6, max / 1e6, median(r, NR)
        }' "$cache/$label.times")
}

thousands() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
rows=()
add_row() {  # tool file-label pcap npk
    local pps
    pps=$(awk -v n="$4" -v s="$med_s" 'BEGIN { printf "%.0f", n / s }')
    rows+=("| $1 | $2 | $(thousands "$4") | $(printf '%.3f' "$med_s") | $(printf '%.3f–%.3f' "$min_s" "$max_s") | $(thousands "$pps") | $(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }') |")
    last_pps=$pps
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "warming the page cache (load average now: $load_start)"
cat "$big" ${second:+"$second"} >/dev/null

npk_big=$(count_packets "$big")
[ -n "$npk_big" ] || die "capinfos could not count packets in $big"
big_label="$(basename "$big") ($(file_mb "$big") MB)"

bench resetscope "$big" resetscope-big
add_row resetscope "$big_label" "$big" "$npk_big"
rs_pps=$last_pps; rs_rss_big=$rss_kb; rs_med=$med_s

if [ -n "$second" ]; then
    npk_second=$(count_packets "$second")
    second_label="$(basename "$second") ($(file_mb "$second") MB)"
    bench resetscope "$second" resetscope-second
    add_row resetscope "$second_label" "$second" "$npk_second"
    rs_rss_second=$rss_kb
fi

if [ $with_tshark = 1 ]; then
    bench tshark "$big" tshark-big
    add_row tshark "$big_label" "$big" "$npk_big"
    ts_pps=$last_pps; ts_rss=$rss_kb; ts_med=$med_s
fi

# ---------------------------------------------------------------- report
head_commit() {  # read .git directly (no git process): short HEAD commit or "?"
    local g=$repo/.git head ref
    head=$(cat "$g/HEAD" 2>/dev/null) || { echo "?"; return; }
    if [[ $head == "ref: "* ]]; then
        ref=${head#ref: }
        head=$(cat "$g/$ref" 2>/dev/null || awk -v r="$ref" '$2 == r { print $1 }' "$g/packed-refs" 2>/dev/null)
    fi
    [ -n "$head" ] && echo "${head:0:12}" || echo "?"
}
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
    echo "### Results ($(date -u +%Y-%m-%d))"
    echo
    echo "| Tool | Capture | Packets | Median wall (s) | Min–max (s) | Packets/s (median) | Peak RSS (MiB, median) |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    if [ $with_tshark = 1 ]; then
        awk -v a="$rs_pps" -v b="$ts_pps" -v ta="$rs_med" -v tb="$ts_med" \
            -v ra="$rs_rss_big" -v rb="$ts_rss" 'BEGIN {
            printf "- resetscope / tshark throughput: **%.1f×** (%.0f vs %.0f packets/s; median wall %.3f s vs %.3f s)\n", a / b, a, b, ta, tb
            printf "- peak RSS on the large capture: resetscope %.1f MiB, tshark %.1f MiB\n", ra / 1024, rb / 1024 }'
    fi
    if [ -n "$second" ]; then
        awk -v h="$rs_rss_second" -v b="$rs_rss_big" -v nh="$npk_second" -v nb="$npk_big" 'BEGIN {
            printf "- resetscope peak RSS, %d vs %d packets: %.1f MiB vs %.1f MiB (%.2f× the memory for %.2f× the packets)\n", nb, nh, b / 1024, h / 1024, h / b, nh / nb }'
    fi
    if [ -n "$file" ] || [ ! -f "$big.meta.json" ]; then :; else
        conv_file=
        [ $with_tshark = 0 ] || conv_file=$cache/tshark-big.out.txt
        python3 - "$big.meta.json" "$conv_file" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
conv = ""
if sys.argv[2]:
    # tshark conv,tcp rows end with "<rel start> <duration>"
    ev = []
    for line in open(sys.argv[2]):
        if "<->" in line:
            f = line.split()
            start, dur = float(f[-2]), float(f[-1])
            ev += [(start, 1), (start + dur, -1)]
    ev.sort()
    live = peak = 0
    for _, d in ev:
        live += d
        peak = max(peak, live)
    conv = (f"; tshark counts {len(ev) // 2:,} TCP conversations, at most {peak:,} "
            f"open at once (first to last packet)")
print(f"- capture: {m['packets']:,} packets, {m['bytes'] / 1e6:.0f} MB, link type {m['link_type']}, "
      f"{m['instances']:,} replays of {len(m['inputs'])} real captures ({m['input_packets']:,} packets, "
      f"{m['input_connections']} TCP connections), ~{m['tcp_connections_approx']:,} TCP connections{conv}, "
      f"about {m['concurrency_target']} replays live at once (peak {m['peak_live_instances']}), "
      f"span {m['approx_span_s']:.0f} s")
EOF
    fi
    echo "- runs: $runs timed runs per row after one untimed warm-up run, page cache warm, both tools pinned with \`taskset -c $cpu\`"
    echo "- commands: \`resetscope analyze FILE --format $format > /dev/null\`$([ $with_tshark = 0 ] || echo ', `tshark -r FILE -q -z conv,tcp > /dev/null`')"
    echo "- load average (1/5/15 min) at start: $load_start, at end: $(cut -d' ' -f1-3 /proc/loadavg) — other work on the machine skews the figures"
    echo "- machine: $(nproc) CPUs, $cpu_model, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
    echo "- versions: $("$bin" --version 2>/dev/null | head -n 1 || echo resetscope ?) (commit $(head_commit)), $(tshark --version 2>/dev/null | head -n 1 | sed 's/ (Git.*//' || echo tshark ?), $(rustc --version 2>/dev/null | awk '{ print $1, $2 }')"
} | tee "$cache/results.md"
