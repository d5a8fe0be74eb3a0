"""A counting PutWebTracking sink for the memory tests: answers ``200`` to every request and counts the
requests and the logs in them, without parsing or storing anything.

Logs are counted by decompressing each body (lz4 block or zlib) and counting ``marker`` (by default
``{"id":``, the start of every log whose first column is ``id``), which costs little next to JSON
parsing, so the sink keeps up with millions of rows on the test machine's spare core.
"""

from __future__ import annotations

import threading
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import lz4.block


class CountingSink:
    """``with CountingSink() as sink:`` serves on ``sink.endpoint`` until the block ends."""

    def __init__(self, marker: bytes = b'{"id":') -> None:
        self.marker = marker
        self.requests = 0
        self.logs = 0
        self.raw_bytes = 0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                raw_size = int(self.headers.get("x-log-bodyrawsize") or len(body))
                kind = self.headers.get("x-log-compresstype")
                if kind == "lz4":
                    body = lz4.block.decompress(body, uncompressed_size=raw_size)
                elif kind == "deflate":
                    body = zlib.decompress(body)
                sink.record(len(body), body.count(sink.marker))
                self.send_response(200)
                self.send_header("x-log-requestid", uuid.uuid4().hex[:24].upper())
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def record(self, raw_bytes: int, logs: int) -> None:
        with self._lock:
            self.requests += 1
            self.raw_bytes += raw_bytes
            self.logs += logs

    def reset(self) -> None:
        with self._lock:
            self.requests = self.logs = self.raw_bytes = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> CountingSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
