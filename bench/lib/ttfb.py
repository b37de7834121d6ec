#!/usr/bin/env python3
"""Time to first byte of a streamed chat completion, for several targets in one interleaved run.

Each target gets one keep-alive connection (re-opened only if the server closes it). For every round the
targets are measured one after another (order rotated each round, so drift hits all alike), each with one
`stream: true` request; the clock starts just before the request is written and stops when the first
`data:` event has been received (decoded from the chunked body). The whole answer is then read to its end,
so the connection is reusable.

usage: ttfb.py --out FILE --requests N --warmup W --token TOKEN NAME=HOST:PORT ...
Writes JSON {name: {"ttfb_ms": [...], "head_ms": [...], "total_ms": [...], "errors": n, "statuses": {..}}}.
"""
import argparse
import json
import socket
import sys
import time

BODY = json.dumps({
    "model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
    "messages": [{"role": "user", "content": "Say hello in one short sentence."}], "max_tokens": 16,
}, separators=(",", ":")).encode()


class Closed(Exception):
    pass


class Conn:
    def __init__(self, host, port, token):
        self.host, self.port = host, port
        self.request = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY
        self.sock = None
        self.buf = b""

    def connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Closed()
        self.buf += data

    def _until(self, marker):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(marker):]
                return out
            self._fill()

    def _exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _stream(self, n, seen):
        """Pass the next `n` body bytes to `seen` piece by piece, as they arrive."""
        while n > 0:
            if not self.buf:
                self._fill()
            part, self.buf = self.buf[:n], self.buf[n:]
            n -= len(part)
            seen(part)

    def exchange(self):
        """One request; returns (status, head_s, first_data_s or None, total_s, keep_alive)."""
        if self.sock is None:
            self.connect()
        start = time.perf_counter()
        self.sock.sendall(self.request)
        head = self._until(b"\r\n\r\n")
        t_head = time.perf_counter() - start
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip().lower()
        keep_alive = headers.get("connection", "") != "close" and lines[0].startswith("HTTP/1.1")
        body = b""
        t_first = None

        def seen(data):
            nonlocal body, t_first
            body += data
            if t_first is None and b"data:" in body:
                t_first = time.perf_counter() - start

        if "chunked" in headers.get("transfer-encoding", ""):
            while True:
                size = int(self._until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while self._until(b"\r\n") != b"":
                        pass
                    break
                # Take whatever part of the chunk has arrived, so a partial first event is timed when complete.
                self._stream(size, seen)
                self._exactly(2)
        elif "content-length" in headers:
            self._stream(int(headers["content-length"]), seen)
        else:
            keep_alive = False
            try:
                while True:
                    if self.buf:
                        seen(self.buf)
                        self.buf = b""
                    self._fill()
            except Closed:
                pass
        total = time.perf_counter() - start
        if not keep_alive:
            self.close()
        return status, t_head, t_first, total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--token", default="bench")
    parser.add_argument("targets", nargs="+")
    args = parser.parse_args()

    conns = {}
    for spec in args.targets:
        name, address = spec.split("=", 1)
        host, port = address.rsplit(":", 1)
        conns[name] = Conn(host, int(port), args.token)
    results = {name: {"ttfb_ms": [], "head_ms": [], "total_ms": [], "errors": 0, "statuses": {}} for name in conns}
    names = list(conns)
    for round_no in range(args.warmup + args.requests):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            conn, result = conns[name], results[name]
            try:
                status, head, first, total = conn.exchange()
            except (OSError, Closed, ValueError, IndexError) as error:
                conn.close()
                if round_no >= args.warmup:
                    result["errors"] += 1
                    result.setdefault("error_samples", []).append(repr(error))
                continue
            if round_no < args.warmup:
                continue
            result["statuses"][str(status)] = result["statuses"].get(str(status), 0) + 1
            if status != 200 or first is None:
                result["errors"] += 1
                continue
            result["ttfb_ms"].append(first * 1000)
            result["head_ms"].append(head * 1000)
            result["total_ms"].append(total * 1000)
    for conn in conns.values():
        conn.close()
    with open(args.out, "w") as f:
        json.dump(results, f)
    bad = {n: r["errors"] for n, r in results.items() if r["errors"]}
    if bad:
        print(f"ttfb: errors {bad}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
