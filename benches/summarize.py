#!/usr/bin/env python3
"""Summarises the runs of benches/run.sh: one table per request body, the
ratios of the webhook to the bare server, and PASS/FAIL per target.

Usage: summarize.py RESULTS.tsv RSS.tsv BODIES_DIR

RESULTS.tsv rows: round, body, server, mode (closed|open), oha JSON report,
server CPU ns during the run, wall ns of the run. RSS.tsv rows: server, phase
(start, or the body whose runs it covers), VmHWM in KiB. Every figure printed
comes from those files.

Throughput is given twice: requests/s reached in the closed loop (bounded by
whichever of server and load generator saturates first, each on one core) and
the server's capacity, requests per CPU-second of the server (1e6 / CPU us per
request), which does not depend on the load generator keeping up.
"""

import json
import os
import statistics
import sys

SERVERS = ["bare", "wh-10", "wh-5000"]
BODIES = ["pod", "deployment", "pod-1mib"]
TARGETS = {
    "throughput": 0.8,  # webhook req/s at least this share of the bare server's
    "p50": 1.25,  # webhook p50 at most this multiple of the bare server's
    "scaling": 0.9,  # 5,000-node req/s at least this share of the 10-node req/s
    "rss_mib": 64.0,  # peak RSS
}


def load(path):
    with open(path) as f:
        return json.load(f)


def requests(report):
    return sum(int(n) for n in report.get("statusCodeDistribution", {}).values())


def errors(report):
    non_ok = sum(int(n) for code, n in report.get("statusCodeDistribution", {}).items() if code != "200")
    failed = sum(int(n) for n in report.get("errorDistribution", {}).values())
    return non_ok + failed


def ms(seconds):
    return seconds * 1000.0


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    results_path, rss_path, bodies_dir = sys.argv[1:4]
    runs = {}  # (body, server, mode) -> list of (round, report, cpu_ns, wall_ns)
    with open(results_path) as f:
        for line in f:
            rnd, body, server, mode, out, cpu_ns, wall_ns = line.rstrip("\n").split("\t")
            runs.setdefault((body, server, mode), []).append((int(rnd), load(out), int(cpu_ns), int(wall_ns)))
    rss = {}  # (server, phase) -> MiB
    with open(rss_path) as f:
        for line in f:
            server, phase, kib = line.split()
            rss[(server, phase)] = int(kib) / 1024.0

    verdicts = []

    def target(name, ok, detail):
        verdicts.append((name, ok, detail))

    total_errors = 0
    total_requests = 0
    rps = {}  # (body, server) -> {round: req/s}
    cap = {}  # (body, server) -> {round: requests per server CPU-second}
    p50 = {}
    print("peak RSS after start-up: " + ", ".join(f"{s} {rss.get((s, 'start'), float('nan')):.1f} MiB" for s in SERVERS))
    for body in BODIES:
        size = os.path.getsize(os.path.join(bodies_dir, body + ".json"))
        print()
        print(f"== {body} ({size:,} bytes)")
        print(
            f"{'server':<8} {'req/s':>7} {'(min-max)':>13} {'req/CPU-s':>9} {'CPU us/req':>10} {'CPU busy':>8}"
            f" {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} {'errors':>6} {'peak RSS':>10}"
        )
        for server in SERVERS:
            closed = runs.get((body, server, "closed"), [])
            opened = runs.get((body, server, "open"), [])
            rps[(body, server)] = {r: rep["summary"]["requestsPerSec"] for r, rep, _, _ in closed}
            cap[(body, server)] = {r: requests(rep) / (c / 1e9) for r, rep, c, _ in closed if c > 0}
            p50[(body, server)] = {r: rep["latencyPercentiles"]["p50"] for r, rep, _, _ in opened}
            xs = list(rps[(body, server)].values())
            cpu_us = [c / 1000.0 / max(requests(rep), 1) for _, rep, c, _ in closed]
            busy = [c / w for _, _, c, w in closed]
            lat = {q: med([rep["latencyPercentiles"][q] for _, rep, _, _ in opened]) for q in ("p50", "p99", "p99.9")}
            errs = sum(errors(rep) for _, rep, _, _ in closed + opened)
            total_errors += errs
            total_requests += sum(requests(rep) for _, rep, _, _ in closed + opened)
            print(
                f"{server:<8} {med(xs):>7.0f} {f'({min(xs):.0f}-{max(xs):.0f})':>13}"
                f" {med(list(cap[(body, server)].values())):>9.0f} {med(cpu_us):>10.1f} {med(busy) * 100:>7.0f}%"
                f" {ms(lat['p50']):>7.2f} {ms(lat['p99']):>7.2f} {ms(lat['p99.9']):>8.2f} {errs:>6}"
                f" {rss.get((server, body), float('nan')):>6.1f} MiB"
            )

    print()
    print("== ratios (median over rounds of the per-round ratio; the runs of a round are back to back)")
    print(f"{'body':<11} {'':<9} {'wh-10/bare':>10} {'wh-5000/bare':>12} {'wh-5000/wh-10':>13}")

    def ratio(body, a, b, table):
        ta, tb = table[(body, a)], table[(body, b)]
        return med([ta[r] / tb[r] for r in ta if r in tb and tb[r] > 0])

    for body in BODIES:
        for label, table, better in (("req/s", rps, "high"), ("req/CPU-s", cap, "high"), ("p50", p50, "low")):
            t10 = ratio(body, "wh-10", "bare", table)
            t5k = ratio(body, "wh-5000", "bare", table)
            scale = ratio(body, "wh-5000", "wh-10", table)
            print(f"{body:<11} {label:<9} {t10:>10.3f} {t5k:>12.3f} {scale:>13.3f}")
            for name, value in (("wh-10", t10), ("wh-5000", t5k)):
                if better == "high":
                    target(f"{label} {name}/bare ({body}) >= {TARGETS['throughput']}", value >= TARGETS["throughput"], f"{value:.3f}")
                else:
                    target(f"p50 {name}/bare ({body}) <= {TARGETS['p50']}", value <= TARGETS["p50"], f"{value:.3f}")
            if better == "high":
                target(f"{label} wh-5000/wh-10 ({body}) >= {TARGETS['scaling']}", scale >= TARGETS["scaling"], f"{scale:.3f}")
    for phase in ("start", "pod", "deployment"):
        value = rss.get(("wh-5000", phase), float("inf"))
        target(f"peak RSS wh-5000 ({phase}) <= {TARGETS['rss_mib']:.0f} MiB", value <= TARGETS["rss_mib"], f"{value:.1f} MiB")
    big = {s: rss.get((s, "pod-1mib"), float("nan")) for s in SERVERS}
    print()
    print("note: with 64 connections each sending 1 MiB, request bodies in flight dominate memory:"
          f" peak RSS bare {big['bare']:.1f} MiB, wh-10 {big['wh-10']:.1f} MiB, wh-5000 {big['wh-5000']:.1f} MiB")
    target("zero errors", total_errors == 0, f"{total_errors} errors in {total_requests:,} requests")

    print()
    print("== targets")
    for name, ok, detail in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    failed = [v for v in verdicts if not v[1]]
    print(f"{len(verdicts) - len(failed)} of {len(verdicts)} targets met")
    if failed and os.environ.get("BENCH_STRICT") == "1":
        sys.exit(1)


if __name__ == "__main__":
    main()
