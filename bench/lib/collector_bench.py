#!/usr/bin/env python3
"""Collector throughput: sends N usage rows over K connections to a running openai-proxy's stats socket, as
fast as the collector reads them, and waits until every row is acknowledged (acknowledgements come only once
a row's batch has committed). Reports rows committed per second, from the first row sent to the last
acknowledgement. Rows have unique request ids, no key and no client token, so they touch no key's counts.

usage: collector_bench.py --socket PATH --rows N --connections K --out FILE
"""
import argparse
import json
import socket
import sys
import threading
import time
import uuid


def rows(count, prefix, now_ms):
    # The u2 wire format (Sources/Shared/Usage/UsageWire.swift): 21 tab-separated fields.
    out = bytearray()
    for i in range(count):
        fields = ["u2", f"{prefix}-{i}", str(now_ms), "0", "", "", "bench-collector", "POST",
                  "/v1/chat/completions", "200", "12.5", "3.1", "0", "21", "9", "30", "", "0", "0", "", ""]
        out += ("\t".join(fields) + "\n").encode()
    return bytes(out)


def connection(path, payload, count, result):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    acked = 0
    buffer = b""

    def send():
        sock.sendall(payload)

    started = time.monotonic()
    sender = threading.Thread(target=send)
    sender.start()
    while acked < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("collector closed the connection")
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"a"):
                acked = max(acked, int(line[1:]))
    finished = time.monotonic()
    sender.join()
    sock.close()
    result.append((started, finished))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--connections", type=int, default=2)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    per = a.rows // a.connections
    now_ms = int(time.time() * 1000)
    run = uuid.uuid4().hex[:8]
    payloads = [rows(per, f"bench-{run}-{c}", now_ms) for c in range(a.connections)]
    result = []
    threads = [threading.Thread(target=connection, args=(a.socket, payloads[c], per, result))
               for c in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(result) != a.connections:
        sys.exit("bench: error: a collector connection failed")
    seconds = max(end for _, end in result) - min(start for start, _ in result)
    total = per * a.connections
    report = dict(rows=total, connections=a.connections, seconds=round(seconds, 3),
                  rows_per_second=round(total / seconds))
    with open(a.out, "w") as f:
        json.dump(report, f)
    print(f"  collector: {total} rows over {a.connections} connections committed in {seconds:.2f} s:"
          f" {total / seconds:.0f} rows/s", file=sys.stderr)


if __name__ == "__main__":
    main()
