#!/usr/bin/env bash
# What streaming to a server costs a local run: the same open-model job (RATE/s for
# DURATION against `stampede sut`) with and without `--out cloud`, REPS interleaved pairs,
# against `stampede server` on an SQLite file. Reports achieved rate, p99 and dropped ticks
# per run, and checks that the server's merged counts and latencies equal the local summary.
# Writes bench/results/out-cloud-<YYYYmmdd-HHMMSS>.md.
#
# Environment (defaults): RATE=5000 DURATION=10s REPS=3 PROFILE=release
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
RATE=${RATE:-5000}
DURATION=${DURATION:-10s}
REPS=${REPS:-3}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT="$RESULTS_DIR/out-cloud-$STAMP.md"
# shellcheck source=bench/lib/work.sh
source "$BENCH/lib/work.sh"

bench_build
mkdir -p "$RESULTS_DIR"

bench_start sut "$BIN" sut --addr 127.0.0.1:0
SUT=$URL
DB="sqlite://$WORK/server.db"
TOKEN=$("$BIN" server token create --name bench --database "$DB" 2>/dev/null)
bench_start server "$BIN" server --addr 127.0.0.1:0 --database "$DB" --server-id bench
SERVER=$URL
cat > "$WORK/job.yaml" <<JOB
name: out-cloud-bench
tests:
  - name: t
    steps:
      - name: load
        load:
          url: $SUT/
          rate: $RATE
          duration: $DURATION
JOB

{
    echo "# \`run --out cloud\` against \`run\`, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    echo "Machine: $(nproc) vCPU shared VM, load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "SUT, server and client share the machine. Job: open model, $RATE/s for $DURATION, one target."
    echo
    echo "| rep | output | achieved/s | p99 ms | dropped | snapshots | server = local |"
    echo "|---|---|---|---|---|---|---|"
} > "$OUT"

ref=0
for rep in $(seq "$REPS"); do
    for mode in plain cloud; do
        args=(run --no-progress --summary-json "$WORK/$mode.json")
        [ "$mode" = cloud ] && args+=(--out cloud --server "$SERVER" --token "$TOKEN")
        "$BIN" "${args[@]}" "$WORK/job.yaml" > /dev/null 2> "$WORK/$mode.log"
        snapshots=- same=-
        if [ "$mode" = cloud ]; then
            ref=$((ref + 1))
            curl -sf -H "Authorization: Token $TOKEN" "$SERVER/v1/tests/$ref" > "$WORK/server.json"
            read -r snapshots same < <(python3 - "$WORK/server.json" "$WORK/cloud.json" <<'PY'
import json, sys
server, local = (json.load(open(p)) for p in sys.argv[1:3])
merged, step = server["steps"][0]["summary"], local["steps"][0]
same = all(merged[k] == step[k] for k in ("requests", "latency_ms", "failures", "dropped"))
print(server["snapshots"], "yes" if same else "NO")
PY
)
        fi
        python3 - "$WORK/$mode.json" "$rep" "$mode" "$snapshots" "$same" >> "$OUT" <<'PY'
import json, sys
path, rep, mode, snapshots, same = sys.argv[1:6]
s = json.load(open(path))["steps"][0]
print(f"| {rep} | {mode} | {s['rate']['achieved']:.0f} | {s['latency_ms']['response']['p99']:.3f} | {s['requests']['dropped']} | {snapshots} | {same} |")
PY
    done
done

{
    echo
    echo "## Command"
    echo
    echo '```'
    echo "RATE=$RATE DURATION=$DURATION REPS=$REPS bench/out-cloud/run.sh"
    echo '```'
} >> "$OUT"
cat "$OUT"
