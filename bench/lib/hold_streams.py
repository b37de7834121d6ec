#!/usr/bin/env python3
"""Open streams held at once: N streamed chat completions through one proxy, all open together.

Phases, each timed and with the proxy's CPU (every thread of every process of its tree, from
/proc/<pid>/task/<tid>/schedstat, nanoseconds) and resident memory (VmRSS summed over its processes):
  idle   – nothing open, for --idle seconds: the proxy's background CPU and its RSS before the streams;
  open   – N connections, each sends one `stream: true` request and waits for the 200 head and the first
           `data:` event (at most --concurrency opening at a time, so a listen backlog never overflows);
  hold   – all N open for --window seconds while the upstream sends one event per stream per interval:
           CPU per event delivered, RSS with N open;
  close  – the client closes every stream; until the proxy's open files are back near the idle count (bounded
           wait), then --settle seconds for whatever a finished request still does (usage rows).
A stream that fails to open (connect error, status other than 200, no first event within --open-timeout) or
that ends during the window is an error. Appends one JSON record to --jsonl.

usage: hold_streams.py --jsonl FILE --target NAME --port PORT --token TOKEN --proxy-pid PID --streams N
                       [--window 10] [--idle 2] [--settle 1] [--open-timeout 60] [--concurrency 128]
"""
import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure  # noqa: E402  (bench/lib, beside this file)

BODY = json.dumps({
    "model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
    "messages": [{"role": "user", "content": "Tell me a long story."}],
}, separators=(",", ":")).encode()
MARK = b"data:"


def tree(root):
    """Pids of root and all its descendants (the process table measure.py reads)."""
    return list(measure.tree(root, measure.proc_table()))


def cpu_ns(pids):
    """On-CPU nanoseconds of every thread of the given processes."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total


def rss_kb(pids):
    """VmRSS summed over the given processes, in kB (pages shared between processes count once per process)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def open_files(pids):
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
    return total


def machine():
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    total = sum(values[:8])
    return total, total - values[3] - values[4]


class Sample:
    """The proxy tree's CPU, RSS and open files, and the machine's busy ticks, at one moment."""

    def __init__(self, root):
        pids = tree(root)
        self.at = time.monotonic()
        self.cpu = cpu_ns(pids)
        self.rss = rss_kb(pids)
        self.files = open_files(pids)
        self.machine = machine()
        self.procs = len(pids)


def between(a, b):
    seconds = b.at - a.at
    busy = (b.machine[1] - a.machine[1]) / max(1, b.machine[0] - a.machine[0])
    return dict(seconds=round(seconds, 3), cpu_ms=round((b.cpu - a.cpu) / 1e6, 3), machine_busy=round(busy, 3))


class Streams:
    """N streams through one target; counts events received and why streams failed."""

    def __init__(self, port, token):
        self.port = port
        self.request = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY
        self.events = 0
        self.opened = 0
        self.errors = {}
        self.ended_early = 0
        self.settled = 0  # streams whose opening is over, opened or failed
        self.closing = False
        self.writers = []

    def fail(self, reason):
        self.errors[reason] = self.errors.get(reason, 0) + 1

    async def open_one(self, gate, deadline):
        """Opens one stream (bounded by the gate and the deadline); then reads it until the client closes."""
        try:
            opened, reader, tail = await self.open_stream(gate, deadline)
        finally:
            self.settled += 1
        if not opened:
            return
        self.opened += 1
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self.events += (tail + data).count(MARK)
                tail = data[-(len(MARK) - 1):]
        except OSError:
            pass
        if not self.closing:
            self.ended_early += 1

    async def open_stream(self, gate, deadline):
        """Connects, sends the request, reads the head and the first event: (opened, reader, unread tail)."""
        writer = None
        async with gate:
            try:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.fail("not opened before the deadline")
                    return False, None, b""
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), remaining)
                self.writers.append(writer)
                writer.write(self.request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), deadline - time.monotonic())
                status = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else "?"
                if status != "200":
                    self.fail(f"status {status}")
                    writer.close()
                    return False, None, b""
                tail = b""
                while True:
                    data = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
                    if not data:
                        self.fail("closed before the first event")
                        return False, None, b""
                    seen = (tail + data).count(MARK)
                    tail = data[-(len(MARK) - 1):]
                    if seen:
                        self.events += seen
                        return True, reader, tail
            except asyncio.TimeoutError:
                self.fail("no first event before the deadline")
            except Exception as e:  # connection refused or reset, a malformed head: one failed stream
                self.fail(type(e).__name__)
            if writer:
                writer.close()
            return False, None, b""

    def close_all(self):
        self.closing = True
        for writer in self.writers:
            try:
                writer.transport.abort()
            except Exception:
                pass


async def run(a):
    streams = Streams(a.port, a.token)
    idle_start = Sample(a.proxy_pid)
    await asyncio.sleep(a.idle)
    idle_end = Sample(a.proxy_pid)

    gate = asyncio.Semaphore(a.concurrency)
    deadline = time.monotonic() + a.open_timeout
    tasks = [asyncio.create_task(streams.open_one(gate, deadline)) for _ in range(a.streams)]
    # Open: until every stream is open or has failed (each is bounded by the deadline).
    while streams.settled < a.streams:
        await asyncio.sleep(0.05)
    opened = Sample(a.proxy_pid)
    events_before = streams.events
    await asyncio.sleep(a.window)
    events_window = streams.events - events_before
    held = Sample(a.proxy_pid)
    ended_early = streams.ended_early

    streams.close_all()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Until the proxy has let go of the streams' connections (client and upstream side), bounded.
    slack = max(32, a.streams // 50)
    close_deadline = time.monotonic() + 30
    while Sample(a.proxy_pid).files > idle_end.files + slack and time.monotonic() < close_deadline:
        await asyncio.sleep(0.1)
    released = Sample(a.proxy_pid)
    await asyncio.sleep(a.settle)
    closed = Sample(a.proxy_pid)

    record = dict(
        target=a.target, streams=a.streams, window_s=a.window, opened=streams.opened, errors=streams.errors,
        ended_early=ended_early, events_window=events_window, procs=held.procs,
        idle=between(idle_start, idle_end), open=between(idle_end, opened), hold=between(opened, held),
        close=between(held, closed), release_s=round(released.at - held.at, 3),
        rss_kb=dict(idle=idle_end.rss, opened=opened.rss, held=held.rss, closed=closed.rss),
        files=dict(idle=idle_end.files, held=held.files, closed=closed.files),
    )
    with open(a.jsonl, "a") as f:
        f.write(json.dumps(record) + "\n")
    failed = sum(streams.errors.values()) + ended_early
    per_event = record["hold"]["cpu_ms"] * 1000 / events_window if events_window else float("nan")
    print(f"  {a.target:<13} {a.streams:>5} streams: {streams.opened} open, {failed} failed"
          f"{' ' + json.dumps(streams.errors) if streams.errors else ''}; RSS {idle_end.rss / 1024:.0f} → "
          f"{held.rss / 1024:.0f} MB; {per_event:.1f} µs CPU per event, idle CPU included"
          f" ({events_window} events in {a.window:g} s);"
          f" open {record['open']['seconds']:.1f} s (machine busy {record['hold']['machine_busy']:.0%})",
          file=sys.stderr, flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--jsonl", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", default="")
    p.add_argument("--proxy-pid", type=int, required=True)
    p.add_argument("--streams", type=int, required=True)
    p.add_argument("--window", type=float, default=10)
    p.add_argument("--idle", type=float, default=2)
    p.add_argument("--settle", type=float, default=1)
    p.add_argument("--open-timeout", type=float, default=60)
    p.add_argument("--concurrency", type=int, default=128)
    a = p.parse_args()
    if not os.path.isdir(f"/proc/{a.proxy_pid}"):
        sys.exit(f"hold_streams: process {a.proxy_pid} is not running")
    asyncio.run(run(a))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
