#!/usr/bin/env python3
"""Where a request's CPU time goes, by phase, from `perf record` samples.

Usage: perf_phases.py REQUESTS NAME=PERF.DATA [NAME=PERF.DATA ...]

Each sample's call stack (perf record --call-graph dwarf) is put in the first
phase of PHASES whose pattern matches one of its frames, generics stripped
(so a frame is named by its function, not by the types it is instantiated
with: hyper's dispatcher is generic over the TLS stream, and would otherwise
look like TLS). Samples are cpu-clock ticks; their count times the sampling
period, divided by the requests served while recording, is CPU time per
request. perf's unwinding adds its own cost to every sample, so the totals are
higher than an unprofiled run's; the shares are the figure to read.
"""

import collections
import re
import subprocess
import sys

# (phase, pattern, match the frame with its generics stripped). The handler's
# phases match whole frames (their names say what they are); the transport's
# match stripped ones, as their types appear in every generic frame above them.
PHASES = [
    ("decision log and metrics", r"serve::webhook::record|tracing_subscriber|tracing_core|logging::", False),
    ("engine::decide", r"engine::decide", False),
    ("free the parsed request", r"drop_in_place<sysbox_ro_webhook::intake::AdmissionRequest|drop_in_place<serde_json::value::Value>", False),
    ("answer: build", r"admission::answer|admission::respond|serde_json::value::ser|serde_json::value::to_value|json_internal", False),
    ("answer: serialise into the body", r"axum::json|serde_json::ser::|Value as core::fmt::Display|to_string", False),
    ("parse the body", r"admission::read|admission::parse|serde_json::de::from_slice|serde_json::de::from_trait|ValueVisitor|Deserialize for serde_json::value::Value", False),
    ("handler, the rest", r"serve::webhook::handle|bare_server::mutate", False),
    ("TLS and socket I/O (rustls, kernel)", r"rustls|ring_core", True),
    ("HTTP/1 (hyper)", r"^hyper::|hyper_util", True),
    ("routing and middleware (axum, tower)", r"^axum::|^tower::|serve::guard|serve::conn", True),
    ("runtime (tokio)", r"^tokio::", True),
]
COMPILED = [(name, re.compile(rx), stripped) for name, rx, stripped in PHASES]


def strip_generics(symbol):
    """`<A<T> as B>::f` -> `A::f`; `X<T>::g` -> `X::g`."""
    previous = None
    while previous != symbol:
        previous = symbol
        symbol = re.sub(r"<([^<>]*?) as [^<>]*>", r"\1", symbol)
        symbol = re.sub(r"<[^<>]*>", "", symbol)
    return symbol


def phases_of(data):
    out = subprocess.run(["perf", "script", "-i", data, "-F", "period,ip,sym"], capture_output=True, text=True, check=True).stdout
    spent = collections.Counter()
    for sample in out.split("\n\n"):
        lines = [l.strip() for l in sample.strip().split("\n") if l.strip()]
        if not lines:
            continue
        try:
            period = int(lines[0].split()[0])
        except ValueError:
            continue
        raw = [re.sub(r"^[0-9a-f]+ ", "", l) for l in lines[1:]]
        bare = [strip_generics(f) for f in raw]
        for name, rx, stripped in COMPILED:
            if any(rx.search(f) for f in (bare if stripped else raw)):
                spent[name] += period
                break
        else:
            spent["other (kernel scheduling, allocator, ...)"] += period
    return spent


def main():
    requests = int(sys.argv[1])
    runs = [a.split("=", 1) for a in sys.argv[2:]]
    tables = {name: phases_of(data) for name, data in runs}
    names = [n for n, _, _ in PHASES] + ["other (kernel scheduling, allocator, ...)"]
    print(f"CPU time per request by phase (us, perf cpu-clock samples; share of the server's total)")
    header = f"{'phase':<40}" + "".join(f"{name:>22}" for name, _ in runs)
    print(header)
    for phase in names:
        row = f"{phase:<40}"
        for name, _ in runs:
            ns = tables[name].get(phase, 0)
            total = sum(tables[name].values()) or 1
            row += f"{ns / 1000 / requests:>12.1f} ({100 * ns / total:>4.1f}%)"
        print(row)
    row = f"{'total':<40}"
    for name, _ in runs:
        row += f"{sum(tables[name].values()) / 1000 / requests:>12.1f}        "
    print(row)


if __name__ == "__main__":
    main()
