#!/usr/bin/env python3
"""The code a request runs, counted in 64-byte cache lines, from callgrind dumps
written with --dump-instr=yes (benches/phases.sh with PHASES_FOOTPRINT=1).

    python3 benches/footprint.py REQUESTS NAME=DUMP [NAME=DUMP ...]

A line of code counts when one of its instructions ran at least REQUESTS times
over the REQUESTS requests of the dump (once a request on average): the code
every request brings into the L1 instruction cache (32 KB here), whatever else
ran in between. A loop that runs once in the dump but many times over (the
TLS handshake of the load's one connection) can pass that bar; with 500
requests or more none does.

Prints, per server, the number of such lines and their size, and the functions
holding the most of them (a line shared by two functions counts once, for the
first one seen). Names are callgrind's, so a generic function is listed under
the crate that defines it, not the one that instantiated it.
"""

import collections
import re
import sys

LINE = 64
NAME = re.compile(r"\((\d+)\)(?: (.*))?")


def lines_of(path, requests):
    """{(object, line address): function} for the lines run once a request."""
    names = {"fn": {}, "ob": {}}

    def named(kind, text):
        m = NAME.match(text)
        if not m:
            return text
        if m.group(2):
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), text)

    ran = collections.Counter()  # (object, line) -> runs of its most-run instruction
    owner = {}
    fn = ob = None
    addr = 0
    call_line = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            raw = raw.rstrip("\n")
            if raw.startswith("ob="):
                ob = named("ob", raw[3:])
            elif raw.startswith("fn="):
                fn = named("fn", raw[3:])
            elif raw.startswith("cfn="):
                named("fn", raw[4:])
            elif raw.startswith("cob="):
                named("ob", raw[4:])
            elif raw.startswith("calls="):
                # the next cost line is the callee's inclusive cost, at the call site
                call_line = True
            elif raw and (raw[0].isdigit() or raw[0] in "+-*"):
                fields = raw.split()
                pos = fields[0]
                if pos.startswith("0x"):
                    addr = int(pos, 16)
                elif pos[0] in "+-":
                    step = int(pos[1:], 0)
                    addr += step if pos[0] == "+" else -step
                elif pos != "*":
                    addr = int(pos, 0)
                if call_line:
                    call_line = False
                    continue
                # one instruction: its Ir is how many times it ran
                ir = int(fields[2]) if len(fields) > 2 else 0
                key = (ob, addr // LINE)
                ran[key] = max(ran[key], ir)
                owner.setdefault(key, fn)
    return {key: owner[key] for key, n in ran.items() if n >= requests}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    requests = int(sys.argv[1])
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        hot = lines_of(path, requests)
        by_fn = collections.Counter(hot.values())
        print(f"{name}: {len(hot):,} lines of code run every request ({len(hot) * LINE // 1024} KB)")
        for fn, n in by_fn.most_common(12):
            print(f"  {n:5,}  {fn[:110]}")


if __name__ == "__main__":
    main()
