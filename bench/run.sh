#!/usr/bin/env bash
# Benchmark suites for stampede against peers (wrk, oha). See bench/README.md.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
RUN=$BENCH/run
HARNESS=$BENCH/lib/harness.py

usage() {
    cat <<EOF
usage: bench/run.sh [-h] SUITE...

Suites (each writes bench/results/<suite>-<YYYYmmdd-HHMMSS>/):
  throughput  closed model, 50 connections, against nginx (pinned to CPU 0):
              wrk -t1, oha, stampede quick --vus/--connections --threads 1
  rate        open model against 'stampede sut': stampede --rate R and oha -q R
              --latency-correction, for R in \$RATES; accuracy, lag p99, dropped
  co          coordinated omission: sut stalls 1 s every 5 s; stampede --rate 200,
              oha -q 200 --latency-correction, oha closed, wrk closed (truth: p99 ~ 950 ms)
  memory      10,000 VUs/connections on sut /delay/1000 for 20 s: peak RSS;
              with SOAK=600 also a 600 s --rate 20000 soak sampling RSS every 10 s
  startup     ms from launching the tool to the first request line a local server sees
  all         all of the above, in that order

Every tool runs pinned to CPU 1 under '/usr/bin/time -v'; repetitions are interleaved
(rep 1 of every tool, then rep 2, ...); each run first waits for an idle machine.

Environment (defaults):
  TOOLS="wrk oha stampede"  tools to run (peers missing from TOOLS are skipped)
  REPS=5                    repetitions (throughput, rate, co)
  DURATION=10s              run length (throughput, rate)
  CONNECTIONS=50            connections / VUs (throughput, rate, co)
  RATES="5000 50000"        target rates (rate suite)
  CO_RATE=200 CO_DURATION=20s (co; keep the duration a multiple of 5 s)
  MEMORY_VUS=10000 MEMORY_DURATION=20s MEMORY_PATH=/delay/1000 MEMORY_REPS=3
  SOAK=                     seconds of soak in the memory suite (e.g. 600); empty = none
  SOAK_RATE=20000 SOAK_INTERVAL=10
  STARTUP_RUNS=10
  ATTEMPTS=2                tries per run while it is noisy (all are recorded)
  IDLE_THRESHOLD=0.25       cores others may use before/while a run counts as clean
  IDLE_TIMEOUT=60           seconds to wait for an idle machine before a run
  NGINX_PORT=18080
  STAMPEDE_BIN=target/release/stampede   SKIP_BUILD=0 (1: use the existing binary)
  RESULTS_DIR=bench/results

Examples:
  bench/run.sh throughput
  TOOLS="wrk oha" REPS=1 DURATION=3s bench/run.sh throughput
  SOAK=600 bench/run.sh memory
EOF
}

SUITES=()
for arg in "$@"; do
    case $arg in
        -h | --help) usage; exit 0 ;;
        all) SUITES+=(throughput rate co memory startup) ;;
        throughput | rate | co | memory | startup) SUITES+=("$arg") ;;
        *) echo "unknown suite: $arg" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ ${#SUITES[@]} -eq 0 ]]; then usage >&2; exit 2; fi

TOOLS=${TOOLS:-wrk oha stampede}
REPS=${REPS:-5}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
RATES=${RATES:-5000 50000}
CO_RATE=${CO_RATE:-200}
CO_DURATION=${CO_DURATION:-20s}
MEMORY_VUS=${MEMORY_VUS:-10000}
MEMORY_DURATION=${MEMORY_DURATION:-20s}
MEMORY_PATH=${MEMORY_PATH:-/delay/1000}
MEMORY_REPS=${MEMORY_REPS:-3}
SOAK=${SOAK:-}
SOAK_RATE=${SOAK_RATE:-20000}
SOAK_INTERVAL=${SOAK_INTERVAL:-10}
STARTUP_RUNS=${STARTUP_RUNS:-10}
NGINX_PORT=${NGINX_PORT:-18080}
STAMPEDE_BIN=${STAMPEDE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/stampede}
SKIP_BUILD=${SKIP_BUILD:-0}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
export ATTEMPTS=${ATTEMPTS:-2} IDLE_THRESHOLD=${IDLE_THRESHOLD:-0.25} IDLE_TIMEOUT=${IDLE_TIMEOUT:-60}
SERVER_CPU=0
CLIENT_CPU=1

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

# "10s" / "2m" / "1h" / "10" -> whole seconds
dur_s() {
    local d=$1
    case $d in
        *ms) echo 1 ;;
        *s) echo "${d%s}" ;;
        *m) echo $((${d%m} * 60)) ;;
        *h) echo $((${d%h} * 3600)) ;;
        *) echo "$d" ;;
    esac
}

# ---------------------------------------------------------------- checks
[[ $(nproc) -ge 2 ]] || die "needs 2 CPUs (server on CPU $SERVER_CPU, tool on CPU $CLIENT_CPU)"
for t in taskset python3; do command -v "$t" >/dev/null || die "$t not found"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) not found: run bench/install.sh"
for t in $TOOLS; do
    case $t in
        wrk | oha) command -v "$t" >/dev/null || die "$t not found: run bench/install.sh" ;;
        stampede) ;;
        *) die "unknown tool in TOOLS: $t (known: wrk oha stampede)" ;;
    esac
done

needs_sut=0
needs_nginx=0
for s in "${SUITES[@]}"; do
    case $s in
        rate | co | memory) needs_sut=1 ;;
        throughput) needs_nginx=1 ;;
    esac
done
if [[ $needs_nginx -eq 1 ]]; then command -v nginx >/dev/null || die "nginx not found: run bench/install.sh"; fi

# Many connections (memory suite): raise the open-file limit for us and our children.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

# ---------------------------------------------------------------- build
if has_tool stampede || [[ $needs_sut -eq 1 ]]; then
    if [[ $SKIP_BUILD != 1 ]]; then
        log "cargo build --release -p stampede"
        (cd "$ROOT" && cargo build --release -p stampede)
    fi
    [[ -x $STAMPEDE_BIN ]] || die "stampede binary not found at $STAMPEDE_BIN"
fi

# ---------------------------------------------------------------- servers
NGINX_PID=""
SUT_PID=""
SUT_URL=""
SUT_T0=""
HARNESS_PID=""

stop_pid() { # pid name
    local pid=$1 i
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    log "stopped $2 (pid $pid)"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $HARNESS_PID ]]; then stop_pid "$HARNESS_PID" harness; fi
    stop_pid "$NGINX_PID" nginx
    stop_pid "$SUT_PID" "stampede sut"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_nginx() {
    local dir=$RUN/nginx i
    port_open "$NGINX_PORT" && die "127.0.0.1:$NGINX_PORT is already in use (NGINX_PORT=... to change)"
    mkdir -p "$dir"
    sed "s/127\.0\.0\.1:18080/127.0.0.1:$NGINX_PORT/" "$BENCH/nginx.conf" >"$dir/nginx.conf"
    taskset -c "$SERVER_CPU" nginx -p "$dir/" -c "$dir/nginx.conf" -e error.log &
    NGINX_PID=$!
    for ((i = 0; i < 100; i++)); do
        port_open "$NGINX_PORT" && break
        kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited; see $dir/error.log"
        sleep 0.05
    done
    port_open "$NGINX_PORT" || die "nginx did not listen on 127.0.0.1:$NGINX_PORT"
    log "nginx pid $NGINX_PID on 127.0.0.1:$NGINX_PORT, CPU $SERVER_CPU ($(nginx -v 2>&1))"
}

stop_nginx() { stop_pid "$NGINX_PID" nginx; NGINX_PID=""; }

# nginx master + worker pids, comma-separated
nginx_pids() {
    local kids
    kids=$(cat /proc/"$NGINX_PID"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . | paste -sd, || true)
    echo "$NGINX_PID${kids:+,$kids}"
}

start_sut() { # extra sut args...
    local out=$RUN/sut.out i line
    mkdir -p "$RUN"
    : >"$out"
    SUT_T0=$(date +%s.%N)
    taskset -c "$SERVER_CPU" "$STAMPEDE_BIN" sut --addr 127.0.0.1:0 "$@" >"$out" 2>"$RUN/sut.err" &
    SUT_PID=$!
    line=""
    for ((i = 0; i < 200; i++)); do
        line=$(head -n1 "$out")
        if [[ -n $line ]]; then break; fi
        kill -0 "$SUT_PID" 2>/dev/null || die "stampede sut exited: $(cat "$RUN/sut.err")"
        sleep 0.05
    done
    [[ $line =~ listening\ on\ http://127\.0\.0\.1:([0-9]+) ]] ||
        die "unexpected first line from stampede sut: '$line' (need 'listening on http://127.0.0.1:PORT')"
    SUT_URL="http://127.0.0.1:${BASH_REMATCH[1]}"
    log "stampede sut pid $SUT_PID at $SUT_URL, CPU $SERVER_CPU (args: ${*:-none})"
}

stop_sut() { stop_pid "$SUT_PID" "stampede sut"; SUT_PID=""; SUT_URL=""; }

# ---------------------------------------------------------------- runs
OUT=""

new_results_dir() { # suite
    OUT=$RESULTS_DIR/$1-$(date +%Y%m%d-%H%M%S)
    mkdir -p "$OUT/raw"
    {
        echo "{"
        echo "  \"suite\": \"$1\","
        echo "  \"date\": \"$(date -Iseconds)\","
        echo "  \"host_kernel\": \"$(uname -r)\","
        echo "  \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\","
        echo "  \"git_rev\": \"$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)\","
        echo "  \"tools\": \"$TOOLS\","
        echo "  \"reps\": $REPS, \"duration\": \"$DURATION\", \"connections\": $CONNECTIONS,"
        echo "  \"wrk\": \"$(wrk -v 2>&1 | head -n1 | awk '{print $2}' || true)\","
        echo "  \"oha\": \"$(oha --version 2>/dev/null | head -n1 || true)\","
        echo "  \"nginx\": \"$(nginx -v 2>&1 | sed 's/.*: //' || true)\","
        echo "  \"stampede\": \"$("$STAMPEDE_BIN" --version 2>/dev/null | head -n1 || true)\","
        echo "  \"attempts\": $ATTEMPTS, \"idle_threshold\": $IDLE_THRESHOLD, \"idle_timeout\": $IDLE_TIMEOUT"
        echo "}"
    } >"$OUT/meta.json"
    log "results -> $OUT"
}

# measure SUITE VARIANT TOOL REP PARSER [harness options...] -- CMD...
measure() {
    local suite=$1 variant=$2 tool=$3 rep=$4 parser=$5
    shift 5
    python3 "$HARNESS" run --out "$OUT" --suite "$suite" --variant "$variant" --tool "$tool" \
        --rep "$rep" --parser "$parser" --cpu "$CLIENT_CPU" "$@" &
    HARNESS_PID=$!
    wait "$HARNESS_PID" || log "harness failed for $suite/$variant/$tool rep $rep"
    HARNESS_PID=""
}

# order of the tools in repetition $1: rotated so no tool always runs first
rotated_tools() { # rep tool...
    local rep=$1 n i
    shift
    local list=("$@")
    n=${#list[@]}
    for ((i = 0; i < n; i++)); do echo "${list[$(((i + rep - 1) % n))]}"; done
}

selected() { local t; for t in "$@"; do if has_tool "$t"; then echo "$t"; fi; done; }

summarize() { python3 "$BENCH/summarize.py" "$OUT" || log "summarize failed"; }

# ---------------------------------------------------------------- suites
suite_throughput() {
    new_results_dir throughput
    start_nginx
    local url="http://127.0.0.1:$NGINX_PORT/" status="http://127.0.0.1:$NGINX_PORT/nginx_status"
    local secs timeout rep tool c=$CONNECTIONS
    secs=$(dur_s "$DURATION")
    timeout=$((secs * 3 + 60))
    mapfile -t tools < <(selected wrk oha stampede)
    for ((rep = 1; rep <= REPS; rep++)); do
        while read -r tool; do
            local common=(--server-pids "$(nginx_pids)" --status-url "$status" --timeout "$timeout")
            case $tool in
                wrk) measure throughput "" wrk "$rep" wrk "${common[@]}" -- \
                    wrk -t1 -c"$c" -d"$DURATION" --latency -s "$BENCH/wrk/report.lua" "$url" ;;
                oha) measure throughput "" oha "$rep" oha "${common[@]}" -- \
                    oha -z "$DURATION" -c "$c" --no-tui --output-format json "$url" ;;
                stampede) measure throughput "" stampede "$rep" stampede "${common[@]}" --ok-exit 0,99 -- \
                    "$STAMPEDE_BIN" quick "$url" --vus "$c" --connections "$c" --duration "$DURATION" \
                    --threads 1 --no-progress --summary-json '{SUMMARY}' ;;
            esac
        done < <(rotated_tools "$rep" "${tools[@]}")
    done
    stop_nginx
    summarize
}

suite_rate() {
    new_results_dir rate
    start_sut
    local url=$SUT_URL/ secs timeout rep r tool c=$CONNECTIONS
    secs=$(dur_s "$DURATION")
    timeout=$((secs * 3 + 60))
    mapfile -t tools < <(selected stampede oha)
    for ((rep = 1; rep <= REPS; rep++)); do
        for r in $RATES; do
            while read -r tool; do
                local common=(--server-pids "$SUT_PID" --target-rate "$r" --timeout "$timeout")
                case $tool in
                    stampede) measure rate "rate=$r" stampede "$rep" stampede "${common[@]}" --ok-exit 0,99 -- \
                        "$STAMPEDE_BIN" quick "$url" --rate "$r" --duration "$DURATION" --max-in-flight 1000 \
                        --connections "$c" --no-progress --summary-json '{SUMMARY}' ;;
                    oha) measure rate "rate=$r" oha "$rep" oha "${common[@]}" -- \
                        oha -q "$r" -z "$DURATION" -c "$c" --latency-correction --no-tui --output-format json "$url" ;;
                esac
            done < <(rotated_tools "$rep" "${tools[@]}")
        done
    done
    stop_sut
    summarize
}

suite_co() {
    new_results_dir co
    start_sut --stall-every 5s --stall-for 1s
    # Start every run 0.5 s after a freeze ends (phase 1.5 s of the sut's 5 s cycle, whose
    # freezes are [5k, 5k+1) s after its start): a run of a multiple of 5 s then holds
    # whole cycles and never starts or ends inside a freeze.
    local url=$SUT_URL/ secs timeout rep variant c=$CONNECTIONS align
    secs=$(dur_s "$CO_DURATION")
    timeout=$((secs * 3 + 60))
    align="5,1.5,$SUT_T0"
    local variants=()
    if has_tool stampede; then variants+=("stampede:open-$CO_RATE"); fi
    if has_tool oha; then variants+=("oha:open-$CO_RATE-corrected" "oha:closed"); fi
    if has_tool wrk; then variants+=("wrk:closed"); fi
    for ((rep = 1; rep <= REPS; rep++)); do
        while read -r v; do
            local tool=${v%%:*} variant=${v#*:}
            local common=(--server-pids "$SUT_PID" --align "$align" --timeout "$timeout")
            case $v in
                stampede:*) measure co "$variant" stampede "$rep" stampede "${common[@]}" \
                    --target-rate "$CO_RATE" --ok-exit 0,99 -- \
                    "$STAMPEDE_BIN" quick "$url" --rate "$CO_RATE" --duration "$CO_DURATION" --max-in-flight 1000 \
                    --connections "$c" --no-progress --summary-json '{SUMMARY}' ;;
                oha:open*) measure co "$variant" oha "$rep" oha "${common[@]}" --target-rate "$CO_RATE" -- \
                    oha -q "$CO_RATE" -z "$CO_DURATION" -c "$c" --latency-correction --no-tui \
                    --output-format json "$url" ;;
                oha:closed) measure co "$variant" oha "$rep" oha "${common[@]}" -- \
                    oha -z "$CO_DURATION" -c "$c" --no-tui --output-format json "$url" ;;
                wrk:closed) measure co "$variant" wrk "$rep" wrk "${common[@]}" -- \
                    wrk -t1 -c"$c" -d"$CO_DURATION" --latency -s "$BENCH/wrk/report.lua" "$url" ;;
            esac
        done < <(rotated_tools "$rep" "${variants[@]}")
    done
    stop_sut
    summarize
}

suite_memory() {
    new_results_dir memory
    start_sut
    local url=$SUT_URL$MEMORY_PATH secs timeout rep tool n=$MEMORY_VUS
    secs=$(dur_s "$MEMORY_DURATION")
    timeout=$((secs * 3 + 120))
    mapfile -t tools < <(selected stampede oha wrk)
    for ((rep = 1; rep <= MEMORY_REPS; rep++)); do
        while read -r tool; do
            local common=(--server-pids "$SUT_PID" --timeout "$timeout" --rss-csv --rss-interval 1)
            case $tool in
                stampede) measure memory "vus=$n" stampede "$rep" stampede "${common[@]}" --ok-exit 0,99 -- \
                    "$STAMPEDE_BIN" quick "$url" --vus "$n" --connections "$n" --duration "$MEMORY_DURATION" \
                    --no-progress --summary-json '{SUMMARY}' ;;
                oha) measure memory "vus=$n" oha "$rep" oha "${common[@]}" -- \
                    oha -z "$MEMORY_DURATION" -c "$n" --no-tui --output-format json "$url" ;;
                wrk) measure memory "vus=$n" wrk "$rep" wrk "${common[@]}" -- \
                    wrk -t1 -c"$n" -d"$MEMORY_DURATION" --latency -s "$BENCH/wrk/report.lua" "$url" ;;
            esac
        done < <(rotated_tools "$rep" "${tools[@]}")
    done
    if [[ -n $SOAK ]]; then
        log "soak: stampede --rate $SOAK_RATE for ${SOAK}s, RSS sampled every ${SOAK_INTERVAL}s"
        measure memory "soak-rate=$SOAK_RATE" stampede 1 stampede --server-pids "$SUT_PID" \
            --target-rate "$SOAK_RATE" --timeout "$((SOAK + 300))" --rss-csv --rss-interval "$SOAK_INTERVAL" \
            --attempts 1 --ok-exit 0,99 -- \
            "$STAMPEDE_BIN" quick "$SUT_URL/" --rate "$SOAK_RATE" --duration "${SOAK}s" \
            --max-in-flight 1000 --connections "$CONNECTIONS" --no-progress --summary-json '{SUMMARY}'
    fi
    stop_sut
    summarize
}

suite_startup() {
    new_results_dir startup
    local tools
    tools=$(selected stampede oha wrk | paste -sd' ')
    [[ -n $tools ]] || die "startup: no tool selected"
    python3 "$HARNESS" startup --out "$OUT" --tools "$tools" --runs "$STARTUP_RUNS" \
        --stampede "$STAMPEDE_BIN" --client-cpu "$CLIENT_CPU" --server-cpu "$SERVER_CPU" &
    HARNESS_PID=$!
    wait "$HARNESS_PID" || log "startup harness failed"
    HARNESS_PID=""
    summarize
}

for s in "${SUITES[@]}"; do
    log "suite $s (tools: $TOOLS)"
    "suite_$s"
done
log "done"
