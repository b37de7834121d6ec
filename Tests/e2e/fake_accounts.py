"""Per-key accounts for the fake upstream: each upstream key is its own OpenAI account, which sees only the
files, batches and stored responses created with that key, as OpenAI's accounts and projects do. Another key
naming them gets OpenAI's answer for an unknown id (404, or 400 for an id in a create call's body).

The answers have the shapes the official `openai` client parses; ids are random, so a test cannot pass by
guessing them.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any


@dataclass
class Account:
    """What one upstream key's account holds."""

    files: dict[str, tuple[dict[str, Any], bytes]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Answer:
    """What the account store answers: a JSON payload, raw bytes, or a list of server-sent events."""

    status: int
    payload: Any = None
    raw: bytes | None = None
    events: list[dict[str, Any]] | None = None


def not_found(message: str, param: str | None = None) -> Answer:
    return Answer(404, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}})


def multipart_fields(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a multipart/form-data body: name → (filename, content)."""
    message = BytesParser(policy=default_policy).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


class Accounts:
    """The accounts of every key, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str | None, Account] = {}

    def handles(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in ("/v1/files", "/v1/batches", "/v1/responses"))

    def answer(self, key: str | None, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        parts = path.split("/")[2:]  # after /v1
        body: Any = None
        if raw and "json" in headers.get("content-type", ""):
            body = json.loads(raw)
        with self._lock:
            account = self._accounts.setdefault(key, Account())
            collection = parts[0]
            if collection == "files":
                return self._files(account, method, parts, headers, raw)
            if collection == "batches":
                return self._batches(account, method, parts, body or {})
            if collection == "responses":
                return self._responses(account, method, parts, body or {})
        return not_found(f"fake upstream: no route {method} {path}")

    # -- files -------------------------------------------------------------------------------------------

    def _files(self, account: Account, method: str, parts: list[str], headers: dict[str, str], raw: bytes) -> Answer:
        if method == "POST" and len(parts) == 1:
            fields = multipart_fields(headers.get("content-type", ""), raw)
            filename, content = fields.get("file", (None, b""))
            purpose = fields.get("purpose", (None, b""))[1].decode()
            file_id = "file-" + secrets.token_hex(12)
            meta = {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": int(time.time()),
                "filename": filename or "upload",
                "purpose": purpose,
                "status": "processed",
            }
            account.files[file_id] = (meta, content)
            return Answer(200, meta)
        if method == "GET" and len(parts) == 1:
            return Answer(200, {"object": "list", "data": [meta for meta, _ in account.files.values()], "has_more": False})
        file_id = parts[1]
        if file_id not in account.files:
            return not_found(f"No such File object: {file_id}", "id")
        meta, content = account.files[file_id]
        if method == "GET" and len(parts) == 2:
            return Answer(200, meta)
        if method == "GET" and parts[2:] == ["content"]:
            return Answer(200, raw=content)
        if method == "DELETE" and len(parts) == 2:
            del account.files[file_id]
            return Answer(200, {"id": file_id, "object": "file", "deleted": True})
        return not_found(f"fake upstream: no route {method} /files/{'/'.join(parts[1:])}")

    # -- batches -----------------------------------------------------------------------------------------

    def _batches(self, account: Account, method: str, parts: list[str], body: dict[str, Any]) -> Answer:
        if method == "POST" and len(parts) == 1:
            input_file = body.get("input_file_id")
            if input_file not in account.files:
                return Answer(
                    400,
                    {
                        "error": {
                            "message": f"Invalid 'input_file_id': '{input_file}'. File not found.",
                            "type": "invalid_request_error",
                            "param": "input_file_id",
                            "code": "invalid_input_file_id",
                        }
                    },
                )
            batch_id = "batch_" + secrets.token_hex(12)
            batch = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body.get("endpoint"),
                "input_file_id": input_file,
                "completion_window": body.get("completion_window", "24h"),
                "status": "validating",
                "created_at": int(time.time()),
            }
            account.batches[batch_id] = batch
            return Answer(200, batch)
        batch_id = parts[1]
        if batch_id not in account.batches:
            return not_found(f"No batch found with id '{batch_id}'.")
        batch = account.batches[batch_id]
        if method == "GET" and len(parts) == 2:
            return Answer(200, batch)
        if method == "POST" and parts[2:] == ["cancel"]:
            batch["status"] = "cancelling"
            return Answer(200, batch)
        return not_found(f"fake upstream: no route {method} /batches/{'/'.join(parts[1:])}")

    # -- responses ---------------------------------------------------------------------------------------

    def _responses(self, account: Account, method: str, parts: list[str], body: dict[str, Any]) -> Answer:
        if method == "POST" and len(parts) == 1:
            previous = body.get("previous_response_id")
            depth = 1
            if previous is not None:
                if previous not in account.responses:
                    return Answer(
                        400,
                        {
                            "error": {
                                "message": f"Previous response with id '{previous}' not found.",
                                "type": "invalid_request_error",
                                "param": "previous_response_id",
                                "code": "previous_response_not_found",
                            }
                        },
                    )
                depth = int(account.responses[previous]["metadata"]["depth"]) + 1
            response_id = "resp_" + secrets.token_hex(12)
            text = f"step {depth}"
            response = {
                "id": response_id,
                "object": "response",
                "created_at": int(time.time()),
                "status": "completed",
                "model": body.get("model", "gpt-e2e-mini"),
                "previous_response_id": previous,
                "metadata": {"depth": str(depth)},
                "output": [
                    {
                        "type": "message",
                        "id": "msg_" + secrets.token_hex(8),
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": text, "annotations": []}],
                    }
                ],
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7},
            }
            account.responses[response_id] = response
            if body.get("stream"):
                created = dict(response, status="in_progress", output=[], usage=None)
                return Answer(
                    200,
                    events=[
                        {"type": "response.created", "sequence_number": 0, "response": created},
                        {
                            "type": "response.output_text.delta",
                            "sequence_number": 1,
                            "item_id": response["output"][0]["id"],
                            "output_index": 0,
                            "content_index": 0,
                            "delta": text,
                        },
                        {"type": "response.completed", "sequence_number": 2, "response": response},
                    ],
                )
            return Answer(200, response)
        response_id = parts[1]
        if response_id not in account.responses:
            return not_found(f"Response with id '{response_id}' not found.")
        if method == "GET" and len(parts) == 2:
            return Answer(200, account.responses[response_id])
        if method == "DELETE" and len(parts) == 2:
            del account.responses[response_id]
            return Answer(200, {"id": response_id, "object": "response", "deleted": True})
        return not_found(f"fake upstream: no route {method} /responses/{'/'.join(parts[1:])}")
