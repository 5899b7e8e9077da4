#!/usr/bin/env python3
"""Builds the table of benchmarks/run from its results (target, repetition, metric, value; medians over repetitions),
prints it, and with --docs writes it into the section "Load: every path side by side" of docs/benchmarks.md,
keeping the file's other sections."""
import argparse
import collections
import os
import re
import statistics
import sys

SECTION = "## Load: every path side by side"
ROWS = [
    ("direct", "direct: client → nginx upstream (loopback)"),
    ("injvm-plain", "in-JVM: plain Vert.x WebClient → upstream"),
    ("injvm-mesh", "in-JVM: mesh WebClient (routing core) → upstream"),
    ("injvm-plain-thread", "in-JVM, sent from a thread outside Vert.x: plain Vert.x WebClient → upstream"),
    ("injvm-mesh-thread", "in-JVM, sent from a thread outside Vert.x: mesh WebClient → upstream"),
    ("inmesh-proxy", "`inmesh proxy`, plain listener → upstream"),
    ("inmesh-proxy-uring", "`inmesh proxy --transport io_uring`, plain listener → upstream"),
    ("haproxy", "HAProxy → upstream"),
    ("nginx-proxy", "nginx (proxy_pass, keepalive) → upstream"),
    ("netns-direct", "netns: client (UID 1337, not captured) → upstream over veth"),
    ("netns-capture", "netns: app (UID 65534) → iptables REDIRECT → 15001 `inmesh proxy` (UID 1337) → upstream"),
]
LAT = [f"c{c}_{p}" for c in (4, 16) for p in ("p50", "p90", "p99")]


def main():
    ap = argparse.ArgumentParser()
    for a in ("results", "mode", "reps", "seconds", "fixed-seconds", "connections", "machine", "command",
              "netns-note", "elapsed", "docs"):
        ap.add_argument("--" + a, default="")
    a = ap.parse_args()
    values = collections.defaultdict(list)
    with open(a.results) as f:
        for line in f:
            t, rep, metric, value = line.rstrip("\n").split("\t")
            values[(t, metric)].append(float(value))
    med = {k: statistics.median(v) for k, v in values.items()}
    targets = [r for r in ROWS if any(k[0] == r[0] for k in med)]
    if not targets:
        print("benchmarks/run: nothing was measured", file=sys.stderr)
        return 1

    def get(t, m):
        v = med.get((t, m))
        return None if v is None or v < 0 else v

    def lat(t, c, scale=None):
        ps = [get(t, f"c{c}_{p}") for p in ("p50", "p90", "p99")]
        if scale:
            base = [get(scale, f"c{c}_{p}") for p in ("p50", "p90", "p99")]
            return " / ".join(ratio(v, b) for v, b in zip(ps, base))
        return " / ".join("—" if v is None else f"{v:.0f}" for v in ps)

    def ratio(v, b):
        return "—" if v is None or not b else f"{v / b:.2f}"

    def num(v, fmt):
        return "—" if v is None else format(v, fmt)

    def cpu(t):
        v, sys_pct = get(t, "cpu_ms_per_1k"), get(t, "cpu_sys_pct")
        return num(v, ".1f") + ("" if v is None or sys_pct is None else f" ({sys_pct:.0f} % sys)")

    header = ("| path | highest rate (req/s) | p50 / p90 / p99 µs at 1 000 req/s, 4 conns"
              " | p50 / p90 / p99 µs at 1 000 req/s, 16 conns | proxy CPU ms per 1 000 req | proxy RSS (MB) |\n"
              "| --- | ---: | ---: | ---: | ---: | ---: |")
    out = []
    out.append(header)
    for t, label in targets:
        out.append(f"| {label} | {num(get(t, 'rate'), ',.0f')} | {lat(t, 4)} | {lat(t, 16)} | "
                   f"{cpu(t)} | {num(get(t, 'rss_mb'), '.0f')} |")
    ratio_tables = []
    for base, name in (("direct", "direct"), ("haproxy", "HAProxy")):
        if not any(k[0] == base for k in med):
            continue
        rows = ["| path | highest rate | latency, 4 conns | latency, 16 conns | CPU per 1 000 req | RSS |",
                "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for t, label in targets:
            rows.append(f"| {label} | {ratio(get(t, 'rate'), get(base, 'rate'))} | {lat(t, 4, base)} | "
                        f"{lat(t, 16, base)} | {ratio(get(t, 'cpu_ms_per_1k'), get(base, 'cpu_ms_per_1k'))} | "
                        f"{ratio(get(t, 'rss_mb'), get(base, 'rss_mb'))} |")
        ratio_tables.append((name, "\n".join(rows)))

    # goals
    goals = []

    def goal(text, value, ok, fmt):
        if value is None:
            goals.append(f"| {text} | — | not measured |")
        else:
            goals.append(f"| {text} | {format(value, fmt)} | {'met' if ok(value) else '**missed**'} |")

    def added(t, base, c, p):
        v, b = get(t, f"c{c}_{p}"), get(base, f"c{c}_{p}")
        return None if v is None or b is None else v - b

    def rel(t, base, m):
        v, b = get(t, m), get(base, m)
        return None if v is None or not b else v / b

    for suffix, sender in (("", ""), ("-thread", ", sent from a thread outside Vert.x")):
        for c in (4, 16):
            goal(f"in-JVM{sender}: added p50 at 1 000 req/s, {c} conns (mesh − plain WebClient) < 10 µs",
                 added("injvm-mesh" + suffix, "injvm-plain" + suffix, c, "p50"), lambda v: v < 10, "+.0f")
            goal(f"in-JVM{sender}: added p99 at 1 000 req/s, {c} conns (mesh − plain WebClient) < 50 µs",
                 added("injvm-mesh" + suffix, "injvm-plain" + suffix, c, "p99"), lambda v: v < 50, "+.0f")
    goal("in-JVM: highest rate, mesh / plain WebClient ≥ 0.9", rel("injvm-mesh", "injvm-plain", "rate"),
         lambda v: v >= 0.9, ".2f")
    goal("standalone proxy: highest rate / HAProxy's ≥ 0.8", rel("inmesh-proxy", "haproxy", "rate"),
         lambda v: v >= 0.8, ".2f")
    for c in (4, 16):
        goal(f"standalone proxy: added p50 at 1 000 req/s, {c} conns (vs direct) < 100 µs",
             added("inmesh-proxy", "direct", c, "p50"), lambda v: v < 100, "+.0f")
    for c in (4, 16):
        goal(f"capture path: added p50 at 1 000 req/s, {c} conns (vs netns direct) < 100 µs",
             added("netns-capture", "netns-direct", c, "p50"), lambda v: v < 100, "+.0f")
    goal("standalone proxy: CPU per 1 000 req / HAProxy's ≤ 1", rel("inmesh-proxy", "haproxy", "cpu_ms_per_1k"),
         lambda v: v <= 1, ".2f")
    goal("standalone proxy on io_uring: highest rate / HAProxy's ≥ 0.8", rel("inmesh-proxy-uring", "haproxy", "rate"),
         lambda v: v >= 0.8, ".2f")
    for c in (4, 16):
        goal(f"standalone proxy on io_uring: added p50 at 1 000 req/s, {c} conns (vs direct) < 100 µs",
             added("inmesh-proxy-uring", "direct", c, "p50"), lambda v: v < 100, "+.0f")
    goal("standalone proxy on io_uring: CPU per 1 000 req / HAProxy's ≤ 1",
         rel("inmesh-proxy-uring", "haproxy", "cpu_ms_per_1k"), lambda v: v <= 1, ".2f")

    reps = a.reps
    text = []
    text.append(f"Machine: {a.machine}.  ")
    text.append(f"Command: `{a.command}` ({a.elapsed} s in all).  ")
    text.append(f"Medians of {reps} repetitions; the configurations are interleaved (each repetition runs every path, "
                f"starting one further along). Highest rate: `wrk -t2 -c{a.connections} -d{a.seconds}s`, HTTP/1.1 "
                f"keep-alive, 1 KB body (the in-JVM rows: {16} requests in flight from the Vert.x client, "
                f"{a.seconds} s in one-second blocks, the plain and the mesh client taking turns). Latency: 1 000 req/s for {a.fixed_seconds} s on 4, then 16 keep-alive connections, "
                "from each request's scheduled time (`FixedRateClient`, no coordinated omission; the in-JVM rows: "
                "`MeshClientLoad`'s fixed-rate loop with a pool of 4 or 16, the plain and the mesh client taking turns "
                "in blocks of half a second, each request sent from an event loop's context as a Vert.x service "
                "sends it, or, in the rows that say so, from the harness's own thread). Proxy CPU: utime+stime of the proxy's "
                "processes (/proc/PID/stat) over the wrk run, per 1 000 requests, with the kernel's (stime) share; RSS: VmRSS after it (for the "
                "in-JVM rows, CPU is the whole JVM's: client, mesh and, for plain, no mesh). The upstream is nginx "
                "(1 worker) serving a 1 KB file; HAProxy runs `nbthread 2`, nginx `worker_processes 2`, "
                "`inmesh proxy` `--event-loops 2`, started by `bin/inmesh` with its JVM defaults (serial GC, "
                "`-Xmx64m`). Client, proxy and upstream share the machine's cores.")
    if a.netns_note:
        text.append("")
        text.append(f"Not run: {a.netns_note}.")
    text.append("")
    text.append("\n".join(out))
    for name, table in ratio_tables:
        text.append("")
        text.append(f"Each figure as a ratio to {name}'s:")
        text.append("")
        text.append(table)
    text.append("")
    text.append("Goals:")
    text.append("")
    text.append("| goal | measured | |\n| --- | ---: | --- |")
    text.append("\n".join(goals))
    body = "\n".join(text)
    print()
    print(body)
    if a.docs:
        write_docs(a.docs, body)
        print(f"\nwritten to {a.docs}", file=sys.stderr)
    return 0


def write_docs(path, body):
    section = SECTION + "\n\nWritten by `benchmarks/run`; run it again to refresh. The machine is shared: other " \
        "builds may have run at the same time.\n\n" + body + "\n"
    if os.path.exists(path):
        with open(path) as f:
            doc = f.read()
    else:
        doc = "# Benchmarks\n\n"
    pattern = re.compile(r"^" + re.escape(SECTION) + r"\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        doc = pattern.sub(lambda m: section + "\n", doc, count=1)
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    doc = doc.rstrip("\n") + "\n"
    with open(path, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    sys.exit(main())
