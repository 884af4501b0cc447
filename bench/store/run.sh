#!/usr/bin/env bash
# Event-store benchmarks, for an SQLite file and for PostgreSQL:
#   store   events appended per second by one appender in batches, and the time to read
#           back every event of a job; writes bench/results/store-<YYYYmmdd-HHMMSS>.md
#   status  the time to read a job of a million events and rebuild its status from them;
#           writes bench/results/status-<YYYYmmdd-HHMMSS>.md
# See `bench/store/run.sh -h`.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$BENCH/.." && pwd)

usage() {
    cat <<EOF
usage: bench/store/run.sh [-h] [store|status]

store (the default) runs crates/stampede-store/examples/store_bench (release) against:
  sqlite    a fresh file in a temporary directory (WAL, synchronous=FULL)
  postgres  a fresh schema in \$POSTGRES_URL, dropped afterwards
Each backend: RUNS runs of (create a job, append EVENTS events in batches of BATCH, read
them all back with one query); medians over the runs. Also single-event appends
(SINGLE_EVENTS events, batch 1) to show what one commit costs.

status runs crates/stampede-job/examples/status_bench (release) against the same two
backends: one job of EVENTS events as a job runner writes them (1,000 targets through 4
steps, printing lines; batches of BATCH), then RUNS times: read the job's events with
one query and rebuild its status (stampede_job::status::rebuild); medians over the runs.

Before each backend it waits (up to IDLE_TIMEOUT s) until other processes use less than
IDLE_THRESHOLD cores, and records how busy the machine was.

Environment (defaults):
  EVENTS=1000000  BATCH=1000  RUNS=3  SINGLE_EVENTS=2000
  IDLE_THRESHOLD=0.25  IDLE_TIMEOUT=300
  BACKENDS="sqlite postgres"
  POSTGRES_URL=\${STAMPEDE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
  RESULTS_DIR=bench/results
Targets: >= 50,000 events/s appended on each backend; 1,000,000 events read in < 2 s;
the status of a job of 1,000,000 events read and rebuilt in < 2 s (SQLite).
EOF
}
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then usage; exit 0; fi

SUITE=${1:-store}
case $SUITE in
    store | status) ;;
    *) echo "unknown suite '$SUITE'; see bench/store/run.sh -h" >&2; exit 2 ;;
esac

EVENTS=${EVENTS:-1000000}
BATCH=${BATCH:-1000}
RUNS=${RUNS:-3}
SINGLE_EVENTS=${SINGLE_EVENTS:-2000}
BACKENDS=${BACKENDS:-sqlite postgres}
POSTGRES_URL=${POSTGRES_URL:-${STAMPEDE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
IDLE_THRESHOLD=${IDLE_THRESHOLD:-0.25}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-300}

STARTED=$(date '+%Y-%m-%d %H:%M:%S %Z')
STAMP=$(date +%Y%m%d-%H%M%S)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
OUT=$RESULTS_DIR/$SUITE-$STAMP.md
TMP=$(mktemp -d)
SCHEMA=stampede_bench_${STAMP//-/_}
SCHEMA_CREATED=
cleanup() {
    rm -rf "$TMP"
    if [ -n "$SCHEMA_CREATED" ]; then
        psql "$POSTGRES_URL" -qc "DROP SCHEMA $SCHEMA CASCADE" >/dev/null || true
    fi
}
trap cleanup EXIT

cd "$ROOT"
if [ "$SUITE" = store ]; then
    cargo build --release -p stampede-store --example store_bench
else
    cargo build --release -p stampede-job --example status_bench
fi

# Cores busy over the next 2 s, from /proc/stat.
busy_cores() {
    local a b
    a=$(head -1 /proc/stat)
    sleep 2
    b=$(head -1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x); split(b, y); total = 0
        for (i = 2; i <= n; i++) total += y[i] - x[i]
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%.2f", (total - idle) / total * '"$(nproc)"'
    }'
}

# Waits for an idle machine; notes how busy it was (and whether it never got idle).
NOTES=$TMP/notes.txt
wait_idle() {
    local waited=0 busy
    busy=$(busy_cores)
    while awk -v b="$busy" -v t="$IDLE_THRESHOLD" 'BEGIN { exit !(b > t) }'; do
        if [ "$waited" -ge "$IDLE_TIMEOUT" ]; then
            echo "- $1: the machine stayed busy (${busy} cores used by others after ${waited} s); figures are noisy" >>"$NOTES"
            return
        fi
        sleep 3
        waited=$((waited + 5))
        busy=$(busy_cores)
    done
    echo "- $1: ${busy} cores busy before the run (waited ${waited} s)" >>"$NOTES"
}

# Creates what a backend needs before its URL can be used.
prepare() {
    if [ "$1" = postgres ] && [ -z "$SCHEMA_CREATED" ]; then
        psql "$POSTGRES_URL" -qc "CREATE SCHEMA $SCHEMA" >/dev/null
        SCHEMA_CREATED=1
    fi
}

# The URL for backend $1, store name $2; for PostgreSQL the fresh schema is the search path.
url_for() {
    case $1 in
        sqlite) echo "sqlite://$TMP/$2.db" ;;
        postgres)
            local sep='?'
            case $POSTGRES_URL in *\?*) sep='&' ;; esac
            echo "$POSTGRES_URL${sep}options=-c%20search_path%3D$SCHEMA"
            ;;
        *) echo "unknown backend $1" >&2; exit 2 ;;
    esac
}

# Runs store_bench and records the command and its JSON lines.
COMMANDS=$TMP/commands.txt
LINES=$TMP/lines.jsonl
bench() {
    local url=$1; shift
    # Shown without the temporary directory's name and with the password hidden.
    local shown=${url//$TMP/\$TMP}
    shown=$(printf '%s' "$shown" | sed -E 's#(://[^:/@]+:)[^@/]+@#\1***@#')
    echo "cargo run --release -p stampede-store --example store_bench -- --url '$shown' $*" >>"$COMMANDS"
    cargo run -q --release -p stampede-store --example store_bench -- --url "$url" "$@" | tee -a "$LINES"
}

# What psql itself needs to fetch the same rows (job 1 of the main run): the server's side
# of the read, for comparison.
PSQL_BASELINE=
psql_baseline() {
    local query="SELECT seq, run, test, attempt, step, target, name, payload, emitted_at_us FROM $SCHEMA.events WHERE job_id = 1 ORDER BY seq"
    local times=() t
    for _ in 1 2 3; do
        t=$( { TIMEFORMAT=%R; time psql "$POSTGRES_URL" -Atc "$query" >/dev/null; } 2>&1 )
        times+=("$t")
    done
    PSQL_BASELINE=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    echo "psql -Atc \"$query\" >/dev/null   # 3 times: ${times[*]} s" >>"$COMMANDS"
}

# The machine, the software and how busy the machine was.
machine() {
    echo "Machine: $(nproc) vCPU shared VM ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
    echo "$(free -g | awk '/Mem:/ {print $2}') GB RAM, load average at the start: $LOAD_BEFORE."
    echo "rustc: $(rustc --version). SQLite: bundled with sqlx (libsqlite3-sys), WAL, synchronous=FULL."
    echo "PostgreSQL: $(psql "$POSTGRES_URL" -qAtc 'show server_version' 2>/dev/null || echo 'n/a'),"
    echo "synchronous_commit=$(psql "$POSTGRES_URL" -qAtc 'show synchronous_commit' 2>/dev/null || echo 'n/a'), on 127.0.0.1."
    echo
    echo "The VM is shared with other sessions; how busy it was before each backend:"
    echo
    cat "$NOTES"
    echo
}

field() { # field NAME LINE: a number from one JSON line
    printf '%s' "$2" | sed -E "s/.*\"$1\":([0-9.]+).*/\1/"
}

# The status suite: status_bench per backend, then its report.
if [ "$SUITE" = status ]; then
    for backend in $BACKENDS; do
        wait_idle "$backend"
        prepare "$backend"
        url=$(url_for "$backend" status)
        case $backend in
            sqlite) where=(--sqlite "${url#sqlite://}") ;;
            *) where=(--postgres "$url") ;;
        esac
        # Shown without the temporary directory's name and with the password hidden.
        shown=${where[1]//$TMP/\$TMP}
        shown=$(printf '%s' "$shown" | sed -E 's#(://[^:/@]+:)[^@/]+@#\1***@#')
        echo "cargo run --release -p stampede-job --example status_bench -- ${where[0]} '$shown' --events $EVENTS --batch $BATCH --runs $RUNS" >>"$COMMANDS"
        cargo run -q --release -p stampede-job --example status_bench -- "${where[@]}" \
            --events "$EVENTS" --batch "$BATCH" --runs "$RUNS" | tee -a "$LINES"
    done
    mkdir -p "$RESULTS_DIR"
    {
        echo "# Status rebuild benchmark, $STARTED"
        echo
        machine
        echo "One job of $EVENTS events as a job runner writes them: a failed first attempt, then"
        echo "1,000 targets through 4 steps (TargetIn, CmdStdout lines with ~50-byte JSON payloads,"
        echo "TargetOut, or TargetErr for about 1 % per step), appended in batches of $BATCH. Then"
        echo "$RUNS times: read the job's events with one query (\`EventStore::events\`) and rebuild"
        echo "its status (\`stampede_job::status::rebuild\`); medians below. Dropping the status"
        echo "afterwards is timed apart (\`drop_seconds\`). Target: read + rebuild of 1,000,000"
        echo "events in < 2 s (SQLite)."
        echo
        echo '| backend | events | read, s | rebuild, s | read + rebuild, s |'
        echo '|---|---|---|---|---|'
        for backend in $BACKENDS; do
            line=$(grep "\"backend\":\"$backend\"" "$LINES" | grep '"op":"summary"' | tail -1) || true
            [ -n "$line" ] || continue
            printf '| %s | %s | %s | %s | %s |\n' "$backend" "$(field events "$line")" \
                "$(field read_seconds_median "$line")" "$(field rebuild_seconds_median "$line")" \
                "$(field total_seconds_median "$line")"
        done
        echo
        echo "Medians of $RUNS runs."
        echo
        echo '## Commands'
        echo
        echo '```'
        echo "bench/store/run.sh status   # EVENTS=$EVENTS BATCH=$BATCH RUNS=$RUNS"
        cat "$COMMANDS"
        echo '```'
        echo
        echo '## Every line status_bench printed'
        echo
        echo '```'
        cat "$LINES"
        echo '```'
    } >"$OUT"
    echo "wrote $OUT"
    exit 0
fi

for backend in $BACKENDS; do
    wait_idle "$backend"
    prepare "$backend"
    bench "$(url_for "$backend" main)" --events "$EVENTS" --batch "$BATCH" --runs "$RUNS"
    if [ "$backend" = postgres ]; then psql_baseline; fi
    bench "$(url_for "$backend" single)" --events "$SINGLE_EVENTS" --batch 1 --runs 1
done

summary_row() { # backend events batch
    local line
    line=$(grep "\"backend\":\"$1\"" "$LINES" | grep '"op":"summary"' | grep "\"events\":$2,\"batch\":$3," | tail -1)
    [ -n "$line" ] || return 0
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" \
        "$(field append_events_per_s_median "$line")" "$(field read_seconds_median "$line")"
}

mkdir -p "$RESULTS_DIR"
{
    echo "# Event store benchmark, $STARTED"
    echo
    machine
    echo "One appender writes $EVENTS events to one job in batches of $BATCH (one transaction per"
    echo "batch), then the job's events are read back with one query; $RUNS runs, medians below."
    echo "Event shape: run, test, step, target, name and a ~30-byte JSON payload."
    echo "Targets: >= 50,000 events/s appended; $EVENTS events read in < 2 s."
    echo
    echo '| backend | events | batch | append events/s (median) | read all, s (median) |'
    echo '|---|---|---|---|---|'
    for backend in $BACKENDS; do
        summary_row "$backend" "$EVENTS" "$BATCH"
        summary_row "$backend" "$SINGLE_EVENTS" 1
    done
    if [ -n "$PSQL_BASELINE" ]; then
        echo
        echo "For comparison, psql fetching the same $EVENTS rows of one job to /dev/null: $PSQL_BASELINE s (median of 3)."
    fi
    echo
    echo '## Commands'
    echo
    echo '```'
    echo "bench/store/run.sh   # EVENTS=$EVENTS BATCH=$BATCH RUNS=$RUNS SINGLE_EVENTS=$SINGLE_EVENTS"
    cat "$COMMANDS"
    echo '```'
    echo
    echo '## Every line store_bench printed'
    echo
    echo '```'
    cat "$LINES"
    echo '```'
} >"$OUT"
echo "wrote $OUT"
