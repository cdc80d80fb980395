#!/usr/bin/env python3
"""Prints the per-request phase breakdown of benches/phases.sh from the
callgrind_annotate reports (inclusive costs) of each server.

Usage: phases.py REQUESTS WORK_DIR SERVER...

Each phase is the inclusive cost of the functions named below, divided by
the number of requests; phases nest (a decision is part of the review), and
the indented ones are parts of the phase above them. A function inlined into
its caller has no cost of its own in the report: then its phase shows "-".
"""

import re
import sys

# (label, indent, regular expression on the function name); the first
# function that matches (the largest inclusive cost) gives the phase's cost.
PHASES = [
    ("TLS: decrypt the request (rustls)", 0, r"^rustls::conn::ConnectionCore<.*>::process_new_packets"),
    ("HTTP/1: parse the head (hyper)", 0, r"^<hyper::proto::h1::role::Server as .*>::parse"),
    ("the handler (webhook::handle)", 0, r"^sysbox_ro_webhook::serve::webhook::handle::\{\{closure\}\}"),
    ("review: parse, decide, answer (admission::review)", 1, r"^sysbox_ro_webhook::admission::review$"),
    ("parse the body, building what the engine reads (serde_json)", 2, r"^serde_json::de::from_trait"),
    ("engine::decide", 2, r"^sysbox_ro_webhook::engine::decide$"),
    ("free the parsed request", 2, r"^core::ptr::drop_in_place<sysbox_ro_webhook::intake::AdmissionRequest[<>]"),
    ("serialise the answer (AdmissionReview response)", 1, r"^sysbox_ro_webhook::admission::_::<impl serde_core::ser::Serialize for sysbox_ro_webhook::admission::Response>::serialize"),
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


def main():
    n = int(sys.argv[1])
    work = sys.argv[2]
    servers = sys.argv[3:]
    reports = {s: read(f"{work}/{s}.annotate") for s in servers}
    width = max(len(p[0]) + 2 * p[1] for p in PHASES)
    print(f"{'instructions per request':<{width}} " + " ".join(f"{s:>11}" for s in servers))
    print(f"{'total (the whole process)':<{width}} " + " ".join(f"{reports[s][0] / n:>11,.0f}" for s in servers))
    for label, indent, pattern in PHASES:
        rx = re.compile(pattern)
        cells = []
        for s in servers:
            _, costs = reports[s]
            hit = next((c for c, name in costs if rx.search(name)), None)
            cells.append(f"{hit / n:>11,.0f}" if hit else f"{'-':>11}")
        if all(c.strip() == "-" for c in cells):
            continue
        print(f"{'  ' * indent + label:<{width}} " + " ".join(cells))
    base = reports.get("bare", (0, []))[0]
    if base:
        print()
        print("ratio to bare (whole process): " + ", ".join(f"{s} {reports[s][0] / base:.2f}" for s in servers))


if __name__ == "__main__":
    main()
