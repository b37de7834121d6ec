#!/usr/bin/env python3
"""One wrk run with CPU accounting: samples utime+stime of the proxy's whole process tree (and the upstream's,
and the machine's busy time) right before and right after wrk, and appends one JSON record to --jsonl.

usage: measure.py --jsonl FILE --raw FILE --target NAME --conns N --rep R --duration 10s --lua post.lua
                  [--proxy-pid PID] [--upstream-pid PID] URL
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_table():
    """pid -> (ppid, utime+stime ticks) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("latin-1")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[0] is state (field 3); ppid is field 4, utime 14, stime 15.
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def role(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return f"pid {pid}"
    if not args:
        return f"pid {pid}"
    if args[0].startswith("nginx:"):
        # nginx rewrites its argv to "nginx: master process <command line>" / "nginx: worker process".
        return " ".join(args[0].split()[:3])
    first = os.path.basename(args[0])
    rest = " ".join(args[1:])
    return f"{first} {rest}".strip()


def tree(root, table):
    """{pid: ticks} for root and all its descendants."""
    if root is None or root not in table:
        return {}
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        out[pid] = table[pid][1]
        todo.extend(children.get(pid, []))
    return out


def context_switches(pids):
    """Voluntary + involuntary context switches summed over every thread of the given processes."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if "ctxt_switches" in line:
                            total += int(line.split()[-1])
            except (OSError, ValueError):
                continue
    return total


def connections_by_process(port, pids):
    """Established connections on the proxy's listening port, per role (sampled with ss); None if unavailable."""
    try:
        out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    # Keyed by role and pid: nginx workers all share one title.
    counts = {f"{role(pid)} (pid {pid})": 0 for pid in pids if "worker" in role(pid)}
    for pid in re.findall(r"pid=(\d+)", out):
        pid = int(pid)
        if pid in pids:
            name = f"{role(pid)} (pid {pid})"
            counts[name] = counts.get(name, 0) + 1
    return counts


def machine():
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    total = sum(values[:8])
    idle = values[3] + values[4]
    return total, total - idle


def delta_by_role(before, after):
    roles = {}
    for pid, ticks in after.items():
        used = ticks - before.get(pid, 0)
        name = role(pid)
        roles[name] = roles.get(name, 0) + used
    return roles


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--jsonl", required=True)
    p.add_argument("--raw", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--conns", type=int, required=True)
    p.add_argument("--rep", type=int, default=0)
    p.add_argument("--duration", default="10s")
    p.add_argument("--threads", default="2")
    p.add_argument("--lua", required=True)
    p.add_argument("--proxy-pid", type=int)
    p.add_argument("--upstream-pid", type=int)
    p.add_argument("--database-pid", type=int, help="a database server whose CPU counts with the proxy's")
    p.add_argument("url")
    a = p.parse_args()

    command = ["wrk", f"-t{a.threads}", f"-c{a.conns}", f"-d{a.duration}", "--latency", "-s", a.lua, a.url]
    port = int(re.match(r"https?://[^/:]+:(\d+)", a.url).group(1))
    seconds = float(a.duration.rstrip("s")) if a.duration.rstrip("s").replace(".", "").isdigit() else 10.0
    table = proc_table()
    proxy_before, upstream_before = tree(a.proxy_pid, table), tree(a.upstream_pid, table)
    database_before = tree(a.database_pid, table)
    switches_before = context_switches(proxy_before)
    machine_before = machine()
    started = time.monotonic()
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    connections = None
    if a.proxy_pid:
        # Which process serves how many of wrk's connections (the kernel picks the accepting process).
        time.sleep(min(1.0, seconds / 3))
        connections = connections_by_process(port, set(proxy_before))
    stdout, _ = wrk.communicate()
    run = subprocess.CompletedProcess(command, wrk.returncode, stdout)
    wall = time.monotonic() - started
    machine_after = machine()
    table = proc_table()
    proxy_after, upstream_after = tree(a.proxy_pid, table), tree(a.upstream_pid, table)
    database_after = tree(a.database_pid, table)
    switches_after = context_switches(proxy_after)

    with open(a.raw, "w") as f:
        f.write("$ " + " ".join(command) + "\n" + run.stdout)
    match = re.search(r"^WRK_JSON (\{.*\})$", run.stdout, re.M)
    if run.returncode != 0 or not match:
        print(f"wrk failed for {a.target} c={a.conns} (exit {run.returncode}); output in {a.raw}", file=sys.stderr)
        sys.exit(1)
    record = {
        "target": a.target, "conns": a.conns, "rep": a.rep, "wall_s": wall, "clk_tck": CLK_TCK,
        "wrk": json.loads(match.group(1)),
        "machine_busy": (machine_after[1] - machine_before[1]) / max(1, machine_after[0] - machine_before[0]),
    }
    if a.proxy_pid:
        if a.proxy_pid not in proxy_after:
            print(f"{a.target}: process {a.proxy_pid} is gone after the run", file=sys.stderr)
            sys.exit(1)
        vanished = sorted(set(proxy_before) - set(proxy_after))
        record["proxy_ticks"] = sum(proxy_after.values()) - sum(proxy_before.get(pid, 0) for pid in proxy_after)
        record["proxy_roles"] = delta_by_role(proxy_before, proxy_after)
        record["proxy_procs"] = len(proxy_after)
        record["proxy_ctx_switches"] = switches_after - switches_before
        if connections is not None:
            record["connections"] = connections
        if vanished:
            record["proxy_vanished"] = vanished
    if a.database_pid:
        # Backends come and go with the pools' connections: count every process of the server's tree now.
        record["database_ticks"] = sum(database_after.values()) - sum(
            database_before.get(p, 0) for p in database_after)
    if a.upstream_pid:
        record["upstream_ticks"] = sum(upstream_after.values()) - sum(upstream_before.get(p, 0) for p in upstream_after)
    with open(a.jsonl, "a") as f:
        f.write(json.dumps(record) + "\n")
    w = record["wrk"]
    rps = w["requests"] / (w["duration_us"] / 1e6)
    cpu = ""
    if "proxy_ticks" in record and w["requests"]:
        cpu = f"  proxy cpu {record['proxy_ticks'] / CLK_TCK * 1e6 / w['requests']:.0f} us/req"
    errors = w["err_status"] + w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]
    print(f"  rep {a.rep} {a.target:<13} c={a.conns:<3} {rps:9.0f} req/s  p50 {w['p50_us'] / 1000:6.2f} ms"
          f"  p99 {w['p99_us'] / 1000:6.2f} ms  errors {errors}{cpu}  (machine busy {record['machine_busy']:.0%})",
          file=sys.stderr, flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
