#!/usr/bin/env python3
"""Counts the client's syscalls per phase in an `strace -f` trace cut by
`write(-1, "MARK <phase>")` markers; the server's pid is left out."""
import collections, re, sys

phase, counts, server = None, collections.OrderedDict(), None
for line in open(sys.argv[1]):
    m = re.match(r"(\d+)\s+(\w+)\(", line)
    if not m:
        continue
    tid, call = m.group(1), m.group(2)
    if tid == server:
        continue
    mk = re.search(r'write\(-1, "MARK ([\w-]+)', line)
    if mk and mk.group(1).startswith("server-"):
        server = mk.group(1)[len("server-"):]
        continue
    if mk:
        phase = mk.group(1)
        counts.setdefault(phase, collections.Counter())
        continue
    if phase and phase != "end" and call not in ("futex", "sched_yield", "nanosleep", "clock_nanosleep"):
        counts[phase][call] += 1
for p, c in counts.items():
    if p == "end":
        continue
    total = sum(c.values())
    print(f"{p:15} {total:5}  " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
