#!/usr/bin/env bash
# The scale step at scale: RUNNERS runners through coder's autostart test
# (examples/autostart-fast.yaml) against `stampede sut` on loopback, then the harness's
# overhead per runner: peak RSS and CPU time (user + sys, GNU time -v) of `stampede run`
# with RUNNERS runners minus a 1-runner baseline, divided by RUNNERS - 1. A second run
# ends the SUT's build stream while the runners wait for builds that take a minute: every
# run must be accounted for, failed with "update stream closed", promptly.
# Writes bench/results/scale-<YYYYmmdd-HHMMSS>.md.
#
# Environment (defaults): RUNNERS=1000 PROVISIONERS=100 BUILD_TIME=200ms DELAY=10s
# PROFILE=release (or debug: reuses a dev build, figures are then an upper bound)
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
RUNNERS=${RUNNERS:-1000}
PROVISIONERS=${PROVISIONERS:-100}
BUILD_TIME=${BUILD_TIME:-200ms}
DELAY=${DELAY:-10s}
PROFILE=${PROFILE:-release}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT="$RESULTS_DIR/scale-$STAMP.md"
# shellcheck source=bench/lib/work.sh
source "$BENCH/lib/work.sh"

bench_build
mkdir -p "$RESULTS_DIR"

# Starts a SUT with "$@" as workspace flags and sets SUT_URL.
start_sut() {
    local name=$1; shift
    bench_start "$name" "$BIN" sut --addr 127.0.0.1:0 "$@"
    SUT_URL=$URL
}

# The fast example for URL with N runners.
job() {
    sed -e "s#http://127.0.0.1:8080#$1#" -e "s/runners: 8/runners: $2/" \
        -e "s/delay: 3s/delay: $DELAY/" "$ROOT/examples/autostart-fast.yaml"
}

# Runs the job for N runners on a fresh SUT under GNU time; writes
# "pass fail elapsed_s rss_kib cpu_s exit" to $WORK/measure-N.txt.
measure() {
    local n=$1
    start_sut "sut-$n" --ws-provisioners "$PROVISIONERS" --ws-build-time "$BUILD_TIME"
    job "$SUT_URL" "$n" > "$WORK/job-$n.yaml"
    local start end code=0
    start=$(date +%s.%N)
    /usr/bin/time -v -o "$WORK/time-$n.txt" "$BIN" run "$WORK/job-$n.yaml" --no-progress \
        --summary-json "$WORK/s-$n.json" > "$WORK/run-$n.txt" 2>&1 || code=$?
    end=$(date +%s.%N)
    python3 - "$WORK/s-$n.json" "$WORK/time-$n.txt" "$start" "$end" "$code" <<'PY'
import json, re, sys
summary = json.load(open(sys.argv[1]))
events = summary["runs"][0]["tests"][0]["steps"][0]["targets"][0]["events"]
r = next(e["payload"] for e in events if e["name"] == "ScaleResults")
t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
cpu = sum(float(re.search(p + r": ([\d.]+)", t).group(1))
          for p in [r"User time \(seconds\)", r"System time \(seconds\)"])
print(r["successful_runs"], r["failed_runs"], "%.1f" % (float(sys.argv[4]) - float(sys.argv[3])),
      rss, "%.2f" % cpu, sys.argv[5])
PY
}

measure 1 > "$WORK/measure-1.txt"
measure "$RUNNERS" > "$WORK/measure-$RUNNERS.txt"
read -r p1 f1 e1 rss1 cpu1 x1 < "$WORK/measure-1.txt"
read -r pn fn en rssn cpun xn < "$WORK/measure-$RUNNERS.txt"
sed -n '/Scale Test Results/,/^  [✓✗]/p' "$WORK/run-$RUNNERS.txt" | sed '$d' > "$WORK/report.txt"

# Stream dropped mid-run: builds take a minute, so every runner is waiting when it ends.
start_sut drop --ws-provisioners "$PROVISIONERS" --ws-build-time 60s
url=$SUT_URL
job "$url" "$RUNNERS" > "$WORK/job-drop.yaml"
"$BIN" run "$WORK/job-drop.yaml" --no-progress --summary-json "$WORK/s-drop.json" \
    > "$WORK/run-drop.txt" 2>&1 &
DROP=$!
PIDS+=("$DROP")
sleep 5
closed_at=$(date +%s.%N)
curl -s -X POST "$url/ws/admin/close-streams" > "$WORK/closed.json"
code=0
wait "$DROP" || code=$?
done_at=$(date +%s.%N)
read -r dp df dclosed dtook < <(python3 - "$WORK/s-drop.json" "$WORK/closed.json" "$closed_at" "$done_at" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
events = summary["runs"][0]["tests"][0]["steps"][0]["targets"][0]["events"]
r = next(e["payload"] for e in events if e["name"] == "ScaleResults")
closed = sum(1 for run in r["runs"] if "update stream closed" in (run.get("error") or ""))
print(r["successful_runs"], r["failed_runs"], closed, "%.1f" % (float(sys.argv[4]) - float(sys.argv[3])))
PY
)

per_rss=$(( (rssn - rss1) / (RUNNERS - 1) ))
# Waves of P every B: the k-th of N builds queued at once ends (floor(k / P) + 1) * B after
# the trigger; coder's percentile is sorted[floor((N - 1) * p)].
waves=$(python3 - "$RUNNERS" "$PROVISIONERS" "$BUILD_TIME" <<'PY'
import sys
n, pool, b = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
b_ms = float(b[:-2]) if b.endswith("ms") else float(b[:-1]) * 1000
print(", ".join("p%d %.3fs" % (p, ((int((n - 1) * p / 100) // pool) + 1) * b_ms / 1000)
                for p in (50, 95, 99)))
PY
)
per_cpu=$(python3 -c "print('%.2f' % (($cpun - $cpu1) * 1000 / ($RUNNERS - 1)))")
{
    echo "# Scale step: $RUNNERS runners through the fast autostart test, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    echo "Machine: $(nproc) vCPU shared VM, load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Build: $PROFILE. SUT and \`stampede run\` share the machine, loopback only."
    echo "SUT: --ws-provisioners $PROVISIONERS --ws-build-time $BUILD_TIME; autostart delay $DELAY."
    echo
    echo "| runners | pass | fail | pass + fail | elapsed s | peak RSS KiB | CPU s (user+sys) | exit |"
    echo "|---|---|---|---|---|---|---|---|"
    echo "| 1 | $p1 | $f1 | $((p1 + f1)) | $e1 | $rss1 | $cpu1 | $x1 |"
    echo "| $RUNNERS | $pn | $fn | $((pn + fn)) | $en | $rssn | $cpun | $xn |"
    echo
    echo "Harness overhead per runner (the $RUNNERS-runner run minus the 1-runner run, / $((RUNNERS - 1))):"
    echo "**$per_rss KiB** of peak RSS and **$per_cpu ms** of CPU time per runner (each runner"
    echo "makes 6 HTTP requests on fresh connections, reads 9 updates and holds a barrier place)."
    echo
    echo "Stream dropped mid-run ($RUNNERS runners, builds of 60 s, \`POST /ws/admin/close-streams\`"
    echo "5 s after the start): pass $dp, fail $df, pass + fail = $((dp + df)), failed with"
    echo "\"update stream closed\": $dclosed; the process exited ${dtook} s after the stream closed (exit $code)."
    echo
    echo "## Report of the $RUNNERS-runner run"
    echo
    echo "Trigger to completion by the queueing arithmetic (waves of $PROVISIONERS every $BUILD_TIME): $waves."
    echo
    echo '```'
    cat "$WORK/report.txt"
    echo '```'
    echo
    echo "## Command"
    echo
    echo '```'
    echo "RUNNERS=$RUNNERS PROVISIONERS=$PROVISIONERS BUILD_TIME=$BUILD_TIME DELAY=$DELAY PROFILE=$PROFILE bench/scale/run.sh"
    echo '```'
} > "$OUT"
cat "$OUT"
