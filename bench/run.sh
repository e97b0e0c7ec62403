#!/usr/bin/env bash
# Benchmark resetscope against tshark and tcpdump on the same captures: a large capture
# made of repeated real traffic (bench/make-large.py) and one SCALE times larger. See
# docs/benchmark.md.
#
# Usage: bench/run.sh [options]
#   -n, --runs N        timed runs per row on the base capture (default 5; 3 on the large one)
#   -p, --packets N     packets in the base capture (default 1200000)
#   -s, --scale K       the second capture has K times the packets (default 8; 0: none)
#   -j, --threads N     threads of the multi-threaded rows (default: nproc)
#   -f, --file PCAP     benchmark this capture instead of generating them (no second one)
#       --no-build      use the existing target/release/resetscope
#       --quick         only the terminal and JSON reports of resetscope, and tcpdump
#   -h, --help
#
# Environment: RESETSCOPE_BIN times another binary; RESETSCOPE_BENCH_CACHE (default
# bench/.cache) holds the captures, per-run logs and results.md.
#
# Rows, on each capture: resetscope (terminal and JSON report at 1 and N threads; on the
# base capture also Markdown, HTML and --extract at 1 thread), `tshark -q -z conv,tcp`, and
# `tcpdump -r F -w /dev/null`. Single-threaded rows are pinned to one CPU (taskset), the
# others get every CPU. Each row: one warm-up run, then the timed runs; the median wall time,
# packets per second, CPU time and peak RSS (GNU time). Prints progress on stderr and a
# Markdown report on stdout (also $CACHE/results.md). Exits non-zero if a tool fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cache=${RESETSCOPE_BENCH_CACHE:-$here/.cache}

runs=5
packets=1200000
scale=8
threads=$(nproc)
file=
build=1
quick=0

die() { echo "run.sh: error: $*" >&2; exit 1; }
log() { echo "run.sh: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        -n|--runs) runs=${2:?}; shift 2 ;;
        -p|--packets) packets=${2:?}; shift 2 ;;
        -s|--scale) scale=${2:?}; shift 2 ;;
        -j|--threads) threads=${2:?}; shift 2 ;;
        -f|--file) file=${2:?}; shift 2 ;;
        --no-build) build=0; shift ;;
        --quick) quick=1; shift ;;
        -h|--help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
for v in runs packets threads; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$v must be a positive integer"
done
[[ $scale =~ ^[0-9]+$ ]] || die "--scale must be a number"

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found${2:+ ($2)}"; }
need python3
need taskset "apt-get install util-linux"
need capinfos "apt-get install wireshark-common"
need tshark "apt-get install tshark"
need tcpdump "apt-get install tcpdump"
if ! /usr/bin/time -f %M true >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >&2 || die "could not install GNU time"
    fi
    /usr/bin/time -f %M true >/dev/null 2>&1 || die "GNU time (/usr/bin/time) is needed: apt-get install time"
fi

mkdir -p "$cache"
bin=${RESETSCOPE_BIN:-$repo/target/release/resetscope}
if [ $build = 1 ]; then
    need cargo
    log "building resetscope (cargo build --release)"
    (cd "$repo" && cargo build --release) >&2 || die "cargo build --release failed"
fi
[ -x "$bin" ] || die "$bin not found (build it, or drop --no-build)"

captures=()
if [ -n "$file" ]; then
    [ -r "$file" ] || die "cannot read $file"
    captures=("$(cd "$(dirname "$file")" && pwd)/$(basename "$file")")
else
    captures=("$cache/large-$packets.pcap")
    [ "$scale" -gt 1 ] && captures+=("$cache/large-$((packets * scale)).pcap")
    for c in "${captures[@]}"; do
        n=${c##*large-}; n=${n%.pcap}
        log "generating $c (skipped when up to date)"
        python3 "$here/make-large.py" --out "$c" --packets "$n" --reuse >&2 || die "make-large.py failed"
    done
fi

count_packets() {
    capinfos -c -M "$1" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}'
}

# run_once LABEL PIN CMD...: one run; appends "wall_s cpu_s maxrss_kib" to $cache/LABEL.times.
run_once() {
    local label=$1 pin=$2 t0 t1 rc=0
    shift 2
    local err=$cache/$label.stderr res=$cache/$label.res
    t0=$(date +%s%N)
    /usr/bin/time -f '%U %S %M' -o "$res" taskset -c "$pin" "$@" </dev/null >/dev/null 2>"$err" || rc=$?
    t1=$(date +%s%N)
    if [ $rc != 0 ]; then
        echo "run.sh: error: exit $rc: taskset -c $pin $*" >&2
        tail -n 20 "$err" | sed 's/^/  | /' >&2
        exit 1
    fi
    tail -n 1 "$res" | awk -v w="$(( (t1 - t0) / 1000 ))" '{ printf "%.6f %.3f %d\n", w / 1e6, $1 + $2, $3 }' \
        >>"$cache/$label.times"
}

# bench LABEL N PIN CMD...: a warm-up run and N timed runs; sets med_s cpu_s rss_kib.
bench() {
    local label=$1 n=$2 pin=$3 i
    shift 3
    : >"$cache/$label.times"
    run_once "$label" "$pin" "$@"
    : >"$cache/$label.times"
    for ((i = 1; i <= n; i++)); do
        run_once "$label" "$pin" "$@"
    done
    read -r med_s cpu_s rss_kib < <(python3 - "$cache/$label.times" <<'EOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print(statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows),
      int(statistics.median(r[2] for r in rows)))
EOF
)
    log "$label: median $med_s s over $n runs"
}

thousands() { printf "%'d" "$1" 2>/dev/null || echo "$1"; }
rows=()
declare -A pps_of
all_cpus=0-$(($(nproc) - 1))
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

for c in "${captures[@]}"; do
    log "warming the page cache with $c"
    cat "$c" >/dev/null
    npk=$(count_packets "$c")
    [ -n "$npk" ] || die "capinfos could not count packets in $c"
    mb=$(awk -v b="$(stat -c %s "$c")" 'BEGIN { printf "%.0f", b / 1e6 }')
    name="$(basename "$c") ($mb MB)"
    n=$runs
    [ "$c" != "${captures[0]}" ] && n=$(( runs < 3 ? runs : 3 ))
    configs=("terminal 1" "json 1" "terminal $threads" "json $threads")
    if [ "$c" = "${captures[0]}" ] && [ $quick = 0 ]; then
        configs+=("markdown 1" "html 1" "extract 1")
    fi
    for cfg in "${configs[@]}"; do
        read -r fmt j <<<"$cfg"
        pin=0
        [ "$j" -gt 1 ] && pin=$all_cpus
        label=rs-$(basename "$c" .pcap)-$fmt-$j
        if [ "$fmt" = extract ]; then
            bench "$label" "$n" "$pin" "$bin" analyze "$c" -j "$j" --extract "$cache/extract.pcap"
        else
            bench "$label" "$n" "$pin" "$bin" analyze "$c" -j "$j" --format "$fmt"
        fi
        pps=$(awk -v p="$npk" -v s="$med_s" 'BEGIN { printf "%.0f", p / s }')
        pps_of["$c $fmt $j"]=$pps
        rows+=("| $name | resetscope $([ "$fmt" = extract ] && echo "--extract" || echo "--format $fmt") -j $j | $(printf '%.3f' "$med_s") | $(printf '%.2f' "$cpu_s") | $(thousands "$pps") | $((rss_kib / 1024)) |")
    done
    if [ $quick = 0 ] || [ "$c" = "${captures[0]}" ]; then
        if [ $quick = 0 ]; then
            bench "tshark-$(basename "$c" .pcap)" "$n" 0 tshark -r "$c" -q -z conv,tcp
            pps=$(awk -v p="$npk" -v s="$med_s" 'BEGIN { printf "%.0f", p / s }')
            pps_of["$c tshark"]=$pps
            rows+=("| $name | tshark -q -z conv,tcp | $(printf '%.3f' "$med_s") | $(printf '%.2f' "$cpu_s") | $(thousands "$pps") | $((rss_kib / 1024)) |")
        fi
        bench "tcpdump-$(basename "$c" .pcap)" "$n" 0 tcpdump -r "$c" -w /dev/null
        pps=$(awk -v p="$npk" -v s="$med_s" 'BEGIN { printf "%.0f", p / s }')
        pps_of["$c tcpdump"]=$pps
        rows+=("| $name | tcpdump -r F -w /dev/null | $(printf '%.3f' "$med_s") | $(printf '%.2f' "$cpu_s") | $(thousands "$pps") | $((rss_kib / 1024)) |")
    fi
done

ratio() { awk -v a="${pps_of[$1]:-0}" -v b="${pps_of[$2]:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "–" }'; }
base=${captures[0]}
{
    echo "### Results ($(date -u +%Y-%m-%d))"
    echo
    echo "| Capture | Command | Median wall (s) | CPU (s) | Packets/s | Peak RSS (MiB) |"
    echo "|---|---|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Ratios of packets per second on $(basename "$base"):"
    echo
    echo "- terminal report: -j $threads / -j 1 = $(ratio "$base terminal $threads" "$base terminal 1")×; JSON: $(ratio "$base json $threads" "$base json 1")×"
    if [ $quick = 0 ]; then
        echo "- -j 1 against tshark: terminal $(ratio "$base terminal 1" "$base tshark")×, JSON $(ratio "$base json 1" "$base tshark")×"
        echo "- -j 1 against the terminal report: JSON $(ratio "$base json 1" "$base terminal 1")×, Markdown $(ratio "$base markdown 1" "$base terminal 1")×, HTML $(ratio "$base html 1" "$base terminal 1")×, --extract $(ratio "$base extract 1" "$base terminal 1")×"
    fi
    echo "- tcpdump against the terminal report at -j 1: $(ratio "$base tcpdump" "$base terminal 1")×"
    if [ ${#captures[@]} -gt 1 ]; then
        big=${captures[1]}
        echo "- $(basename "$big") against $(basename "$base") (packets/s, 1 = linear): terminal -j 1 $(ratio "$big terminal 1" "$base terminal 1"), JSON -j 1 $(ratio "$big json 1" "$base json 1")"
    fi
    for c in "${captures[@]}"; do
        m=$c.meta.json
        [ -f "$m" ] && python3 - "$m" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"- {sys.argv[1].rsplit('/', 1)[-1][:-10]}: {m['packets']:,} packets, {m['bytes'] / 1e6:.0f} MB, "
      f"{m['instances']:,} replays of {len(m['inputs'])} real captures, ~{m['tcp_connections_approx']:,} TCP "
      f"connections ({m['packets'] / max(m['tcp_connections_approx'], 1):.0f} packets per connection), "
      f"span {m['approx_span_s']:.0f} s")
EOF
    done
    echo "- runs: $runs timed runs per row on the base capture, $(( runs < 3 ? runs : 3 )) on the larger, after one warm-up run; page cache warm; 1-thread rows and tshark/tcpdump pinned to CPU 0, -j $threads rows on CPUs $all_cpus"
    echo "- load average (1/5/15 min) at start: $load_start, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
    echo "- versions: $("$bin" --version | head -n 1) ($(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?')), $(tshark --version | head -n 1 | sed 's/ (Git.*//'), $(tcpdump --version 2>&1 | head -n 1)"
} | tee "$cache/results.md"
