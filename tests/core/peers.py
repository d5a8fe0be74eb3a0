"""Raw socket servers that misbehave on purpose: they answer HTTP by hand, byte by byte if need be."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def read_request(conn: socket.socket) -> dict[str, str]:
    """Read one request (head and Content-Length body); return its headers, lower-cased names."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return {}
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    headers[":request-line"] = lines[0]
    return headers


class Peer:
    """Serves each connection with ``handler(conn, headers)`` in its own thread; counts requests."""

    def __init__(self, handler: Callable[[socket.socket, dict[str, str]], Any], *, raw: bool = False) -> None:
        self.handler = handler
        self.raw = raw  # call the handler at once, without reading a request (for TLS clients)
        self.requests: list[dict[str, str]] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.raw:
                    self.handler(conn, {})
                    return
                while not self.stopped.is_set():
                    headers = read_request(conn)
                    if not headers:
                        return
                    self.requests.append(headers)
                    if self.handler(conn, headers) is False:
                        return
            except OSError:
                return  # the client gave up: what the trickling peers are for

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


@contextmanager
def peer(handler: Callable[[socket.socket, dict[str, str]], Any], *, raw: bool = False) -> Iterator[Peer]:
    server = Peer(handler, raw=raw)
    try:
        yield server
    finally:
        server.close()


def answer(status: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def in_thread(fn: Callable[[], Any], bound: float) -> tuple[bool, Any]:
    """Run ``fn`` in a thread for at most ``bound`` seconds: ``(finished, result or exception)``.
    Without the fixes these calls hang forever; a test must fail then, not hang."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(fn())
        except BaseException as err:  # the result under test
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    return (not thread.is_alive()), (outcome[0] if outcome else None)
