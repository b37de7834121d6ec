#!/usr/bin/env python3
"""Sends exactly N identical non-streamed chat requests over C keep-alive connections and checks every answer.

A fixed count (not wrk's fixed duration) so that a profile of the proxy counts the same work every run. The
request is the one bench/lib/post.lua sends. Exits non-zero if any answer is not a 200 chat.completion.

usage: fixed_load.py --requests N [--connections C] --token TOKEN URL
"""
import argparse
import asyncio
import sys
import time
import urllib.parse

BODY = (
    b'{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a terse assistant."},'
    b'{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":16,"temperature":0}'
)


def request_bytes(url, token):
    parts = urllib.parse.urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nAuthorization: Bearer {token}\r\nContent-Length: {len(BODY)}\r\n\r\n"
    )
    return parts.hostname, parts.port, head.encode() + BODY


async def connection(host, port, payload, count, failures):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(count):
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length = None
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length is None:
                raise RuntimeError(f"answer without content-length: {lines[0]}")
            body = await reader.readexactly(length)
            if status != 200 or b'"chat.completion"' not in body:
                failures.append(f"{status}: {body[:200]!r}")
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--token", required=True)
    parser.add_argument("url")
    args = parser.parse_args()
    host, port, payload = request_bytes(args.url, args.token)
    # Every connection sends its share; the first ones one more when N does not divide evenly.
    shares = [args.requests // args.connections + (1 if i < args.requests % args.connections else 0)
              for i in range(args.connections)]
    failures = []
    started = time.monotonic()
    await asyncio.gather(*(connection(host, port, payload, n, failures) for n in shares if n > 0))
    elapsed = time.monotonic() - started
    if failures:
        print(f"fixed_load: {len(failures)} of {args.requests} answers were not a 200 chat.completion; "
              f"first: {failures[0]}", file=sys.stderr)
        sys.exit(1)
    print(f"{args.requests} {elapsed:.3f}")


asyncio.run(main())
