#!/usr/bin/env python3
"""Builds the markdown report from a bench run's raw data directory (runs.jsonl, ttfb.json, keys.json,
streams.jsonl, cursor.jsonl, shutdown.json, collector.json, wal.json, env.md). Medians over the measured runs
(rep >= 1); rep 0 is the warm-up.

usage: report.py --raw DIR [--elapsed SECONDS]
"""
import argparse
import json
import math
import os
import re
import statistics

TARGETS = ["direct", "nginx", "openai-proxy", "openai-proxy-usage-off", "openai-proxy-postgresql"]
# Issue 13's goals, against nginx proxy_pass in the same run.
CPU_ON_TARGET = 3.0     # openai-proxy CPU per request <= 3 x nginx's, usage on
CPU_OFF_TARGET = 2.0    # ... <= 2 x nginx's with OPENAI_PROXY_USAGE=off
RPS_TARGET = 0.5        # openai-proxy req/s >= 0.5 x nginx's at c=16 and c=64
P99_TARGET_MS = 3.0     # openai-proxy's added p99 at c=64 within 3 ms of nginx's
P99_TARGET_CONNS = 64
USAGE_TARGET = 1.15     # CPU per request with usage on <= 1.15 x usage off
KEY_TARGET = 1.0        # per-key deviation from the mean <= 1 %


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def load_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def pct(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(us):
    return us / 1000.0


def rps(run):
    w = run["wrk"]
    return w["requests"] / (w["duration_us"] / 1e6)


def cpu_us_per_request(run, ticks_key="proxy_ticks"):
    if ticks_key not in run or not run["wrk"]["requests"]:
        return None
    return run[ticks_key] / run["clk_tck"] * 1e6 / run["wrk"]["requests"]


def total_cpu_us_per_request(run):
    """The proxy's CPU per request, plus its database server's when it has one of its own (PostgreSQL)."""
    proxy = cpu_us_per_request(run)
    database = cpu_us_per_request(run, "database_ticks")
    return None if proxy is None else proxy + (database or 0)


def socket_errors(run):
    w = run["wrk"]
    return w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]


def worker_order(name):
    """Sort key for 'openai-proxy worker --index N (pid P)' / 'nginx: worker process (pid P)'."""
    m = re.search(r"--index (\d+)", name)
    p = re.search(r"pid (\d+)", name)
    return (int(m.group(1)) if m else 0, int(p.group(1)) if p else 0)


def fmt(value, digits=2, suffix=""):
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def verdict(ok):
    return "**met**" if ok else "**MISSED**"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--raw", required=True)
    p.add_argument("--elapsed", type=int)
    a = p.parse_args()
    raw = a.raw

    runs = load_jsonl(os.path.join(raw, "runs.jsonl"))
    measured = [r for r in runs if r["rep"] >= 1]
    conns_levels = sorted({r["conns"] for r in measured})
    reps = max((r["rep"] for r in measured), default=0)
    out = []
    w = out.append

    w("# openai-proxy benchmark report")
    w("")
    w("## Environment")
    w("")
    with open(os.path.join(raw, "env.md")) as f:
        w(f.read().rstrip())
    if a.elapsed:
        w(f"- bench run time: {a.elapsed // 60} min {a.elapsed % 60} s; raw data: `{os.path.relpath(raw)}`")
    w("")

    # ------------------------------------------------------------------ throughput
    summary = {}
    for conns in conns_levels:
        for target in TARGETS:
            rs = [r for r in measured if r["conns"] == conns and r["target"] == target]
            if not rs:
                continue
            cpus = [c for c in (total_cpu_us_per_request(r) for r in rs) if c is not None]
            db_cpus = [c for c in (cpu_us_per_request(r, "database_ticks") for r in rs) if c is not None]
            summary[(conns, target)] = dict(
                n=len(rs),
                rps=statistics.median(rps(r) for r in rs),
                rps_min=min(rps(r) for r in rs), rps_max=max(rps(r) for r in rs),
                p50=statistics.median(ms(r["wrk"]["p50_us"]) for r in rs),
                p99=statistics.median(ms(r["wrk"]["p99_us"]) for r in rs),
                p99_max=max(ms(r["wrk"]["p99_us"]) for r in rs),
                non2xx=sum(r["wrk"]["err_status"] for r in rs),
                sockerr=sum(socket_errors(r) for r in rs),
                requests=sum(r["wrk"]["requests"] for r in rs),
                cpu=statistics.median(cpus) if cpus else None,
                db_cpu=statistics.median(db_cpus) if db_cpus else None,
                up_cpu=statistics.median(cpu_us_per_request(r, "upstream_ticks") for r in rs),
                busy=statistics.median(r["machine_busy"] for r in rs),
            )
    w(f"## Non-streaming throughput (wrk, POST /v1/chat/completions, median of {reps} runs)")
    w("")
    w("| conns | target | req/s | req/s min–max | p50 ms | p99 ms | non-2xx | socket errors | proxy CPU µs/req |"
      " upstream CPU µs/req | machine busy |")
    w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (conns, target), s in summary.items():
        w(f"| {conns} | {target} | {s['rps']:.0f} | {s['rps_min']:.0f}–{s['rps_max']:.0f} | {s['p50']:.2f} | "
          f"{s['p99']:.2f} | {s['non2xx']} | {s['sockerr']} | {fmt(s['cpu'], 0)} | {s['up_cpu']:.0f} | {s['busy']:.0%} |")
    w("")
    w("non-2xx = wrk's count of responses with status ≥ 400, summed over all runs; socket errors = connect + read +"
      " write + timeout errors, summed. Proxy CPU = utime+stime of the proxy's whole process tree (openai-proxy:"
      " supervisor + collector + admin + workers; nginx: master + workers; openai-proxy-postgresql: also the"
      " PostgreSQL server's processes) over the run ÷ completed requests."
      " Machine busy = share of both cores in use during the run (wrk, upstream and proxy all share them).")
    w("")

    # ------------------------------------------------------------------ ratios and targets
    w("## Targets and ratios (computed within this run, from the medians above)")
    w("")
    w("| check | " + " | ".join(f"c={c}" for c in conns_levels) + " | target | result |")
    w("|---|" + "---:|" * len(conns_levels) + "---|---|")
    results = {}  # label -> (met or None, what was measured, target)

    def row(label, values, target, ok, summary=None):
        if ok is not None:
            measured = summary or ", ".join(f"{v} at c={c}" for v, c in zip(values, conns_levels))
            results[label] = (ok, measured, target)
        w(f"| {label} | " + " | ".join(values) + f" | {target} | {verdict(ok) if ok is not None else '–'} |")

    def get(conns, target, field):
        s = summary.get((conns, target))
        return None if s is None else s[field]

    def ratio(c, a_target, b_target, field):
        a_, b = get(c, a_target, field), get(c, b_target, field)
        return a_ / b if a_ and b else None

    def all_within(values, ok):
        return bool(values) and all(v is not None and ok(v) for v in values)

    cpu_on = [ratio(c, "openai-proxy", "nginx", "cpu") for c in conns_levels]
    row("CPU per request, openai-proxy ÷ nginx (usage on)", [fmt(r, 2, "×") for r in cpu_on],
        f"≤ {CPU_ON_TARGET:g}×", all_within(cpu_on, lambda r: r <= CPU_ON_TARGET))
    cpu_off = [ratio(c, "openai-proxy-usage-off", "nginx", "cpu") for c in conns_levels]
    row("CPU per request, openai-proxy ÷ nginx (usage off)", [fmt(r, 2, "×") for r in cpu_off],
        f"≤ {CPU_OFF_TARGET:g}×", all_within(cpu_off, lambda r: r <= CPU_OFF_TARGET))
    usage = [ratio(c, "openai-proxy", "openai-proxy-usage-off", "cpu") for c in conns_levels]
    row("CPU per request, usage on ÷ usage off", [fmt(r, 2, "×") for r in usage],
        f"≤ {USAGE_TARGET:g}×", all_within(usage, lambda r: r <= USAGE_TARGET))
    rps_on = [ratio(c, "openai-proxy", "nginx", "rps") for c in conns_levels]
    row("req/s, openai-proxy ÷ nginx (usage on)", [fmt(r, 2, "×") for r in rps_on],
        f"≥ {RPS_TARGET:g}× at " + " and ".join(f"c={c}" for c in conns_levels),
        all_within(rps_on, lambda r: r >= RPS_TARGET))
    rps_off = [ratio(c, "openai-proxy-usage-off", "nginx", "rps") for c in conns_levels]
    row("req/s, openai-proxy ÷ nginx (usage off)", [fmt(r, 2, "×") for r in rps_off], "report", None)
    # Added p99 over direct, openai-proxy's less nginx's: direct's p99 cancels out.
    extra_p99 = {c: get(c, "openai-proxy", "p99") - get(c, "nginx", "p99")
                 for c in conns_levels if get(c, "openai-proxy", "p99") is not None and get(c, "nginx", "p99") is not None}
    p99_ok = extra_p99[P99_TARGET_CONNS] <= P99_TARGET_MS if P99_TARGET_CONNS in extra_p99 else None
    row("added p99, openai-proxy's less nginx's",
        ["–" if c not in extra_p99 else f"{extra_p99[c]:+.2f} ms" for c in conns_levels],
        f"≤ {P99_TARGET_MS:g} ms at c={P99_TARGET_CONNS}", p99_ok,
        summary=f"{extra_p99.get(P99_TARGET_CONNS, 0):+.2f} ms at c={P99_TARGET_CONNS}")
    for proxy in ["nginx", "openai-proxy"]:
        for q in ["p50", "p99"]:
            values = []
            for c in conns_levels:
                a_, d = get(c, proxy, q), get(c, "direct", q)
                values.append("–" if a_ is None or d is None else f"{a_ - d:+.2f} ms")
            row(f"{proxy} added latency {q} vs direct", values, "report", None)
    for q in ["p50", "p99"]:
        values = []
        for c in conns_levels:
            on, off = get(c, "openai-proxy", q), get(c, "openai-proxy-usage-off", q)
            values.append("–" if on is None or off is None else f"{on - off:+.2f} ms ({off:.2f} → {on:.2f})")
        row(f"usage path adds {q} (usage on − off)", values, "report", None)
    if any(get(c, "openai-proxy-postgresql", "rps") for c in conns_levels):
        row("PostgreSQL ÷ SQLite CPU per request (database server included)",
            [fmt(ratio(c, "openai-proxy-postgresql", "openai-proxy", "cpu"), 2, "×")
             + f" ({fmt(get(c, 'openai-proxy-postgresql', 'db_cpu'), 0)} µs/req in the server)"
             for c in conns_levels], "report", None)
        row("PostgreSQL ÷ SQLite req/s", [fmt(ratio(c, "openai-proxy-postgresql", "openai-proxy", "rps"), 2, "×")
                                          for c in conns_levels], "report", None)
    non2xx = sum(get(c, "openai-proxy", "non2xx") or 0 for c in conns_levels)
    sockerr = sum(get(c, "openai-proxy", "sockerr") or 0 for c in conns_levels)
    row("openai-proxy non-2xx / socket errors",
        [f"{get(c, 'openai-proxy', 'non2xx')} / {get(c, 'openai-proxy', 'sockerr')}" for c in conns_levels],
        "0 / 0", non2xx == 0 and sockerr == 0)
    w("")
    if P99_TARGET_CONNS not in conns_levels:
        w(f"The p99 goal is set at c={P99_TARGET_CONNS}, which this run did not measure (BENCH_CONNECTIONS).")
        w("")

    # ------------------------------------------------------------------ openai-proxy CPU by process
    op_runs = [r for r in measured if r["target"] == "openai-proxy" and "proxy_roles" in r]
    if op_runs:
        roles = sorted({role for r in op_runs for role in r["proxy_roles"]})
        w("## openai-proxy CPU by process (µs per request, median over runs)")
        w("")
        w("| process | " + " | ".join(f"c={c}" for c in conns_levels) + " |")
        w("|---|" + "---:|" * len(conns_levels))
        def median_cells(runs, per_run):
            """One cell per connection level: the median of per_run(r) over runs that completed requests."""
            cells = []
            for c in conns_levels:
                values = [per_run(r) for r in runs if r["conns"] == c and r["wrk"]["requests"]]
                cells.append(fmt(statistics.median(values), 1) if values else "–")
            return cells

        def role_cells(runs, role):
            return median_cells(
                runs, lambda r: r["proxy_roles"].get(role, 0) / r["clk_tck"] * 1e6 / r["wrk"]["requests"])

        for role in roles:
            label = role.replace("|", "/")
            w(f"| `{label}` | " + " | ".join(role_cells(op_runs, role)) + " |")
        w("| **openai-proxy total** | " + " | ".join(median_cells(op_runs, cpu_us_per_request)) + " |")
        ng_runs = [r for r in measured if r["target"] == "nginx" and "proxy_roles" in r]
        if ng_runs:
            w("| **nginx total** | " + " | ".join(median_cells(ng_runs, cpu_us_per_request)) + " |")
            for role in sorted({role for r in ng_runs for role in r["proxy_roles"]}):
                w(f"| (nginx) `{role}` | " + " | ".join(role_cells(ng_runs, role)) + " |")
        w("")
        for proxy, rs_all in (("openai-proxy", op_runs), ("nginx", ng_runs)):
            cells = []
            for c in conns_levels:
                values = [r["proxy_ctx_switches"] / r["wrk"]["requests"] for r in rs_all
                          if r["conns"] == c and r["wrk"]["requests"] and "proxy_ctx_switches" in r]
                cells.append(fmt(statistics.median(values), 2) if values else "–")
            w(f"- {proxy} context switches per request (all threads of all its processes): "
              + ", ".join(f"c={c}: {v}" for c, v in zip(conns_levels, cells)))
        for proxy, rs_all in (("openai-proxy", op_runs), ("nginx", ng_runs)):
            parts = []
            for c in conns_levels:
                splits = []
                for r in rs_all:
                    if r["conns"] != c or "connections" not in r:
                        continue
                    counts = [n for role, n in sorted(r["connections"].items(), key=lambda kv: worker_order(kv[0]))
                              if "worker" in role]
                    splits.append("/".join(str(n) for n in counts) if counts else "?")
                if splits:
                    parts.append(f"c={c}: " + ", ".join(splits))
            if parts:
                w(f"- {proxy}: wrk connections held by each worker process (worker 1/worker 2), per run, sampled 1 s in: "
                  + "; ".join(parts))
        w("")

    # ------------------------------------------------------------------ TTFB
    ttfb = load_json(os.path.join(raw, "ttfb.json"))
    if ttfb:
        n = max(len(v["ttfb_ms"]) for v in ttfb.values())
        w(f"## Streaming time to first byte (SSE; {n} sequential keep-alive requests per target, interleaved)")
        w("")
        w("Clock starts before the request is written and stops when the first `data:` event is received. The SSE"
          " upstream sends the head and the first event at once, then an event every 50 ms.")
        w("")
        w("| target | TTFB median ms | TTFB p90 ms | TTFB p99 ms | TTFB max ms | overhead vs direct, median |"
          " overhead vs direct, p99 | whole stream median ms | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        direct = ttfb.get("direct", {}).get("ttfb_ms") or None
        for target in TARGETS:
            v = ttfb.get(target)
            if not v:
                continue
            t = v["ttfb_ms"]
            if not t:
                w(f"| {target} | – | – | – | – | – | – | – | {v['errors']} |")
                continue
            med, p99 = statistics.median(t), pct(t, 99)
            if direct and target != "direct":
                over = f"{med - statistics.median(direct):+.2f} ms | {p99 - pct(direct, 99):+.2f} ms"
            else:
                over = "– | –"
            w(f"| {target} | {med:.2f} | {pct(t, 90):.2f} | {p99:.2f} | {max(t):.1f} | {over} |"
              f" {statistics.median(v['total_ms']):.1f} | {v['errors']} |")
        w("")

    # ------------------------------------------------------------------ open streams held at once
    held = load_jsonl(os.path.join(raw, "streams.jsonl"))
    if held:
        window = held[0]["window_s"]
        w(f"## Open streams held at once (SSE, one event per stream per second, {window:g} s held)")
        w("")
        w("| streams | target | served | errors | RSS idle MB | RSS with all open MB | RSS per stream KB |"
          " CPU µs per event | CPU µs per stream (open + close) | idle CPU ms/s | all open after s | machine busy |")
        w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        failures = {}
        for h in sorted(held, key=lambda h: (h["streams"], TARGETS.index(h["target"]) if h["target"] in TARGETS else 9)):
            n = h["streams"]
            idle_rate = h["idle"]["cpu_ms"] / h["idle"]["seconds"] if h["idle"]["seconds"] else 0.0

            def net_ms(phase):
                return max(0.0, h[phase]["cpu_ms"] - idle_rate * h[phase]["seconds"])

            served = h["opened"] - h["ended_early"]
            errors = n - served
            failures[h["target"]] = failures.get(h["target"], 0) + errors
            reasons = dict(h["errors"])
            if h["ended_early"]:
                reasons["ended while held"] = h["ended_early"]
            error_text = f"{errors}" + (" (" + ", ".join(f"{k}: {v}" for k, v in reasons.items()) + ")" if reasons else "")
            rss_idle = h["rss_kb"]["idle"]
            rss_open = max(h["rss_kb"]["opened"], h["rss_kb"]["held"])
            per_event = net_ms("hold") * 1000 / h["events_window"] if h["events_window"] else None
            per_stream = (net_ms("open") + net_ms("close")) * 1000 / n if h["opened"] else None
            w(f"| {n} | {h['target']} | {served} | {error_text} | {rss_idle / 1024:.1f} | {rss_open / 1024:.1f} |"
              f" {(rss_open - rss_idle) / n:.1f} | {fmt(per_event, 1)} | {fmt(per_stream, 0)} | {idle_rate:.1f} |"
              f" {h['open']['seconds']:.1f} | {h['hold']['machine_busy']:.0%} |")
        w("")
        w("Served = opened (200 and a first event) and still open at the end of the window; errors say why the others"
          " were not. RSS = VmRSS summed over the proxy's processes (openai-proxy: supervisor, workers, collector,"
          " admin; nginx: master and workers; pages shared between processes count once per process), sampled with"
          " nothing open and with every stream open. CPU = on-CPU time of every thread of those processes"
          " (`/proc/…/task/…/schedstat`), less the idle rate measured just before (shown: background work such as"
          " timers): per event relayed while the streams are held; per stream for opening it (connect, request,"
          " upstream connection, head, first event) and closing it (client gone, upstream closed, usage row"
          " committed). Each size opens its streams 128 at a time; openai-proxy runs with usage on,"
          " `OPENAI_PROXY_WORKER_CONNECTIONS` = largest size + 256.")
        w("")
        if "openai-proxy" in failures:
            sizes = ", ".join(str(n) for n in sorted({h["streams"] for h in held}))
            results["every held stream served (openai-proxy)"] = (
                failures["openai-proxy"] == 0, f"{failures['openai-proxy']} errors over {sizes} streams", "0 errors")

    # ------------------------------------------------------------------ keys
    keys = load_json(os.path.join(raw, "keys.json"))
    if keys and keys["keys"]:
        counts = [k["usage_count"] for k in keys["keys"]]
        mean = statistics.mean(counts)
        w("## Per-key usage after the openai-proxy runs (`keys.usage_count`)")
        w("")
        w("| key | usage_count | deviation from mean |")
        w("|---|---:|---:|")
        for k in keys["keys"]:
            dev = (k["usage_count"] - mean) / mean * 100 if mean else 0
            w(f"| {k['name']} (id {k['id']}) | {k['usage_count']} | {dev:+.3f} % |")
        max_dev = max(abs(c - mean) / mean * 100 for c in counts) if mean else 0
        w("")
        w(f"Max deviation from the mean: **{max_dev:.3f} %** (target ≤ {KEY_TARGET} %): {verdict(max_dev <= KEY_TARGET)}")
        results["per-key balance"] = (max_dev <= KEY_TARGET, f"{max_dev:.3f} % largest deviation", f"≤ {KEY_TARGET:g} %")
        op_all = [r for r in runs if r["target"] == "openai-proxy"]
        completed = sum(r["wrk"]["requests"] for r in op_all)
        cut = sum(r["conns"] for r in op_all)
        w("")
        w(f"- usage_log rows: {keys['usage_log_rows']}; sum of usage_count: {sum(counts)}; requests wrk completed"
          f" through openai-proxy (incl. warm-up): {completed} (+1 readiness check, + up to {cut} in flight when a"
          f" wrk run stopped). Rows by status: {keys['statuses']}; by worker: {keys['workers']};"
          f" errors: {keys['errors'] or 'none'}; rotation cursor position: {keys['cursor']}.")
        w("")
    shutdown = load_json(os.path.join(raw, "shutdown.json"))
    if shutdown:
        w(f"- openai-proxy stop after the load runs: SIGTERM → exit {shutdown['exit']} in {shutdown['seconds']} s.")
        w("")

    # ------------------------------------------------------------------ usage pipeline
    collector = load_json(os.path.join(raw, "collector.json"))
    wal = load_json(os.path.join(raw, "wal.json"))
    if collector or wal:
        w("## Usage pipeline")
        w("")
        if collector:
            w(f"- Collector throughput: **{collector['rows_per_second']:,} rows committed per second** —"
              f" {collector['rows']:,} rows sent over {collector['connections']} connections to the running"
              f" collector's socket, timed from the first row sent to the last acknowledgement (a row is"
              f" acknowledged only once its batch has committed; default batches of 1000 rows or 100 ms).")
        if wal:
            w(f"- WAL after {wal['seconds']} s of load (wrk -c16) with two readers keeping read transactions open"
              f" at every moment: **{wal['final_bytes'] / 1e6:.1f} MB** at the end, largest sample"
              f" {wal['max_bytes'] / 1e6:.1f} MB; usage_log rows at the end: {wal['usage_log_rows']:,}.")
        w("")

    # ------------------------------------------------------------------ cursor
    cursor = load_jsonl(os.path.join(raw, "cursor.jsonl"))
    if cursor:
        w("## Rotation cursor under contention (`cursor-bench`, concurrent processes on one SQLite database)")
        w("")
        w("| processes | block | writes/s (total) | positions/s (total) | slowest single write ms |")
        w("|---:|---:|---:|---:|---:|")
        for c in cursor:
            writes = sum(r["writes"] / r["seconds"] for r in c["runs"])
            positions = sum(r["positions"] / r["seconds"] for r in c["runs"])
            slowest = max(r["slowest_ms"] for r in c["runs"])
            w(f"| {c['procs']} | {c['block']} | {writes:.0f} | {positions:.0f} | {slowest:.2f} |")
        w("")

    # ------------------------------------------------------------------ profile
    profile = os.path.join(raw, "perf-top.txt")
    if os.path.exists(profile):
        w("## openai-proxy profile (BENCH_PERF=1, `perf record -g` of all its processes during a c=64 run)")
        w("")
        w("```")
        with open(profile) as f:
            w(f.read().rstrip())
        w("```")
        w("")

    # ------------------------------------------------------------------ verdict
    w("## Summary")
    w("")
    w("Issue 13's goals first (against nginx `proxy_pass`, medians of this run), then the bench's own checks.")
    w("")
    for label, (ok, measured, target) in results.items():
        w(f"- {label}: {measured} (target {target}): {verdict(ok)}")
    w("")

    # ------------------------------------------------------------------ appendix
    w("<details><summary>Every wrk run, in execution order (rep 0 = warm-up)</summary>")
    w("")
    w("| rep | conns | target | req/s | p50 ms | p99 ms | p99.9 ms | max ms | non-2xx | socket errors | proxy CPU µs/req |"
      " machine busy |")
    w("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        x = r["wrk"]
        w(f"| {r['rep']} | {r['conns']} | {r['target']} | {rps(r):.0f} | {ms(x['p50_us']):.2f} | {ms(x['p99_us']):.2f} |"
          f" {ms(x['p999_us']):.2f} | {ms(x['lat_max_us']):.2f} | {x['err_status']} | {socket_errors(r)} |"
          f" {fmt(cpu_us_per_request(r), 0)} | {r['machine_busy']:.0%} |")
    w("")
    w("</details>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
