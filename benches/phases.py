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
    ("TLS: decrypt the request (rustls)", 0, r"rustls::conn::ConnectionCommon<.*>::process_new_packets|rustls::conn::connection::.*process_new_packets"),
    ("TLS: encrypt the answer (rustls)", 0, r"rustls::conn::.*(write_plaintext|send_plain|send_appdata_encrypt)|rustls::common_state::CommonState::send_appdata_encrypt"),
    ("HTTP/1 parse and dispatch (hyper)", 0, r"hyper::proto::h1::role::.*Server.*::parse$"),
    ("read the body (to_bytes)", 0, r"axum_core::body::to_bytes|http_body_util::.*Collect"),
    ("bare: the handler", 0, r"bare_server::mutate"),
    ("kube-typed: the handler", 0, r"kube_typed_server::mutate"),
    ("serve: the handler (webhook::handle)", 0, r"sysbox_ro_webhook::serve::webhook::handle"),
    ("review: parse, decide, answer (admission::review)", 1, r"sysbox_ro_webhook::admission::review$"),
    ("parse the AdmissionReview (serde_json)", 2, r"sysbox_ro_webhook::admission::parse$"),
    ("engine::decide", 2, r"sysbox_ro_webhook::engine::decide$"),
    ("read the pod template (typed views)", 3, r"sysbox_ro_webhook::engine::subject::read_template"),
    ("where the pod lands (ClusterState::landing)", 3, r"sysbox_ro_webhook::cluster::ClusterState::landing$"),
    ("pool verdict and messages (verdict::judge)", 3, r"sysbox_ro_webhook::engine::verdict::judge"),
    ("hygiene rules", 3, r"sysbox_ro_webhook::engine::hygiene::check"),
    ("JSON Patch (engine::patch)", 3, r"sysbox_ro_webhook::engine::patch::"),
    ("answer: patch, warnings (admission::respond)", 2, r"sysbox_ro_webhook::admission::respond"),
    ("drop the parsed request", 2, r"drop_in_place<sysbox_ro_webhook::intake::AdmissionRequest>"),
    ("serialise the answer (Json)", 1, r"axum::json::.*Json<.*>.*into_response|serde_json::ser::to_vec<sysbox_ro_webhook::admission::ReviewOut>"),
    ("metrics and decision log (webhook::record)", 1, r"sysbox_ro_webhook::serve::webhook::record"),
    ("the log line (tracing-subscriber fmt)", 2, r"tracing_subscriber::fmt::fmt_layer::Layer<.*> as tracing_subscriber::layer::Layer<.*>>::on_event"),
    ("write(2) of the log line", 3, r"std::io::stdio::.*Stderr.*write_all|<&std::io::stdio::Stderr as std::io::Write>::write_all"),
    ("drop of the answer and outcome", 1, r"drop_in_place<sysbox_ro_webhook::admission::Outcome>"),
]

LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(?:\S*:)?(.+?)(?:\s+\[[^\]]*\])?$")


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
                costs.append((int(m.group(1).replace(",", "")), m.group(2).strip()))
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
