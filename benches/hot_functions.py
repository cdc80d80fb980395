#!/usr/bin/env python3
"""The functions every request runs, by symbol name, for the linker's
--symbol-ordering-file (link/hot-functions.txt, see build.rs), and how well a
binary follows such a list.

    python3 benches/hot_functions.py list BINARY REQUESTS DUMP [DUMP ...]
    python3 benches/hot_functions.py check BINARY LIST

`list` reads callgrind dumps written with --dump-instr=yes over REQUESTS
requests (benches/phases.sh with PHASES_FOOTPRINT=1), takes the 64-byte lines
of BINARY's code that ran at least once a request (benches/footprint.py's
rule), finds the function symbol holding each line in BINARY's symbol table
(`nm`: the mangled names the linker knows) and prints those symbols, the one
holding the most such lines first. Callgrind gives addresses as in the file,
so BINARY must be the binary that ran.

`check` prints how many of LIST's symbols BINARY defines and how far apart
they lie: with the list applied they fill one stretch about the size of their
code; a list written for another build (another toolchain, lock file or
profile renames the symbols) leaves most of them out.
"""

import bisect
import collections
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import footprint  # noqa: E402

LINE = 64


def functions(binary):
    """[(address, size, name)] of BINARY's code symbols, by address."""
    out = subprocess.run(
        ["nm", "--defined-only", "--print-size", "--numeric-sort", binary],
        capture_output=True, text=True, check=True,
    ).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW" and int(parts[1], 16) > 0:
            syms.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    syms.sort()
    return syms


def hot_list(binary, requests, dumps):
    syms = functions(binary)
    starts = [s[0] for s in syms]
    me = os.path.realpath(binary)
    hot = collections.Counter()
    for dump in dumps:
        for (obj, line), _fn in footprint.lines_of(dump, requests).items():
            if os.path.realpath(obj) != me:
                continue
            addr = line * LINE
            # a line can hold the end of one function and the start of the
            # next: every function it overlaps counts
            i = bisect.bisect_right(starts, addr + LINE - 1) - 1
            while i >= 0 and syms[i][0] + syms[i][1] > addr:
                hot[syms[i][2]] += 1
                i -= 1
    return [name for name, _ in hot.most_common()]


def listed(path):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def check(binary, path):
    names = listed(path)
    where = {name: (addr, size) for addr, size, name in functions(binary)}
    found = [where[n] for n in names if n in where]
    if not found:
        print(f"{binary}: none of the {len(names)} functions of {path}")
        return 1
    lo = min(a for a, _ in found)
    hi = max(a + s for a, s in found)
    code = sum(s for _, s in found)
    print(
        f"{binary}: {len(found)} of {len(names)} functions of {path}, "
        f"{code // 1024} KiB of code in a stretch of {(hi - lo) // 1024} KiB"
    )
    return 0


def main(argv):
    if len(argv) >= 5 and argv[1] == "list":
        for name in hot_list(argv[2], int(argv[3]), argv[4:]):
            print(name)
        return 0
    if len(argv) == 4 and argv[1] == "check":
        return check(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
