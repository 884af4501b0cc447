#!/usr/bin/env bash
# The robustness step measured (issue 6, acceptance a and b):
#  1. kopia's randomized test, 4 clients for DURATION (2m), against the sut's snapshot store
#     with the server SIGKILLed and restarted every KILL_EVERY actions: must pass;
#  2. the same, shorter (BUG_DURATION), with each bug switch of the store (drop-file,
#     flip-byte, lose-last-write): each must fail with a report naming a damaged file;
#  3. restic through the command snapshotter (installed from Debian packages if missing):
#     must pass, and a broken snapshot command (one that excludes a file) must be caught.
# Writes bench/results/robustness-<YYYYmmdd-HHMMSS>.md with the commands and figures.
#
# Environment (defaults): DURATION=2m BUG_DURATION=20s KILL_EVERY=20 RESTIC_DURATION=30s
# BIN=<built here> (a stampede binary to use instead of building one)
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
DURATION=${DURATION:-2m}
BUG_DURATION=${BUG_DURATION:-20s}
KILL_EVERY=${KILL_EVERY:-20}
RESTIC_DURATION=${RESTIC_DURATION:-30s}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT="$RESULTS_DIR/robustness-$STAMP.md"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p stampede --manifest-path "$ROOT/Cargo.toml"
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/stampede"
fi
mkdir -p "$RESULTS_DIR"

WEIGHTS='{ snapshot: 2, restore-compare: 2, delete-snapshot: 1, write-files: 2, delete-subdirectory: 1, delete-files: 1 }'
# Trees stay small (at most 40 directories x 20 files x 64 KiB): the sut's store keeps a
# full copy per live snapshot, and the run must stay bounded on disk.
WRITER='{ max_depth: 3, max_files_per_write: 20, max_file_size: 65536, io_limit_bytes: 1048576, free_space_floor_bytes: 0 }'

# Writes a one-step randomized job: $1 name, $2 duration, $3 snapshotter (YAML flow), $4 faults.
job() {
    cat > "$WORK/$1.yaml" <<YAML
name: $1
tests:
  - name: robustness
    targets: { synthetic: { count: 1, prefix: local } }
    steps:
      - name: randomized
        timeout: 30m
        robustness:
          clients: 4
          seed: 20261203
          data_dir: $WORK/$1-data
          writer: $WRITER
          snapshotter: $3
          faults: $4
          randomized: { duration: $2, weights: $WEIGHTS }
YAML
    echo "$WORK/$1.yaml"
}

# Runs a job; prints one Markdown table row from its summary. $1 label, $2 expected (pass|fail).
run() {
    local label=$1 expect=$2 file=$3 code=0
    local start=$SECONDS
    "$BIN" run "$file" --no-progress --summary-json "$WORK/$label.json" > "$WORK/$label.out" 2>&1 || code=$?
    local elapsed=$((SECONDS - start))
    python3 - "$WORK/$label.json" "$label" "$expect" "$code" "$elapsed" <<'PY'
import json, re, sys
path, label, expect, code, elapsed = sys.argv[1:]
s = json.load(open(path))["robustness"][0]
failures = s.get("failures", [])
text = "\n".join(failures)
# A damaged file named by a fingerprint difference, or among a lost snapshot's files.
named = re.search(r"(?:modified|added|deleted): (\S*file_\S*)|files may be lost \(([^)]*file_[^),]*)", text)
named = (named.group(1) or named.group(2)) if named else ""
passed = s["passed"]
ok = passed if expect == "pass" else (not passed and bool(named))
kind = re.search(r"does not match its fingerprint|cannot be (?:restored|deleted)", text)
print(f"| {label} | {expect} | {'PASS' if passed else 'FAIL'} (exit {code}) | {'yes' if ok else 'NO'} | "
      f"{s['actions']} | {s['snapshots_verified']} | {s['server_restarts']} | {s['elapsed_s']:.1f} s | "
      f"{kind.group(0) if kind else (failures[0][:200].replace('|', '/') if failures else '')} | {named} |")
PY
    rm -rf "$WORK"/*-data   # each run's data and store: the disk stays bounded
}

SUT_SERVER="\"'$BIN' sut --addr 127.0.0.1:{port} --snap-dir {work}/store --snap-admin-token bench"
sut() { echo "{ http: { server: $SUT_SERVER$1\", admin_token: bench } }"; }

{
    echo "# Robustness step — $STAMP (UTC)"
    echo
    echo "Machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)."
    echo "Binary: \`$BIN\` (built from $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo ' plus uncommitted changes'))."
    echo "Command: \`DURATION=$DURATION BUG_DURATION=$BUG_DURATION KILL_EVERY=$KILL_EVERY bench/robustness/run.sh\`"
    echo "(each row: \`stampede run <job> --summary-json\`; the jobs are written by the script:"
    echo "kopia's randomized test, 4 clients, weights $WEIGHTS, writer $WRITER, seed 20261203)."
    echo
    echo "| run | expected | result | as expected | actions | snapshots verified | server kills | elapsed | failure | damaged file named |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    run sut-no-bugs pass "$(job sut "$DURATION" "$(sut '')" "{ restart_server_every: $KILL_EVERY }")"
    for bug in drop-file flip-byte lose-last-write; do
        run "sut-$bug" fail "$(job "sut-$bug" "$BUG_DURATION" "$(sut " --snap-bugs $bug")" "{ restart_server_every: $KILL_EVERY }")"
    done
} | tee "$OUT"

if ! command -v restic >/dev/null 2>&1; then
    echo "restic is missing: installing it from Debian packages" >&2
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq restic >&2 || (apt-get update -qq && apt-get install -y -qq restic) >&2
    else
        sudo apt-get install -y -qq restic >&2
    fi
fi
RESTIC_VERSION=$(restic version | head -1)
restic_snapshotter() {
    # One repository for all clients (a client's snapshots carry its id as host name).
    # restic 0.14 has no lock retry and `forget` locks the repository exclusively, so every
    # command takes one file lock: the clients' restic commands run one at a time. restic
    # refuses to snapshot an empty directory, so an empty data directory gets an id `empty-...`
    # of its own that restores to nothing.
    local r="flock {work}/restic.lock env RESTIC_PASSWORD=bench restic --repo {repo}"
    cat <<YAML
{ command: {
    repo: "{work}/restic-repo",
    start_server: "$r -q init",
    snapshot: "if [ -z \"\$(ls -A {source})\" ]; then echo empty-{client}-\$(date +%s%N); else cd {source} && $r backup --host {client} --json $1 .; fi",
    id_pattern: '"snapshot_id":"(?P<id>[0-9a-f]+)"|(?m:^empty-\\S+$)',
    restore: "case {id} in empty-*) ;; *) $r -q restore {id} --target {target};; esac",
    delete: "case {id} in empty-*) ;; *) $r -q forget {id};; esac",
    gc: "$r -q prune",
    timeout: 5m } }
YAML
}
{
    echo
    echo "restic via the command snapshotter ($RESTIC_VERSION, $RESTIC_DURATION, no server to kill):"
    echo
    echo "| run | expected | result | as expected | actions | snapshots verified | server kills | elapsed | failure | damaged file named |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    run restic pass "$(job restic "$RESTIC_DURATION" "$(restic_snapshotter '')" "{}")"
    run restic-skips-a-file fail "$(job restic-broken "$RESTIC_DURATION" "$(restic_snapshotter "--exclude=file_1")" "{}")"
} | tee -a "$OUT"
echo "wrote $OUT" >&2
