#!/usr/bin/env python3
"""Fake streaming upstream for the time-to-first-byte benchmark (nginx cannot pace server-sent events).

`POST /v1/chat/completions` answers with `text/event-stream`, chunked, on a keep-alive connection: the
response head and the first `data:` event go out in one write as soon as the request body is read, then one
event every INTERVAL seconds, a final usage event, `data: [DONE]` and the last chunk. Anything else is a 404.

usage: sse_upstream.py PORT [EVENTS] [INTERVAL]     (defaults: 4 events, 0.05 s)

With many events and a long interval (the scaling figure: 1000000 events, 1 s) it holds every stream open
until the client side goes away; a stream whose connection has closed stops at its next event.
"""
import asyncio
import json
import sys

PORT = int(sys.argv[1])
EVENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
INTERVAL = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"x-request-id: bench\r\nTransfer-Encoding: chunked\r\n\r\n")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(obj) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()) + b"\n\n"


def delta(i: int, content: str, finish=None) -> bytes:
    return event({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": ({"role": "assistant", "content": content} if i == 0 else {"content": content}),
                     "finish_reason": finish}],
    })


TAIL = chunk(event({
    "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini",
    "choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": EVENTS, "total_tokens": 21 + EVENTS},
}) + event(b"[DONE]")) + b"0\r\n\r\n"


async def read_body(reader, headers) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                # Skip any trailer fields up to the blank line.
                while data != b"\r\n":
                    data = await reader.readuntil(b"\r\n")
                return body
            body += data[:-2]
    return await reader.readexactly(int(headers.get("content-length", "0")))


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            await read_body(reader, headers)
            if method != "POST" or target.split("?")[0] != "/v1/chat/completions":
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n"
                             b'{"error":"not found"}')
                await writer.drain()
                continue
            writer.write(HEAD + chunk(delta(0, "Hello")))
            await writer.drain()
            for i in range(1, EVENTS):
                await asyncio.sleep(INTERVAL)
                if writer.transport.is_closing() or reader.at_eof():
                    return
                writer.write(chunk(delta(i, " there" if i < EVENTS - 1 else "!", "stop" if i == EVENTS - 1 else None)))
                await writer.drain()
            writer.write(TAIL)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", PORT, backlog=1024)
    print(f"sse upstream ready on 127.0.0.1:{PORT}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
