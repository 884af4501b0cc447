#!/usr/bin/env python3
"""Measurement harness for bench/run.sh (python3 stdlib only).

Subcommands
  run         wait for an idle machine, run one tool pinned to a CPU under
              `/usr/bin/time -v`, parse its output and append one record to
              OUT/results.jsonl (retrying noisy runs up to --attempts times)
  wait-idle   only the idle wait; prints the neighbour CPU it saw
  startup     time from process launch to the first request line received by a
              tiny local server (one record per launch)
  serve-first (internal) the server used by `startup`

Noise model: a run is "noisy" when, before it, the machine did not become idle
within --idle-timeout seconds, or when during it the CPU used by everything
except the tool and the target server exceeded --idle-threshold cores
(from /proc/stat, minus the tool's user+sys from time -v, minus the server's
utime+stime from /proc/PID/stat).
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HZ = os.sysconf("SC_CLK_TCK")
CURRENT = []  # Popen objects to kill if we are told to stop


def _on_term(signum, _frame):
    for p in CURRENT:
        for pid in reversed(proc_tree([p.pid])):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    sys.exit(128 + signum)


# --------------------------------------------------------------------------
# CPU accounting


def read_proc_stat():
    """Return (busy_s, steal_s, total_s) summed over all CPUs."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    assert fields[0] == "cpu"
    v = [int(x) for x in fields[1:]]
    v += [0] * (10 - len(v))
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    # guest/guest_nice are already included in user/nice.
    busy = user + nice + system + irq + softirq
    total = busy + idle + iowait + steal
    return busy / HZ, steal / HZ, total / HZ


def proc_children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def proc_tree(pids):
    seen = []
    todo = list(pids)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo += proc_children(p)
    return seen


def proc_cpu(pid):
    """utime+stime (s) of one process, 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return 0.0
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); utime/stime are fields 14/15.
    return (int(rest[11]) + int(rest[12])) / HZ


def tree_cpu(pids):
    """Per-pid CPU seconds of the process trees rooted at pids."""
    return {p: proc_cpu(p) for p in proc_tree(pids)}


def cpu_delta(before, after):
    total = 0.0
    for p, v in after.items():
        total += max(0.0, v - before.get(p, 0.0))
    return total


def neighbour_over(seconds, server_pids):
    """Cores used by others over `seconds`."""
    b0, s0, _ = read_proc_stat()
    c0 = tree_cpu(server_pids)
    time.sleep(seconds)
    b1, s1, _ = read_proc_stat()
    c1 = tree_cpu(server_pids)
    own = cpu_delta(c0, c1)
    return max(0.0, (b1 - b0) - own) / seconds, (s1 - s0) / seconds


def wait_idle(server_pids, threshold, timeout, log=sys.stderr):
    """Wait until others use < threshold cores over 1 s. Returns (ok, waited_s, last_cores)."""
    t0 = time.monotonic()
    last = None
    while True:
        last, _ = neighbour_over(1.0, server_pids)
        waited = time.monotonic() - t0
        if last < threshold:
            return True, waited, last
        if waited >= timeout:
            print(f"  ! machine not idle after {waited:.0f}s (others {last:.2f} cores): run counts as noisy",
                  file=log)
            return False, waited, last
        if int(waited) % 10 == 0:
            print(f"  .. waiting for idle machine (others {last:.2f} cores)", file=log)


# --------------------------------------------------------------------------
# Parsers


def parse_time_v(path):
    out = {}
    try:
        text = open(path).read()
    except OSError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if ":" not in line:
            continue
        key, _, val = line.rpartition(": ")
        val = val.strip()
        if key == "User time (seconds)":
            out["user_s"] = float(val)
        elif key == "System time (seconds)":
            out["sys_s"] = float(val)
        elif key == "Maximum resident set size (kbytes)":
            out["peak_rss_mb"] = round(int(val) / 1024, 2)
        elif key == "Elapsed (wall clock) time (h:mm:ss or m:ss)":
            secs = 0.0
            for part in val.split(":"):
                secs = secs * 60 + float(part)
            out["wall_s"] = secs
        elif key == "Exit status":
            out["exit_code"] = int(val)
        elif key == "Percent of CPU this job got":
            out["time_cpu_pct"] = float(val.rstrip("%") or 0)
    m = re.search(r"Command terminated by signal (\d+)", text)
    if m:
        out["signal"] = int(m.group(1))
    return out


_UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def wrk_ms(tok):
    m = re.fullmatch(r"([\d.]+)(ns|us|µs|ms|s|m|h)", tok)
    if not m:
        return None
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(stdout, _summary_path):
    r = {}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", stdout, re.M)
    if m:
        r["req_s"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in ([\d.]+\w+)", stdout, re.M)
    if m:
        r["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", stdout, re.M)
        if m:
            r[key] = wrk_ms(m.group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", stdout)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", stdout)
    if m:
        errors += int(m.group(1))
    r["errors"] = errors
    m = re.search(r"^WRK_JSON (\{.*\})\s*$", stdout, re.M)
    if m:
        j = json.loads(m.group(1))
        lat = j["latency_us"]
        r["requests"] = j["requests"]
        r["p50_ms"] = lat["p50"] / 1e3
        r["p90_ms"] = lat["p90"] / 1e3
        r["p99_ms"] = lat["p99"] / 1e3
        r["p999_ms"] = lat["p999"] / 1e3
        r["max_ms"] = lat["max"] / 1e3
        r["mean_ms"] = lat["mean"] / 1e3
        e = j["errors"]
        r["errors"] = e["connect"] + e["read"] + e["write"] + e["status"] + e["timeout"]
    return r


def parse_oha(stdout, _summary_path):
    j = json.loads(stdout[stdout.index("{"):])
    s = j.get("summary", {})
    lp = j.get("latencyPercentiles", {})
    r = {"req_s": s.get("requestsPerSec")}

    def ms(v):
        return None if v is None else v * 1e3

    r["p50_ms"] = ms(lp.get("p50"))
    r["p90_ms"] = ms(lp.get("p90"))
    r["p99_ms"] = ms(lp.get("p99"))
    r["p999_ms"] = ms(lp.get("p99.9"))
    r["max_ms"] = ms(s.get("slowest"))
    r["mean_ms"] = ms(s.get("average"))
    codes = j.get("statusCodeDistribution") or {}
    errs = j.get("errorDistribution") or {}
    ok = sum(v for k, v in codes.items() if str(k).startswith(("2", "3")))
    r["requests"] = sum(codes.values())
    # oha lists in-flight requests cut at the deadline as an "error"; keep them apart.
    deadline = sum(v for k, v in errs.items() if "deadline" in k.lower())
    r["errors"] = (r["requests"] - ok) + sum(errs.values()) - deadline
    r["aborted_at_deadline"] = deadline
    return r


def parse_stampede(_stdout, summary_path):
    with open(summary_path) as f:
        j = json.load(f)
    lat = (j.get("latency_ms") or {})
    resp = lat.get("response") or {}
    lag = lat.get("lag") or {}
    svc = lat.get("service") or {}
    req = j.get("requests") or {}
    rate = j.get("rate") or {}
    r = {
        "req_s": rate.get("achieved"),
        "requests": req.get("total"),
        "requests_ok": req.get("ok"),
        "errors": req.get("failed"),
        "dropped": req.get("dropped"),
        "status": j.get("status"),
        "p50_ms": resp.get("p50"),
        "p90_ms": resp.get("p90"),
        "p99_ms": resp.get("p99"),
        "p999_ms": resp.get("p999"),
        "max_ms": resp.get("max"),
        "mean_ms": resp.get("mean"),
        "service_p99_ms": svc.get("p99"),
        "lag_p50_ms": lag.get("p50"),
        "lag_p99_ms": lag.get("p99"),
        "lag_max_ms": lag.get("max"),
        "duration_s": j.get("duration_s"),
        "schema": j.get("schema"),
    }
    if rate.get("target") is not None:
        r["stampede_target_rate"] = rate.get("target")
    return r


PARSERS = {"wrk": parse_wrk, "oha": parse_oha, "stampede": parse_stampede, "none": lambda o, s: {}}


# --------------------------------------------------------------------------
# run


def nginx_requests(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    m = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$", text, re.M)
    return int(m.group(3)) if m else None


def align_wait(spec):
    """spec = PERIOD,PHASE,T0(unix time of server start), min elapsed = PERIOD+PHASE."""
    period, phase, t0 = (float(x) for x in spec.split(","))
    now = time.time()
    elapsed = now - t0
    k = max(1, int((elapsed - phase) // period) + 1)
    target = t0 + k * period + phase
    while target - now < 0.05:
        target += period
    time.sleep(target - now)
    return round((time.time() - t0) % period, 3)


class RssSampler(threading.Thread):
    """Samples VmRSS of the tool (the child of /usr/bin/time) every interval s, from t = interval."""

    def __init__(self, time_pid, interval, csv_path):
        super().__init__(daemon=True)
        self.time_pid, self.interval, self.csv_path = time_pid, interval, csv_path
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        t0 = time.monotonic()
        pid = None
        with open(self.csv_path, "w") as f:
            f.write("elapsed_s,rss_kb,hwm_kb\n")
            while not self.stop.is_set():
                if pid is None:
                    kids = proc_children(self.time_pid)
                    pid = kids[0] if kids else None
                    if pid is not None:
                        # first sample after one interval: past start-up, connections open
                        self.stop.wait(self.interval)
                        continue
                if pid is not None:
                    rss = hwm = None
                    try:
                        for line in open(f"/proc/{pid}/status"):
                            if line.startswith("VmRSS:"):
                                rss = int(line.split()[1])
                            elif line.startswith("VmHWM:"):
                                hwm = int(line.split()[1])
                    except OSError:
                        break
                    if rss is not None:
                        el = round(time.monotonic() - t0, 2)
                        self.samples.append((el, rss, hwm))
                        f.write(f"{el},{rss},{hwm}\n")
                        f.flush()
                    self.stop.wait(self.interval)
                else:
                    self.stop.wait(0.05)


def one_attempt(a, attempt):
    variant = re.sub(r"[^A-Za-z0-9_.-]+", "", a.variant)
    base = f"{a.suite}-{variant}-{a.tool}-r{a.rep}-a{attempt}" if variant else \
        f"{a.suite}-{a.tool}-r{a.rep}-a{attempt}"
    raw = os.path.join(a.out, "raw")
    os.makedirs(raw, exist_ok=True)
    p_out, p_err, p_time = (os.path.join(raw, base + ext) for ext in (".out", ".err", ".time"))
    p_sum = os.path.join(raw, base + ".summary.json")
    cmd = [c.replace("{SUMMARY}", p_sum) for c in a.command]
    server_pids = [int(x) for x in a.server_pids.split(",") if x] if a.server_pids else []

    idle_ok, waited, idle_cores = wait_idle(server_pids, a.idle_threshold, a.idle_timeout)
    phase = align_wait(a.align) if a.align else None

    srv_req0 = nginx_requests(a.status_url) if a.status_url else None
    full = ["taskset", "-c", str(a.cpu), "/usr/bin/time", "-v", "-o", p_time] + cmd
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    b0, st0, tot0 = read_proc_stat()
    c0 = tree_cpu(server_pids)
    w0 = time.monotonic()
    with open(p_out, "w") as fo, open(p_err, "w") as fe:
        proc = subprocess.Popen(full, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
        CURRENT[:] = [proc]
        sampler = None
        if a.rss_csv:
            sampler = RssSampler(proc.pid, a.rss_interval, os.path.join(raw, base + ".rss.csv"))
            sampler.start()
        timed_out = False
        try:
            proc.wait(timeout=a.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            for pid in reversed(proc_tree([proc.pid])):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            proc.wait()
        if sampler:
            sampler.stop.set()
            sampler.join()
    wall = time.monotonic() - w0
    b1, st1, tot1 = read_proc_stat()
    c1 = tree_cpu(server_pids)
    srv_req1 = nginx_requests(a.status_url) if a.status_url else None

    rec = {
        "suite": a.suite, "variant": a.variant or "", "tool": a.tool, "rep": a.rep,
        "attempt": attempt, "started_at": started_at, "cmd": " ".join(full),
        "target_rate": a.target_rate,
    }
    tv = parse_time_v(p_time)
    rec.update(tv)
    rec["exit_code"] = tv.get("exit_code", proc.returncode)
    rec["timed_out"] = timed_out
    stdout = open(p_out, errors="replace").read()
    parse_error = None
    try:
        rec.update(PARSERS[a.parser](stdout, p_sum))
    except Exception as e:  # noqa: BLE001 - keep the record, note why
        parse_error = f"{type(e).__name__}: {e}"
    rec["parse_error"] = parse_error
    rec["wall_s"] = round(wall, 3)
    cpu_s = tv.get("user_s", 0.0) + tv.get("sys_s", 0.0)
    rec["cpu_s"] = round(cpu_s, 3)
    rec["client_cpu_pct"] = round(100 * cpu_s / wall, 1) if wall else None
    req = rec.get("requests")
    rec["req_per_cpu_s"] = round(req / cpu_s, 1) if req and cpu_s else None
    srv = cpu_delta(c0, c1)
    rec["server_cpu_s"] = round(srv, 3)
    rec["server_cpu_pct"] = round(100 * srv / wall, 1) if server_pids else None
    neigh = max(0.0, (b1 - b0) - cpu_s - srv) / wall
    rec["neighbour_cores"] = round(neigh, 3)
    rec["steal_pct"] = round(100 * (st1 - st0) / max(1e-9, tot1 - tot0), 2)
    rec["idle_wait_s"] = round(waited, 1)
    rec["idle_before_cores"] = round(idle_cores, 3)
    if phase is not None:
        rec["start_phase_s"] = phase
    if srv_req0 is not None and srv_req1 is not None:
        rec["server_requests"] = srv_req1 - srv_req0 - 1  # minus the second status request
    if a.target_rate and rec.get("req_s"):
        rec["accuracy_pct"] = round(100 * rec["req_s"] / a.target_rate, 3)
    if a.rss_csv and sampler and sampler.samples:
        rec["rss_samples"] = len(sampler.samples)
        rec["rss_start_mb"] = round(sampler.samples[0][1] / 1024, 2)
        rec["rss_end_mb"] = round(sampler.samples[-1][1] / 1024, 2)
        rec["rss_max_sample_mb"] = round(max(s[1] for s in sampler.samples) / 1024, 2)
    reasons = []
    if not idle_ok:
        reasons.append(f"not idle before run ({idle_cores:.2f} cores)")
    if neigh > a.idle_threshold:
        reasons.append(f"neighbours used {neigh:.2f} cores during run")
    rec["noisy"] = bool(reasons)
    rec["noisy_reason"] = "; ".join(reasons)
    rec["ok"] = (not timed_out and parse_error is None and rec.get("req_s") is not None
                 and rec["exit_code"] in a.ok_exit)
    rec["raw"] = {"stdout": os.path.relpath(p_out, a.out), "stderr": os.path.relpath(p_err, a.out),
                  "time": os.path.relpath(p_time, a.out)}
    if os.path.exists(p_sum):
        rec["raw"]["summary"] = os.path.relpath(p_sum, a.out)
    if a.rss_csv:
        rec["raw"]["rss_csv"] = os.path.relpath(os.path.join(raw, base + ".rss.csv"), a.out)
    with open(os.path.join(a.out, "results.jsonl"), "a") as f:
        f.write(json.dumps(rec, sort_keys=False) + "\n")
    return rec


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def cmd_run(a):
    a.ok_exit = [int(x) for x in a.ok_exit.split(",")]
    rec = None
    for attempt in range(1, a.attempts + 1):
        rec = one_attempt(a, attempt)
        flag = "NOISY " if rec["noisy"] else ""
        flag += "" if rec["ok"] else "FAILED "
        print(f"  {a.suite:10} {a.variant or '-':12} {a.tool:9} rep {a.rep} try {attempt}: "
              f"{fmt(rec.get('req_s'), ',.0f')} req/s  p50 {fmt(rec.get('p50_ms'), '.3f')} ms  "
              f"p99 {fmt(rec.get('p99_ms'), '.3f')} ms  cpu {fmt(rec.get('cpu_s'), '.2f')} s  "
              f"rss {fmt(rec.get('peak_rss_mb'), '.1f')} MB  others {rec['neighbour_cores']:.2f} cores "
              f"{flag}{rec['noisy_reason']}{(' ' + rec['parse_error']) if rec['parse_error'] else ''}",
              flush=True)
        if not rec["noisy"]:
            break
    return 0


def cmd_wait_idle(a):
    pids = [int(x) for x in a.server_pids.split(",") if x] if a.server_pids else []
    ok, waited, cores = wait_idle(pids, a.idle_threshold, a.idle_timeout)
    print(json.dumps({"idle": ok, "waited_s": round(waited, 1), "others_cores": round(cores, 3)}))
    return 0


# --------------------------------------------------------------------------
# startup


def cmd_serve_first(a):
    """Pinned to a.cpu; prints the port, then the CLOCK_MONOTONIC time of the first request line."""
    os.sched_setaffinity(0, {a.cpu})
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)
    print(srv.getsockname()[1], flush=True)
    first = threading.Event()
    lock = threading.Lock()

    def handle(conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                if b"\r\n" in buf:
                    with lock:
                        if not first.is_set():
                            t = time.monotonic()
                            first.set()
                            print(f"{t:.9f}", flush=True)
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
        except OSError:
            pass
        finally:
            conn.close()

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def cmd_startup(a):
    os.sched_setaffinity(0, {a.client_cpu})  # children inherit: no taskset exec in the timing
    out = a.out
    raw = os.path.join(out, "raw")
    os.makedirs(raw, exist_ok=True)
    tools = a.tools.split()
    for rep in range(1, a.runs + 1):
        for tool in tools:
            for attempt in range(1, a.attempts + 1):
                rc = startup_once(a, out, raw, tool, rep, attempt)
                if rc is None:
                    return 2
                if not rc:
                    break
    return 0


def startup_once(a, out, raw, tool, rep, attempt):
    """One launch; returns True if it was noisy, None on a usage error."""
    srv = subprocess.Popen([sys.executable, os.path.abspath(__file__), "serve-first",
                            "--cpu", str(a.server_cpu)],
                           stdout=subprocess.PIPE, text=True)
    CURRENT[:] = [srv]
    try:
        port = int(srv.stdout.readline())
        url = f"http://127.0.0.1:{port}/"
        if tool == "stampede":
            # One virtual user sends at once, like `oha -n 1 -c 1` and `wrk -c1`. (With
            # --rate R the first request is due one period, 1/R s, after the start: pusher's
            # ticker semantics, not start-up time.)
            cmd = [a.stampede, "quick", url, "--duration", "1s", "--vus", "1", "--no-progress"]
        elif tool == "oha":
            cmd = ["oha", "-n", "1", "-c", "1", "--no-tui", url]
        elif tool == "wrk":
            cmd = ["wrk", "-t1", "-c1", "-d1s", url]
        else:
            print(f"startup: unknown tool {tool}", file=sys.stderr)
            return None
        idle_ok, waited, idle_cores = wait_idle([srv.pid], a.idle_threshold, a.idle_timeout)
        base = os.path.join(raw, f"startup-{tool}-r{rep}-a{attempt}")
        got = []

        def reader():
            line = srv.stdout.readline()
            if line.strip():
                got.append(float(line))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        with open(base + ".out", "w") as fo, open(base + ".err", "w") as fe:
            t0 = time.monotonic()
            p = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
            CURRENT[:] = [srv, p]
            th.join(timeout=a.timeout)
            try:
                rc = p.wait(timeout=a.timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            t_exit = time.monotonic()
        first_ms = (got[0] - t0) * 1e3 if got else None
        rec = {"suite": "startup", "variant": "", "tool": tool, "rep": rep, "attempt": attempt,
               "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cmd": " ".join(cmd),
               "startup_ms": None if first_ms is None else round(first_ms, 3),
               "exit_code": rc, "wall_s": round(t_exit - t0, 3),
               "idle_wait_s": round(waited, 1), "idle_before_cores": round(idle_cores, 3),
               "noisy": not idle_ok,
               "noisy_reason": "" if idle_ok else f"not idle before run ({idle_cores:.2f} cores)",
               "ok": first_ms is not None,
               "raw": {"stdout": os.path.relpath(base + ".out", out),
                       "stderr": os.path.relpath(base + ".err", out)}}
        with open(os.path.join(out, "results.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"  startup    {tool:9} rep {rep} try {attempt}: first request after "
              f"{fmt(first_ms, '.2f')} ms (exit {rc}){'' if idle_ok else ' NOISY'}", flush=True)
        return not idle_ok
    finally:
        srv.kill()
        srv.wait()


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="subcommand", required=True)

    def noise_opts(p):
        p.add_argument("--idle-threshold", type=float, default=float(os.environ.get("IDLE_THRESHOLD", 0.25)),
                       help="cores others may use (default 0.25)")
        p.add_argument("--idle-timeout", type=float, default=float(os.environ.get("IDLE_TIMEOUT", 60)),
                       help="max seconds to wait for an idle machine (default 60)")

    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--suite", required=True)
    r.add_argument("--variant", default="")
    r.add_argument("--tool", required=True)
    r.add_argument("--rep", type=int, required=True)
    r.add_argument("--parser", choices=sorted(PARSERS), required=True)
    r.add_argument("--cpu", type=int, default=1)
    r.add_argument("--server-pids", default="")
    r.add_argument("--status-url", default="", help="nginx stub_status URL to count server-side requests")
    r.add_argument("--target-rate", type=float, default=None)
    r.add_argument("--align", default="", help="PERIOD,PHASE,T0: start at this phase of the server's cycle")
    r.add_argument("--rss-csv", action="store_true", help="sample the tool's VmRSS into raw/*.rss.csv")
    r.add_argument("--rss-interval", type=float, default=10.0)
    r.add_argument("--attempts", type=int, default=int(os.environ.get("ATTEMPTS", 2)))
    r.add_argument("--timeout", type=float, default=300.0)
    r.add_argument("--ok-exit", default="0", help="comma-separated exit codes that count as ok")
    noise_opts(r)
    r.add_argument("command", nargs=argparse.REMAINDER)
    r.set_defaults(func=cmd_run)

    w = sub.add_parser("wait-idle")
    w.add_argument("--server-pids", default="")
    noise_opts(w)
    w.set_defaults(func=cmd_wait_idle)

    s = sub.add_parser("startup")
    s.add_argument("--out", required=True)
    s.add_argument("--tools", required=True)
    s.add_argument("--runs", type=int, default=10)
    s.add_argument("--stampede", default="stampede")
    s.add_argument("--client-cpu", type=int, default=1)
    s.add_argument("--server-cpu", type=int, default=0)
    s.add_argument("--timeout", type=float, default=60.0)
    s.add_argument("--attempts", type=int, default=int(os.environ.get("ATTEMPTS", 2)))
    noise_opts(s)
    s.set_defaults(func=cmd_startup)

    f = sub.add_parser("serve-first")
    f.add_argument("--cpu", type=int, default=0)
    f.set_defaults(func=cmd_serve_first)

    a = ap.parse_args()
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    if a.subcommand == "run":
        if a.command and a.command[0] == "--":
            a.command = a.command[1:]
        if not a.command:
            ap.error("run: missing command after --")
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
