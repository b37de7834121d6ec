#!/usr/bin/env python3
"""Self (exclusive) cost per function of a callgrind dump, highest first, with the share of the total.

callgrind_annotate 3.19 counts a call that was already under way when the counters were zeroed (`calls=0`)
as the caller's own cost, which puts the threads' entry functions at the top of its exclusive listing; this
counts only cost lines that are not a call's.

usage: callgrind_self.py FILE [TOP] [PER]   (PER: divide every figure by this, e.g. the request count)
"""
import re
import sys

path = sys.argv[1]
top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
per = int(sys.argv[3]) if len(sys.argv) > 3 else 1
names = {}
self_cost = {}
function = None
after_call = False
total = 0
for line in open(path, encoding="utf-8", errors="replace"):
    line = line.rstrip("\n")
    if line.startswith("summary:") or line.startswith("totals:"):
        total = int(line.split()[1])
        continue
    match = re.match(r"(fn|cfn|ob|cob|fl|fi|fe|cfi|cfl)=\((\d+)\)(?: (.*))?$", line)
    if match:
        kind, ident, name = match.groups()
        if kind in ("fn", "cfn"):
            if name is not None:
                names[ident] = name
            if kind == "fn":
                function = ident
        continue
    if line.startswith("calls="):
        after_call = True
        continue
    if line and (line[0].isdigit() or line[0] in "+-*"):
        parts = line.split()
        if len(parts) >= 2 and not after_call and function is not None:
            self_cost[function] = self_cost.get(function, 0) + int(parts[1])
        after_call = False
        continue
    after_call = False

print(f"{'Ir' + ('/request' if per > 1 else ''):>14}  share  function (self cost)")
for ident, cost in sorted(self_cost.items(), key=lambda item: -item[1])[:top]:
    share = 100.0 * cost / total if total else 0.0
    print(f"{cost // per:>14,}  {share:5.1f}%  {names.get(ident, ident)}")
