#!/usr/bin/env python3
"""Prints the per-request phase breakdown of benches/phases.sh from the
callgrind_annotate reports (inclusive costs) of each server.

Usage: phases.py REQUESTS WORK_DIR SERVER...

When the run simulated caches and branches (PHASES_CACHE=1), the work folder
also holds, per server, one report per event (SERVER.I1mr.annotate, ...) and
the totals of every event (SERVER.totals); then the same phases are printed
for L1 instruction-cache misses and mispredicted branches, and the totals with
KCachegrind's cycle estimate.

Each phase is the inclusive cost of the functions named below, divided by
the number of requests; phases nest (a decision is part of the review), and
the indented ones are parts of the phase above them. A function inlined into
its caller has no cost of its own in the report: then its phase shows "-".
"""

import os
import re
import sys

# (label, indent, regular expression on the function name); the first
# function that matches (the largest inclusive cost) gives the phase's cost.
PHASES = [
    ("TLS: decrypt the request (rustls)", 0, r"^rustls::conn::ConnectionCore<.*>::process_new_packets"),
    ("HTTP/1: parse the head (hyper)", 0, r"^<hyper::proto::h1::role::Server as .*>::parse"),
    ("the handler (webhook::handle)", 0, r"^sysbox_ro_webhook::serve::webhook::handle::\{\{closure\}\}"),
    ("review: parse, decide, answer (admission::review)", 1, r"^sysbox_ro_webhook::admission::review$"),
    ("parse the body (serde_json; serve builds only what the engine reads)", 2, r"^serde_json::de::from_trait"),
    ("engine::decide", 2, r"^sysbox_ro_webhook::engine::decide(_with)?$"),
    ("free the parsed request", 2, r"^core::ptr::drop_in_place<sysbox_ro_webhook::intake::AdmissionRequest[<>]"),
    ("serialise the answer (AdmissionReview response)", 1, r"^sysbox_ro_webhook::admission::ReviewOut::to_json$|^sysbox_ro_webhook::admission::_::<impl serde_core::ser::Serialize for sysbox_ro_webhook::admission::Response>::serialize"),
    ("metrics and decision log (webhook::record)", 1, r"^sysbox_ro_webhook::serve::webhook::record$"),
    ("free the answer and outcome", 1, r"^core::ptr::drop_in_place<sysbox_ro_webhook::admission::Outcome>"),
]

LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.+?)(?:\s+\[[^\]]*\])?$")
# the source file callgrind_annotate puts before the function name
FILE = re.compile(r"^(\?\?\?|\S*?\.(rs|c|h|S)):")


def read(path):
    total = None
    costs = []
    with open(path, errors="replace") as f:
        for line in f:
            if "PROGRAM TOTALS" in line:
                total = int(line.split()[0].replace(",", ""))
                continue
            m = LINE.match(line)
            if m and total is not None:
                costs.append((int(m.group(1).replace(",", "")), FILE.sub("", m.group(2).strip(), count=1)))
    return total or 0, costs


WIDTH = max(len(p[0]) + 2 * p[1] for p in PHASES)


def phase_cost(costs, pattern):
    """The inclusive cost of the phase's function, or None when inlined."""
    rx = re.compile(pattern)
    return next((c for c, name in costs if rx.search(name)), None)


def table(title, n, servers, reports, decimals=0):
    """Prints one event by phase: reports[server] is a list of (total, costs)
    read from one report per event, summed (mispredicted branches are the
    conditional ones plus the indirect ones)."""
    cell = lambda v: f"{v / n:>11,.{decimals}f}"
    print(f"{title:<{WIDTH}} " + " ".join(f"{s:>11}" for s in servers))
    print(f"{'total (the whole process)':<{WIDTH}} " + " ".join(cell(sum(t for t, _ in reports[s])) for s in servers))
    for label, indent, pattern in PHASES:
        cells = []
        for s in servers:
            hits = [phase_cost(costs, pattern) for _, costs in reports[s]]
            cells.append(f"{'-':>11}" if any(h is None for h in hits) else cell(sum(hits)))
        if all(c.strip() == "-" for c in cells):
            continue
        print(f"{'  ' * indent + label:<{WIDTH}} " + " ".join(cells))


def totals(path):
    """Every event's program total, by event name."""
    names, values = [], []
    with open(path) as f:
        for line in f:
            if line.startswith("Events shown:"):
                names = line.split(":", 1)[1].split()
            elif "PROGRAM TOTALS" in line:
                values = [int(v.replace(",", "")) for v in re.findall(r"([\d,]+) \(", line)]
    return dict(zip(names, values))


def cycle_estimate(t):
    """KCachegrind's cycle estimate: Ir + 10 x (L1 misses + mispredicted
    branches) + 100 x last-level misses."""
    l1 = t.get("I1mr", 0) + t.get("D1mr", 0) + t.get("D1mw", 0)
    ll = t.get("ILmr", 0) + t.get("DLmr", 0) + t.get("DLmw", 0)
    return t["Ir"] + 10 * (l1 + t.get("Bcm", 0) + t.get("Bim", 0)) + 100 * ll


def main():
    n = int(sys.argv[1])
    work = sys.argv[2]
    servers = sys.argv[3:]
    reports = {s: read(f"{work}/{s}.annotate") for s in servers}
    table("instructions per request", n, servers, {s: [reports[s]] for s in servers})
    base = reports.get("bare", (0, []))[0]
    if base:
        print()
        print("ratio to bare (whole process): " + ", ".join(f"{s} {reports[s][0] / base:.2f}" for s in servers))
    if not os.path.exists(f"{work}/{servers[0]}.totals"):
        return
    print()
    table("L1 instruction-cache misses per request", n, servers,
          {s: [read(f"{work}/{s}.I1mr.annotate")] for s in servers})
    print()
    table("mispredicted branches per request", n, servers,
          {s: [read(f"{work}/{s}.Bcm.annotate"), read(f"{work}/{s}.Bim.annotate")] for s in servers})
    print()
    sums = {s: totals(f"{work}/{s}.totals") for s in servers}
    rows = [
        ("instructions (Ir)", lambda t: t["Ir"]),
        ("L1 instruction misses (I1mr)", lambda t: t["I1mr"]),
        ("L1 data misses (D1mr + D1mw)", lambda t: t["D1mr"] + t["D1mw"]),
        ("last-level misses (ILmr + DLmr + DLmw)", lambda t: t["ILmr"] + t["DLmr"] + t["DLmw"]),
        ("mispredicted conditional branches (Bcm)", lambda t: t["Bcm"]),
        ("mispredicted indirect branches (Bim)", lambda t: t["Bim"]),
        ("cycle estimate (KCachegrind)", cycle_estimate),
    ]
    print(f"{'per request, whole process':<{WIDTH}} " + " ".join(f"{s:>11}" for s in servers))
    for label, f in rows:
        print(f"{label:<{WIDTH}} " + " ".join(f"{f(sums[s]) / n:>11,.0f}" for s in servers))
    if "bare" in sums:
        base = cycle_estimate(sums["bare"])
        print()
        print("cycle estimate, ratio to bare: " + ", ".join(f"{s} {cycle_estimate(sums[s]) / base:.2f}" for s in servers))


if __name__ == "__main__":
    main()
