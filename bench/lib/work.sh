# Sourced by the bench scripts: a scratch directory ($WORK) and the background processes
# a script starts ($PIDS), both gone when the script exits, however it exits.
WORK=$(mktemp -d)
PIDS=()
bench_cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap bench_cleanup EXIT
