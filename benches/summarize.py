#!/usr/bin/env python3
"""Summarises the runs of benches/run.sh: one table per request body, the
ratios of the webhooks to the bare server (and of the kube-typed peer to it),
and PASS/FAIL per target.

Usage: SERVERS="bare kube-typed wh-10 wh-5000" BODIES="pod ..." summarize.py RESULTS.tsv RSS.tsv BODIES_DIR

SERVERS: `bare` (the reference), `kube-typed` (the peer), then the webhooks
`wh-N`, the first of which is the base of the scaling ratios.

RESULTS.tsv rows: round, body, server, mode (closed|open|paired:WEBHOOK), oha JSON report,
server CPU ns during the run, wall ns of the run. RSS.tsv rows: server, phase
(start, or the body whose runs it covers), VmHWM in KiB. Every figure printed
comes from those files.

Throughput is given twice: requests/s reached in the closed loop (bounded by
whichever of server and load generator saturates first, each on one core) and
the server's capacity, requests per CPU-second of the server (1e6 / CPU us per
request), which does not depend on the load generator keeping up.

The paired rounds load the bare server and one webhook at the same time on the
same core: the ratio of their CPU per request within a round compares them on
the same machine at the same moment, so it does not move with the host's
speed the way ratios of back-to-back runs do. As the two share the core, the
ratio of their requests/s in a paired round is the inverse of that CPU ratio:
what each would reach alone on the core.
"""

import json
import os
import statistics
import sys

SERVERS = os.environ.get("SERVERS", "bare kube-typed wh-10 wh-5000").split()
BODIES = os.environ.get("BODIES", "pod deployment pod-1mib").split()
WEBHOOKS = [s for s in SERVERS if s.startswith("wh-")]
PEERS = [s for s in SERVERS if s not in WEBHOOKS and s != "bare"]
TARGETS = {
    "throughput": 0.9,  # webhook req/s at least this share of the bare server's
    "cpu": 1.15,  # webhook CPU per request at most this multiple of the bare server's
    "p50": 1.25,  # webhook p50 at most this multiple of the bare server's
    "scaling": 0.9,  # a larger cluster's req/s at least this share of the smallest one's
    "rss_mib": 64.0,  # peak RSS with 5,000 nodes
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
            f"{'server':<10} {'req/s':>7} {'(min-max)':>13} {'req/CPU-s':>9} {'CPU us/req':>10} {'CPU busy':>8}"
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
                f"{server:<10} {med(xs):>7.0f} {f'({min(xs):.0f}-{max(xs):.0f})':>13}"
                f" {med(list(cap[(body, server)].values())):>9.0f} {med(cpu_us):>10.1f} {med(busy) * 100:>7.0f}%"
                f" {ms(lat['p50']):>7.2f} {ms(lat['p99']):>7.2f} {ms(lat['p99.9']):>8.2f} {errs:>6}"
                f" {rss.get((server, body), float('nan')):>6.1f} MiB"
            )

    print()
    print("== ratios (median over rounds of the per-round ratio; the runs of a round are back to back)")
    base = WEBHOOKS[0] if WEBHOOKS else None
    pairs = [(w, "bare") for w in WEBHOOKS] + [(p, "bare") for p in PEERS] + [(w, base) for w in WEBHOOKS[1:]]
    pairs += [(w, p) for w in WEBHOOKS for p in PEERS]
    print(f"{'body':<11} {'':<10} " + " ".join(f"{a + '/' + b:>{max(13, len(a) + len(b) + 1)}}" for a, b in pairs))

    def ratio(body, a, b, table):
        ta, tb = table[(body, a)], table[(body, b)]
        return med([ta[r] / tb[r] for r in ta if r in tb and tb[r] > 0])

    for body in BODIES:
        # CPU us per request: the inverse of requests per CPU-second
        cpu = {k: {r: 1.0 / v for r, v in rounds.items() if v > 0} for k, rounds in cap.items()}
        for label, table in (("req/s", rps), ("CPU us/req", cpu), ("p50", p50)):
            values = {(a, b): ratio(body, a, b, table) for a, b in pairs}
            print(f"{body:<11} {label:<10} " + " ".join(
                f"{values[(a, b)]:>{max(13, len(a) + len(b) + 1)}.3f}" for a, b in pairs))
            for w in WEBHOOKS:
                v = values[(w, "bare")]
                if label == "req/s":
                    target(f"req/s {w}/bare ({body}) >= {TARGETS['throughput']}", v >= TARGETS["throughput"], f"{v:.3f}")
                elif label == "CPU us/req":
                    target(f"CPU us/req {w}/bare ({body}) <= {TARGETS['cpu']}", v <= TARGETS["cpu"], f"{v:.3f}")
                else:
                    target(f"p50 {w}/bare ({body}) <= {TARGETS['p50']}", v <= TARGETS["p50"], f"{v:.3f}")
            if label != "p50":
                for w in WEBHOOKS[1:]:
                    v = values[(w, base)]
                    if label == "req/s":
                        target(f"req/s {w}/{base} ({body}) >= {TARGETS['scaling']}", v >= TARGETS["scaling"], f"{v:.3f}")
                    else:
                        limit = 1 / TARGETS["scaling"]
                        target(f"CPU us/req {w}/{base} ({body}) <= {limit:.3f}", v <= limit, f"{v:.3f}")
    paired = {}  # (body, webhook) -> list of (CPU ratio, req/s ratio) per round
    for (body, server, mode), rounds in runs.items():
        if not mode.startswith("paired:") or server == "bare":
            continue
        base_rounds = {r: (rep, c) for r, rep, c, _ in runs.get((body, "bare", mode), [])}
        for r, rep, c, _ in rounds:
            if r not in base_rounds:
                continue
            brep, bc = base_rounds[r]
            n, bn = requests(rep), requests(brep)
            total_errors += errors(rep) + errors(brep)
            total_requests += n + bn
            if n and bn and bc:
                paired.setdefault((body, server), []).append(((c / n) / (bc / bn), n / bn))
    if paired:
        print()
        print("== paired rounds (bare and the webhook loaded at once, on the same core)")
        print(f"{'body':<11} {'webhook':<10} {'CPU us/req ratio':>16} {'(min-max)':>13} {'req/s ratio':>11}  rounds")
        for (body, w), xs in sorted(paired.items()):
            cpu_ratios = [x for x, _ in xs]
            rps_ratios = [y for _, y in xs]
            print(f"{body:<11} {w:<10} {med(cpu_ratios):>16.3f} {f'({min(cpu_ratios):.3f}-{max(cpu_ratios):.3f})':>13}"
                  f" {med(rps_ratios):>11.3f}  {len(xs)}")
            v = med(cpu_ratios)
            target(f"CPU us/req {w}/bare, paired ({body}) <= {TARGETS['cpu']}", v <= TARGETS["cpu"], f"{v:.3f}")
            v = med(rps_ratios)
            target(f"req/s {w}/bare, paired ({body}) >= {TARGETS['throughput']}", v >= TARGETS["throughput"], f"{v:.3f}")
    if "wh-5000" in SERVERS:
        for phase in ["start"] + [b for b in ("pod", "deployment") if b in BODIES]:
            value = rss.get(("wh-5000", phase), float("inf"))
            target(f"peak RSS wh-5000 ({phase}) <= {TARGETS['rss_mib']:.0f} MiB", value <= TARGETS["rss_mib"], f"{value:.1f} MiB")
    if "pod-1mib" in BODIES:
        big = {s: rss.get((s, "pod-1mib"), float("nan")) for s in SERVERS}
        print()
        print("note: with 64 connections each sending 1 MiB, request bodies in flight dominate memory: peak RSS "
              + ", ".join(f"{s} {v:.1f} MiB" for s, v in big.items()))
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
