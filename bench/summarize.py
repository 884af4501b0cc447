#!/usr/bin/env python3
"""Summarize bench/run.sh results as markdown tables.

usage: bench/summarize.py [-o FILE] [--no-write] RESULTS_DIR...

Reads RESULTS_DIR/results.jsonl of every directory given, prints one table per
suite (all directories together) and writes RESULTS_DIR/summary.md for each
directory (that directory's records only). -o FILE also writes the combined text.

Only clean runs count: ok (exit code accepted, output parsed) and not noisy.
When a run was retried, the last clean attempt of each (suite, variant, tool, rep)
is the one used. Figures are medians with [min-max] across clean repetitions.
"""

import argparse
import json
import os
import statistics
import sys
from collections import OrderedDict

TRUTH_CO = {"p50_ms": None, "p90_ms": 500, "p99_ms": 950, "p999_ms": 995, "max_ms": 1000, "mean_ms": 100}


def load(dirs):
    recs = []
    for d in dirs:
        path = os.path.join(d, "results.jsonl") if os.path.isdir(d) else d
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    print(f"warning: {path}:{n}: {e}", file=sys.stderr)
                    continue
                r["_dir"] = d
                recs.append(r)
    return recs


INCLUDE_NOISY = False


def clean(recs):
    """Last clean attempt per (dir, suite, variant, tool, rep)."""
    best = OrderedDict()
    for r in recs:
        if r.get("ok") and (INCLUDE_NOISY or not r.get("noisy")):
            best[(r["_dir"], r["suite"], r.get("variant", ""), r["tool"], r["rep"])] = r
    return list(best.values())


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def num(v, kind="ms"):
    if v is None:
        return "-"
    if kind == "int":
        return f"{v:,.0f}"
    if kind == "pct":
        return f"{v:.2f}"
    if kind == "ratio":
        return f"{v:.2f}"
    if kind == "mb":
        return f"{v:.1f}" if v < 100 else f"{v:,.0f}"
    # ms: 3 significant digits, no exponent
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a >= 0.1:
        return f"{v:.3f}"
    return f"{v:.4f}"


def mrange(rs, key, kind="ms"):
    vals = [r.get(key) for r in rs if r.get(key) is not None]
    if not vals:
        return "-"
    m = statistics.median(vals)
    if len(vals) == 1:
        return num(m, kind)
    return f"{num(m, kind)} [{num(min(vals), kind)}-{num(max(vals), kind)}]"


def mcol(rs, key, kind="ms"):
    return num(med([r.get(key) for r in rs]), kind)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def groups(recs, suite):
    g = OrderedDict()
    for r in recs:
        if r["suite"] == suite:
            g.setdefault((r.get("variant", ""), r["tool"]), []).append(r)
    return g


def counts(allrecs, suite, variant, tool):
    rs = [r for r in allrecs if r["suite"] == suite and r.get("variant", "") == variant and r["tool"] == tool]
    noisy = sum(1 for r in rs if r.get("noisy"))
    failed = sum(1 for r in rs if not r.get("ok"))
    return f"{noisy}/{failed}"


def paired_ratio(cl, suite, num_tool, den_tool, key, variant=""):
    """Per (dir, rep) ratio num/den over clean pairs, plus the ratio of medians."""
    a = {(r["_dir"], r["rep"]): r.get(key) for r in cl
         if r["suite"] == suite and r["tool"] == num_tool and r.get("variant", "") == variant}
    b = {(r["_dir"], r["rep"]): r.get(key) for r in cl
         if r["suite"] == suite and r["tool"] == den_tool and r.get("variant", "") == variant}
    ratios = [a[k] / b[k] for k in a if k in b and a[k] and b[k]]
    ma, mb = med(list(a.values())), med(list(b.values()))
    return ratios, (ma / mb if ma and mb else None)


def ratio_cell(ratios):
    if not ratios:
        return "-"
    m = statistics.median(ratios)
    if len(ratios) == 1:
        return f"{m:.2f}"
    return f"{m:.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"


def tool_label(variant, tool):
    return f"{tool} ({variant})" if variant else tool


def sec_throughput(allrecs, cl):
    g = groups(cl, "throughput")
    if not any(r["suite"] == "throughput" for r in allrecs):
        return None
    rows = []
    keys = OrderedDict.fromkeys((r.get("variant", ""), r["tool"]) for r in allrecs if r["suite"] == "throughput")
    for key in keys:
        rs = g.get(key, [])
        srv_diff = med([r["server_requests"] - r["requests"] for r in rs
                        if r.get("server_requests") is not None and r.get("requests") is not None])
        rows.append([tool_label(*key), len(rs), mrange(rs, "req_s", "int"), mcol(rs, "p50_ms"),
                     mcol(rs, "p99_ms"), mcol(rs, "peak_rss_mb", "mb"), mcol(rs, "client_cpu_pct", "mb"),
                     mcol(rs, "req_per_cpu_s", "int"), mcol(rs, "server_cpu_pct", "mb"),
                     num(srv_diff, "int"), mcol(rs, "errors", "int"), counts(allrecs, "throughput", *key)])
    out = ["## throughput (closed model, against nginx)", "",
           table(["tool", "n", "req/s", "p50 ms", "p99 ms", "peak RSS MB", "client CPU %",
                  "req per client CPU-s", "server CPU %", "server - tool count", "errors", "noisy/failed runs"],
                 rows)]
    tools = {k[1] for k in keys}
    lines = []
    for num_t, den_t in (("stampede", "wrk"), ("stampede", "oha"), ("oha", "wrk")):
        if num_t in tools and den_t in tools:
            for key, label in (("req_s", "req/s"), ("req_per_cpu_s", "req per client CPU-s")):
                ratios, rom = paired_ratio(cl, "throughput", num_t, den_t, key)
                lines.append([f"{num_t}/{den_t}", label, len(ratios), ratio_cell(ratios), num(rom, "ratio")])
    if lines:
        out += ["", "Ratios: per interleaved pair (same directory and rep, both clean), then median [min-max];"
                " and the ratio of the medians.", "",
                table(["ratio", "of", "pairs", "median of per-pair ratios", "ratio of medians"], lines)]
    return "\n".join(out)


def sec_rate(allrecs, cl):
    if not any(r["suite"] == "rate" for r in allrecs):
        return None
    g = groups(cl, "rate")
    keys = OrderedDict.fromkeys((r.get("variant", ""), r["tool"]) for r in allrecs if r["suite"] == "rate")
    rows = []
    for key in sorted(keys, key=lambda k: (float(k[0].split("=")[-1]) if "=" in k[0] else 0, k[1])):
        rs = g.get(key, [])
        target = med([r.get("target_rate") for r in allrecs
                      if r["suite"] == "rate" and (r.get("variant", ""), r["tool"]) == key])
        rows.append([key[1], num(target, "int"), len(rs), mrange(rs, "req_s", "int"),
                     mrange(rs, "accuracy_pct", "pct"), mcol(rs, "p50_ms"), mcol(rs, "p99_ms"),
                     mcol(rs, "lag_p99_ms"), mcol(rs, "dropped", "int"), mcol(rs, "errors", "int"),
                     mcol(rs, "peak_rss_mb", "mb"), mcol(rs, "client_cpu_pct", "mb"),
                     counts(allrecs, "rate", *key)])
    return "\n".join(["## rate (open model, against stampede sut)", "",
                      table(["tool", "target req/s", "n", "achieved req/s", "accuracy %", "p50 ms", "p99 ms",
                             "lag p99 ms", "dropped", "errors", "peak RSS MB", "client CPU %",
                             "noisy/failed runs"], rows),
                      "", "stampede: p50/p99 are response time from the intended start; oha runs with "
                          "--latency-correction. Accuracy = achieved / target."])


def sec_co(allrecs, cl):
    if not any(r["suite"] == "co" for r in allrecs):
        return None
    g = groups(cl, "co")
    keys = OrderedDict.fromkeys((r.get("variant", ""), r["tool"]) for r in allrecs if r["suite"] == "co")
    rows = [["**truth (baseline.md)**", "", "", "≈ service time", "**500**", "**950**", "**995**", "1,000",
             "**100**", "", ""]]
    for key in keys:
        rs = g.get(key, [])
        rows.append([tool_label(*key), len(rs), mrange(rs, "req_s", "int"), mcol(rs, "p50_ms"),
                     mcol(rs, "p90_ms"), mrange(rs, "p99_ms"), mcol(rs, "p999_ms"), mcol(rs, "max_ms"),
                     mcol(rs, "mean_ms"), mcol(rs, "dropped", "int"), counts(allrecs, "co", *key)])
    return "\n".join(["## co (sut stalls 1 s every 5 s; coordinated omission)", "",
                      table(["tool (mode)", "n", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
                             "mean ms", "dropped", "noisy/failed runs"], rows),
                      "", "Truth holds for an open-model client measuring from the intended send time over "
                          "whole 5 s cycles; closed-model clients are expected to hide the stalls below max."])


def sec_memory(allrecs, cl):
    if not any(r["suite"] == "memory" for r in allrecs):
        return None
    g = groups(cl, "memory")
    keys = OrderedDict.fromkeys((r.get("variant", ""), r["tool"]) for r in allrecs if r["suite"] == "memory")
    rows = []
    for key in keys:
        rs = g.get(key, [])
        per_req = med([r["peak_rss_mb"] * 1048576 / r["requests"] for r in rs
                       if r.get("peak_rss_mb") and r.get("requests")])
        rows.append([tool_label(*key), len(rs), mcol(rs, "requests", "int"), mrange(rs, "req_s", "int"),
                     mrange(rs, "peak_rss_mb", "mb"), num(per_req, "int"), mcol(rs, "rss_start_mb", "mb"),
                     mcol(rs, "rss_end_mb", "mb"),
                     num(med([r["rss_end_mb"] - r["rss_start_mb"] for r in rs
                              if r.get("rss_end_mb") is not None and r.get("rss_start_mb") is not None]), "mb"),
                     mcol(rs, "p99_ms"), mcol(rs, "errors", "int"),
                     mcol(rs, "dropped", "int"), counts(allrecs, "memory", *key)])
    return "\n".join(["## memory", "",
                      table(["tool (run)", "n", "requests", "req/s", "peak RSS MB", "peak RSS B per request",
                             "RSS first sample MB", "RSS last sample MB", "growth MB", "p99 ms", "errors", "dropped",
                             "noisy/failed runs"], rows),
                      "", "Peak RSS from time -v; first/last samples from /proc/PID/status VmRSS "
                          "(raw/*.rss.csv; first sample one interval after launch). Flat memory: growth ≈ 0 in the soak."])


def sec_startup(allrecs, cl):
    if not any(r["suite"] == "startup" for r in allrecs):
        return None
    g = groups(cl, "startup")
    keys = OrderedDict.fromkeys((r.get("variant", ""), r["tool"]) for r in allrecs if r["suite"] == "startup")
    rows = []
    for key in keys:
        rs = g.get(key, [])
        mean = statistics.mean([r["startup_ms"] for r in rs]) if rs else None
        rows.append([tool_label(*key), len(rs), mrange(rs, "startup_ms"), num(mean),
                     counts(allrecs, "startup", *key)])
    return "\n".join(["## startup (launch to first request line at the server)", "",
                      table(["tool", "n", "median ms", "mean ms", "noisy/failed runs"], rows)])


SECTIONS = (sec_throughput, sec_rate, sec_co, sec_memory, sec_startup)


def render(recs):
    cl = clean(recs)
    parts = [s(recs, cl) for s in SECTIONS]
    parts = [p for p in parts if p]
    total, noisy = len(recs), sum(1 for r in recs if r.get("noisy"))
    failed = sum(1 for r in recs if not r.get("ok"))
    parts.append(f"_{total} records, {len(cl)} runs used, {noisy} noisy, {failed} failed "
                 "(noisy/failed columns count attempts)._")
    if INCLUDE_NOISY:
        parts.insert(0, "**NOISY RUNS INCLUDED (--include-noisy): not for quoting.**")
    return "\n\n".join(parts) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", metavar="RESULTS_DIR")
    ap.add_argument("-o", "--output", help="also write the combined summary here")
    ap.add_argument("--no-write", action="store_true", help="do not write RESULTS_DIR/summary.md")
    ap.add_argument("--include-noisy", action="store_true",
                    help="count noisy runs too (smoke tests only; marked in the output)")
    a = ap.parse_args()
    global INCLUDE_NOISY
    INCLUDE_NOISY = a.include_noisy
    recs = load(a.dirs)
    text = render(recs)
    sys.stdout.write(text)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    if not a.no_write:
        for d in a.dirs:
            if os.path.isdir(d):
                mine = [r for r in recs if r["_dir"] == d]
                header = f"# Summary of {os.path.basename(os.path.normpath(d))}\n\n"
                meta = os.path.join(d, "meta.json")
                if os.path.exists(meta):
                    header += "Setup: `" + " ".join(open(meta).read().split()) + "`\n\n"
                with open(os.path.join(d, "summary.md"), "w") as f:
                    f.write(header + render(mine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
