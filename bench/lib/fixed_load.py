#!/usr/bin/env python3
"""Sends a fixed number of identical chat requests over keep-alive connections and counts the answers.

usage: fixed_load.py HOST PORT TOKEN REQUESTS CONNECTIONS [RATE]

For bench/usage_instructions.sh: instruction counts per request need a known request count, which wrk's
fixed duration does not give. Standard library only; each connection sends its next request when the
previous answer has arrived whole (Content-Length or chunked), and with RATE (requests per second, all
connections together) not before its turn. Prints one line of JSON: requests sent, answers with status 200,
other answers, and the seconds the load took.
"""
import asyncio
import json
import sys

BODY = (
    b'{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a terse assistant."},'
    b'{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":16,"temperature":0}'
)


async def read_answer(reader):
    """Reads one HTTP/1.1 response; returns its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def connection(host, port, request, budget, counts, pace):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while budget[0] > 0:
            budget[0] -= 1
            if pace:
                turn = pace["start"] + pace["next"] / pace["rate"]
                pace["next"] += 1
                delay = turn - asyncio.get_running_loop().time()
                if delay > 0:
                    await asyncio.sleep(delay)
            writer.write(request)
            status = await read_answer(reader)
            counts["ok" if status == 200 else "other"] += 1
    finally:
        writer.close()


async def main():
    host, port, token, total, connections = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    rate = float(sys.argv[6]) if len(sys.argv) > 6 else 0
    pace = {"rate": rate, "next": 0, "start": asyncio.get_running_loop().time()} if rate > 0 else None
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    budget = [total]
    counts = {"ok": 0, "other": 0}
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(connection(host, port, request, budget, counts, pace) for _ in range(connections)))
    seconds = round(asyncio.get_running_loop().time() - started, 3)
    print(json.dumps({"requests": total, "ok": counts["ok"], "other": counts["other"], "seconds": seconds}))


asyncio.run(main())
