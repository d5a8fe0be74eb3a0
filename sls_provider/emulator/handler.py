"""HTTP/1.1 transport: read one request (bounded), hand it to ``app.dispatch``, write the answer.

Every answer carries Content-Length so keep-alive works with pooled clients. Oversized or
malformed framing is answered and the connection closed; a truncated upload is just closed.
"""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sls_provider.emulator.app import CORS_HEADERS, dispatch, finish, new_record
from sls_provider.emulator.limits import MAX_CONTENT_LENGTH, MAX_DRAIN_BYTES
from sls_provider.emulator.messages import HttpRequest, Response, SlsError, error_response, new_request_id
from sls_provider.emulator.state import EmulatorState


class EmulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sls-emulator"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stalls
    timeout = 60  # an idle keep-alive connection (or a stalled upload) frees its thread after this

    @property
    def state(self) -> EmulatorState:
        state: EmulatorState = self.server.state  # type: ignore[attr-defined]
        return state

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's stderr line; the emulator has its own per-request hook."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed HTTP (bad request line, unknown method...) gets an SLS-style JSON error too."""
        self.request_version = "HTTP/1.1"  # always send a status line, even for HTTP/0.9 garbage
        self.close_connection = True
        err = SlsError(code, "InvalidRequest", message or "Malformed HTTP request.")
        resp = error_response(err)
        resp.close = True
        resp.headers.update(CORS_HEADERS)
        resp.headers["x-log-requestid"] = new_request_id()
        self._write(resp)

    def _request(self, body: bytes) -> HttpRequest:
        url = urlsplit(self.path)
        return HttpRequest(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_ip=self.client_address[0],
            client_port=self.client_address[1],
        )

    def _write(self, resp: Response) -> None:
        if resp.delay:
            time.sleep(resp.delay)
        if resp.drop:
            self.close_connection = True
            return
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        if resp.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(resp.body)
        self.wfile.flush()

    def _refuse_framing(self, err: SlsError, length: int) -> None:
        """Answer before reading the body, then discard a bounded amount of it and close."""
        request_id = new_request_id()
        resp = error_response(err)
        resp.close = True
        self._write(finish(self.state, new_record(self._request(b""), request_id), resp, request_id))
        self.connection.settimeout(1.0)
        left = min(length, MAX_DRAIN_BYTES)
        try:
            while left > 0 and (chunk := self.rfile.read1(min(left, 1 << 16))):
                left -= len(chunk)
        except OSError:
            pass

    def _content_length(self) -> int | None:
        """The declared body size, or None after answering an unacceptable one."""
        if self.headers.get("Transfer-Encoding"):
            self._refuse_framing(SlsError(411, "MissingContentLength", "Send a Content-Length body."), 0)
            return None
        text = self.headers.get("Content-Length", "0")
        try:
            length = int(text)
            if length < 0:
                raise ValueError
        except ValueError:
            self._refuse_framing(SlsError(400, "PostBodyInvalid", f"Bad Content-Length {text!r}."), 0)
            return None
        if length > MAX_CONTENT_LENGTH:
            err = SlsError(400, "PostBodyTooLarge", f"Content-Length {length} is over the 3 MB limit.")
            self._refuse_framing(err, length)
            return None
        return length

    def _handle(self) -> None:
        length = self._content_length()
        if length is None:
            return
        try:
            body = self.rfile.read(length) if length else b""
        except (TimeoutError, OSError):
            body = b""
        if len(body) < length:  # truncated upload: the client went away, nothing to answer
            self.close_connection = True
            return
        request_id = new_request_id()
        self._write(dispatch(self.state, self._request(body), request_id))

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = _handle
