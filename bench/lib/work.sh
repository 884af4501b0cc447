# Sourced by the bench scripts: a scratch directory ($WORK) and the background processes
# a script starts ($PIDS), both gone when the script exits, however it exits.
WORK=$(mktemp -d)
PIDS=()
bench_cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap bench_cleanup EXIT

# Builds `stampede` ($PROFILE: release, the default, or debug) where cargo puts it
# ($CARGO_TARGET_DIR or the workspace's target/) and sets BIN to it, unless BIN is given.
# $ROOT is the workspace.
bench_build() {
    # A binary given as $BIN (an older build, to compare in the same run) is used as it is.
    if [[ -n ${BIN:-} ]]; then
        [[ -x $BIN ]] || { echo "BIN=$BIN is not an executable" >&2; exit 1; }
        return
    fi
    local profile=${PROFILE:-release} flags=()
    [[ $profile == release ]] && flags=(--release)
    cargo build "${flags[@]}" -q -p stampede --manifest-path "$ROOT/Cargo.toml"
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$profile/stampede"
}

# Starts "$@" in the background with its output in $WORK/NAME.out and NAME.err, adds its
# pid to PIDS, waits for its `listening on URL` line and sets URL (and LAST_PID). Call it
# as a command, never as `$(bench_start ...)`: in a subshell the pid never reaches PIDS,
# so the process outlives the script.
bench_start() {
    local name=$1; shift
    "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    for _ in $(seq 100); do grep -q listening "$WORK/$name.out" 2>/dev/null && break; sleep 0.1; done
    URL=$(sed -n 's/^listening on //p' "$WORK/$name.out")
    if [[ -z $URL ]]; then
        echo "$name did not start listening within 10 s: $(cat "$WORK/$name.err")" >&2
        exit 1
    fi
}
