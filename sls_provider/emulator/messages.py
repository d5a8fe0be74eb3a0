"""The emulator's request/answer values and the SLS-style error it raises.

Kept free of ``http.server`` so the routing code can be exercised without a socket.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any


def new_request_id() -> str:
    """An ``x-log-requestid``: 24 upper-case hex characters, like the service's."""
    return os.urandom(12).hex().upper()


class SlsError(Exception):
    """An error answered as SLS does: an HTTP status plus ``{"errorCode", "errorMessage"}``."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class HttpRequest:
    """One parsed HTTP request (body already read in full)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client_ip: str
    client_port: int = 0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    """What to answer. ``drop`` closes the connection without answering (a fault)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    close: bool = False


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer; compact separators keep big GetLogs answers small."""
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return Response(status=status, body=body, headers=all_headers)


def error_response(err: SlsError) -> Response:
    """The SLS error body; ``Retry-After`` only when a fault asked for one."""
    resp = json_response({"errorCode": err.code, "errorMessage": err.message}, status=err.status)
    if err.retry_after is not None:
        # Whole seconds are what RFC 9110 allows; round up so a client never retries early.
        resp.headers["Retry-After"] = str(max(0, int(-(-err.retry_after // 1))))
    return resp
