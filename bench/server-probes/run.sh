#!/usr/bin/env bash
# Issue 12's probes against a `stampede` binary: a token of project `teamb` on a server
# started with its defaults submits each probe; prints the HTTP status of each and the
# server's RSS 3 s after the billion-target probe. Run it on two binaries to compare:
#   bench/server-probes/run.sh target/debug/stampede
# Loopback only; the server and its database are removed at the end.
set -euo pipefail
bin=$(realpath "${1:?usage: run.sh PATH/TO/stampede}")
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
db="sqlite://$work/probe.db"
# The old server resolved relative report paths from its own directory: keep it in $work.
cd "$work"
token=$("$bin" server token create --name teamb --project teamb --database "$db" 2>/dev/null)
"$bin" server --addr 127.0.0.1:0 --database "$db" --server-id probes >"$work/out" 2>"$work/err" &
server=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/out")
step() { printf 'name: probe\ntests:\n  - name: t\n    steps:\n      - name: s\n        %s\n' "$1"; }
contest() {
  printf '{"JobName":"probe","Runs":1,"TestDescriptors":[{"TargetManagerName":"TargetList","TargetManagerAcquireParameters":{"Targets":[{"FQDN":"localhost","ID":"1"}]},"TargetManagerReleaseParameters":{},"TestFetcherName":"%s","TestFetcherFetchParameters":%s}],"Reporting":{"RunReporters":[{"Name":"Noop"}]}}' "$1" "$2"
}
probe() {
  local code
  code=$(curl -s -o "$work/body" -w '%{http_code}' -H "Authorization: Token $token" \
    --data-binary @- "$url/v1/jobs")
  printf '%-45s %s\n' "$1" "$code"
}
step 'exec: { command: sh, args: ["-c", "id; cat /etc/shadow"] }' | probe "exec: id; cat /etc/shadow"
step 'exec: { command: env }' | probe "exec: env"
contest literal '{"TestName":"t","Steps":[{"name":"cmd","label":"x","parameters":{"executable":["id"]}}]}' | probe "ConTest cmd: id"
{ step 'echo: { text: hi }'; echo 'reporting: { final_reporters: [{ junit: { path: /tmp/stampede-probe.xml } }] }'; } | probe "junit: {path: /tmp/stampede-probe.xml}"
{ step 'echo: { text: hi }'; echo 'reporting: { final_reporters: [{ json: { path: ../x.json } }] }'; } | probe "json: {path: ../x.json}"
printf 'name: p\ntests:\n  - name: t\n    targets: { csv: { file: ../../../../etc/passwd } }\n    steps: [{ name: s, echo: { text: hi } }]\n' | probe "csv: {file: ../../../../etc/passwd}"
contest URI '{"URI":"file:///etc/passwd"}' | probe "ConTest URI fetcher: file:///etc/passwd"
step "http: { url: 'http://169.254.169.254/latest/meta-data/' }" | probe "http: 169.254.169.254"
printf 'name: p\ntests:\n  - name: t\n    targets: { synthetic: { count: 1000000000 } }\n    steps: [{ name: s, echo: { text: hi } }]\n' | probe "synthetic: {count: 1000000000}"
sleep 3
printf '%-45s %s MiB\n' "server RSS 3 s later" "$(awk '/VmRSS/ {print int($2/1024)}' /proc/$server/status)"
rm -f /tmp/stampede-probe.xml
