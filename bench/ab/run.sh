#!/usr/bin/env bash
# A/B two stampede binaries on the same loads, interleaved, the peer in the same run: did a
# change (a refactor, a new dependency) make the engine slower? `stampede sut` runs pinned
# to CPU 0 (from binary A), each `quick` pinned to CPU 1; repetition i of every load runs A
# then B, so a noisy phase of the host hits both. Medians go to bench/results/ab-*.md.
#
#   A=/path/to/old/stampede B=target/release/stampede REPS=5 DURATION=10s bench/ab/run.sh
#
# Loads: closed model (50 VUs on 50 connections, 1 engine thread) on `/`, and the open
# model at $RATE/s (default 5000) on `/`. Figures: achieved rate, p99 of the response
# time, dropped calls, and the tool's CPU seconds (user + sys) per 100,000 requests.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
source "$BENCH/lib/work.sh"

A=${A:?set A to the baseline binary}
B=${B:-$ROOT/target/release/stampede}
REPS=${REPS:-5}
DURATION=${DURATION:-10s}
RATE=${RATE:-5000}
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/results/ab-$STAMP.md
for bin in "$A" "$B"; do [[ -x $bin ]] || { echo "no binary at $bin" >&2; exit 1; }; done

bench_start sut taskset -c 0 "$A" sut --addr 127.0.0.1:0
RAW=$WORK/raw.tsv
: >"$RAW"
# One run: tool, load, rep, then `quick` arguments. Appends rate, p99, dropped, CPU s, requests.
one() {
    local tool=$1 load=$2 rep=$3; shift 3
    local bin=$A; [[ $tool == B ]] && bin=$B
    local json=$WORK/$tool-$load-$rep.json
    /usr/bin/time -f '%U %S' -o "$WORK/time" taskset -c 1 "$bin" quick "$URL/" "$@" \
        --duration "$DURATION" --no-progress --summary-json "$json" >/dev/null
    python3 - "$json" "$WORK/time" "$tool" "$load" "$rep" >>"$RAW" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
user, system = map(float, open(sys.argv[2]).read().split()[-2:])
n = s["requests"]["total"]
print("\t".join(map(str, [sys.argv[3], sys.argv[4], sys.argv[5], s["rate"]["achieved"],
    s["latency_ms"]["response"]["p99"], s["requests"]["dropped"], user + system, n])))
PY
}
for rep in $(seq "$REPS"); do
    for tool in A B; do
        one "$tool" closed "$rep" --vus 50 --connections 50 --threads 1
        one "$tool" open "$rep" --rate "$RATE" --max-in-flight 1000 --threads 1
    done
done
python3 - "$RAW" "$A" "$B" "$REPS" "$DURATION" "$RATE" >"$OUT" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
a, b, reps, duration, rate = sys.argv[2:7]
print(f"# A/B: {a} (A) against {b} (B)\n")
print(f"`A={a} B={b} REPS={reps} DURATION={duration} RATE={rate} bench/ab/run.sh`, "
      "sut on CPU 0, each quick on CPU 1, interleaved; medians over the repetitions.\n")
print("| load | tool | achieved /s | p99 ms | dropped | CPU s per 100k req | runs |")
print("|---|---|---|---|---|---|---|")
for load in ("closed", "open"):
    for tool in ("A", "B"):
        r = [x for x in rows if x[0] == tool and x[1] == load]
        med = lambda i: statistics.median(float(x[i]) for x in r)
        cpu = statistics.median(float(x[6]) / float(x[7]) * 1e5 for x in r)
        print(f"| {load} | {tool} | {med(3):,.0f} | {med(4):.3f} | {med(5):.0f} | {cpu:.3f} | {len(r)} |")
    ra = statistics.median(float(x[3]) for x in rows if x[0] == "A" and x[1] == load)
    rb = statistics.median(float(x[3]) for x in rows if x[0] == "B" and x[1] == load)
    print(f"| {load} | B/A | {rb / ra:.3f} | | | | |")
print("\nRaw (tool, load, rep, achieved, p99 ms, dropped, CPU s, requests):\n")
print("```")
print(open(sys.argv[1]).read().rstrip())
print("```")
PY
cat "$OUT"
