#!/usr/bin/env bash
# The job server under load, driven by Stampede itself: VUS virtual users (closed model)
# for DURATION, each in turn submitting a small job, reading the first job's status and
# reading its events, against `stampede server` on an SQLite file and on PostgreSQL.
# Writes bench/results/server-<YYYYmmdd-HHMMSS>.md with requests/s, latency and errors.
#
# Environment (defaults): VUS=50 DURATION=60s BACKENDS="sqlite postgres" PROFILE=release
#   BIN (a binary to use instead of building one) SERVER_ARGS (more `stampede server` flags)
#   POSTGRES_URL=${STAMPEDE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
# Target: zero errors; requests/s and p99 are reported, with the server's own CPU time.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
VUS=${VUS:-50}
DURATION=${DURATION:-60s}
BACKENDS=${BACKENDS:-sqlite postgres}
POSTGRES_URL=${POSTGRES_URL:-${STAMPEDE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT="$RESULTS_DIR/server-$STAMP.md"
# shellcheck source=bench/lib/work.sh
source "$BENCH/lib/work.sh"

bench_build
mkdir -p "$RESULTS_DIR"

{
    echo "# Job server under load, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    echo "Machine: $(nproc) vCPU shared VM ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Client and server share the machine's 2 cores: the client is \`stampede run\` (one engine thread), the server \`stampede server\`."
    echo
    echo "Each of $VUS virtual users (closed model, $DURATION) calls in turn: \`POST /v1/jobs\` (a one-step echo job, which the"
    echo "server then runs), \`GET /v1/jobs/1\` (status rebuilt from events), \`GET /v1/jobs/1/events?limit=100\`."
    echo
    echo "| backend | requests | requests/s | p50 ms | p99 ms | max ms | failed | jobs submitted | server CPU s |"
    echo "|---|---|---|---|---|---|---|---|---|"
} > "$OUT"

for backend in $BACKENDS; do
    case $backend in
        sqlite) DB="sqlite://$WORK/server.db" ;;
        postgres)
            SCHEMA="stampede_server_bench_$STAMP"
            SCHEMA=${SCHEMA//-/_}
            psql "$POSTGRES_URL" -qc "CREATE SCHEMA $SCHEMA" >/dev/null
            DB="$POSTGRES_URL?options=-c%20search_path%3D$SCHEMA" ;;
        *) echo "unknown backend $backend" >&2; exit 2 ;;
    esac
    TOKEN=$("$BIN" server token create --name bench --database "$DB" 2>/dev/null)
    # shellcheck disable=SC2086 # SERVER_ARGS is a list of flags
    bench_start "server-$backend" "$BIN" server --addr 127.0.0.1:0 --database "$DB" --server-id bench ${SERVER_ARGS:-}
    SERVER_PID=$LAST_PID
    JOB='{"name":"tiny","tests":[{"name":"t","steps":[{"name":"s","echo":{"text":"hi"}}]}]}'
    curl -sf -H "Authorization: Token $TOKEN" --data-binary "$JOB" "$URL/v1/jobs" > /dev/null
    cat > "$WORK/load.yaml" <<YAML
name: server-under-load
tests:
  - name: api
    steps:
      - name: mixed
        load:
          vus: $VUS
          duration: $DURATION
          requests:
            - url: $URL/v1/jobs
              method: POST
              headers: { Authorization: "Token $TOKEN", Content-Type: application/json }
              body: '$JOB'
              status: [201]
            - url: $URL/v1/jobs/1
              headers: { Authorization: "Token $TOKEN" }
              status: [200]
            - url: $URL/v1/jobs/1/events?limit=100
              headers: { Authorization: "Token $TOKEN" }
              status: [200]
YAML
    "$BIN" run "$WORK/load.yaml" --no-progress --summary-json "$WORK/summary-$backend.json" > "$WORK/run-$backend.txt" 2>&1 || true
    CPU=$(awk '{print ($14+$15)/100}' "/proc/$SERVER_PID/stat")
    JOBS=$(curl -sf -H "Authorization: Token $TOKEN" "$URL/metrics" | awk '/^stampede_jobs\{/ {s+=$2} END {print s}')
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    python3 - "$WORK/summary-$backend.json" "$backend" "$CPU" "$JOBS" >> "$OUT" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
step = s["steps"][0]
r, l = step["requests"], step["latency_ms"]["response"]
print(f"| {sys.argv[2]} | {r['total']} | {step['rate']['achieved']:.0f} | {l['p50']:.2f} | {l['p99']:.2f} | {l['max']:.2f} | {r['failed']} | {sys.argv[4]} | {sys.argv[3]} |")
PY
    if [ "$backend" = postgres ]; then psql "$POSTGRES_URL" -qc "DROP SCHEMA $SCHEMA CASCADE" >/dev/null; fi
    cp "$WORK/run-$backend.txt" "$RESULTS_DIR/server-$STAMP-$backend.txt"
done

{
    echo
    echo "Failures by kind are in \`server-$STAMP-<backend>.txt\` (the run's own summary)."
    echo
    echo "## Command"
    echo
    echo '```'
    echo "VUS=$VUS DURATION=$DURATION BACKENDS=\"$BACKENDS\" SERVER_ARGS=\"${SERVER_ARGS:-}\" bench/server/run.sh"
    echo '```'
} >> "$OUT"
cat "$OUT"
