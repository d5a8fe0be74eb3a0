"""Transport and lifecycle: ``SlsEmulator``, a local Simple Log Service served on a thread.

``EmulatorHandler`` speaks HTTP/1.1: it reads one request (bounded), hands it to
``responses.dispatch`` and writes the answer. Every answer carries Content-Length so keep-alive
works with pooled clients. Oversized or malformed framing is answered and the connection closed;
a truncated upload is just closed.

Binds to 127.0.0.1 unless told otherwise: the emulator has no authentication, so exposing it
(``host="0.0.0.0"``) is an explicit choice.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sls_provider.emulator.backend import EmulatorState, Record, RequestLog, select_logs
from sls_provider.emulator.errors import EmulatorError, ErrorCode
from sls_provider.emulator.faults import FaultInjector
from sls_provider.emulator.protocol import MAX_CONTENT_LENGTH, MAX_DRAIN_BYTES, HttpRequest, new_request_id
from sls_provider.emulator.quota import ShardCounters, WriteQuota
from sls_provider.emulator.responses import (
    CORS_HEADERS,
    Response,
    dispatch,
    error_response,
    finish,
    new_record,
)
from sls_provider.emulator.storage import CountKey, MemoryStore, SqliteStore, Store


# -- HTTP/1.1 transport ------------------------------------------------------------------------
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
        err = EmulatorError(code, ErrorCode.INVALID_REQUEST, message or "Malformed HTTP request.")
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

    def _refuse_framing(self, err: EmulatorError, length: int) -> None:
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
            self._refuse_framing(
                EmulatorError(411, ErrorCode.MISSING_CONTENT_LENGTH, "Send a Content-Length body."), 0
            )
            return None
        text = self.headers.get("Content-Length", "0")
        try:
            length = int(text)
            if length < 0:
                raise ValueError
        except ValueError:
            self._refuse_framing(EmulatorError.bad_body(f"Bad Content-Length {text!r}."), 0)
            return None
        if length > MAX_CONTENT_LENGTH:
            err = EmulatorError.too_large(f"Content-Length {length} is over the 3 MB limit.")
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


# -- the server and its lifecycle -----------------------------------------------------------
class _Server(ThreadingHTTPServer):
    """Threaded server that remembers open connections so ``stop()`` can end keep-alive threads."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: EmulatorState) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.state = state
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, EmulatorHandler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)

    def close_connections(self) -> None:
        with self._open_lock:
            for conn in self._open:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is normal here (faults, truncated uploads): stay quiet."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


class SlsEmulator:
    """A local SLS endpoint for tests and demos.

    ``with SlsEmulator() as emu:`` serves on ``emu.endpoint`` (127.0.0.1, a free port) until the
    block ends. ``db_path=None`` keeps everything in memory; a file path keeps logstores and logs
    in SQLite across restarts. ``auto_create=True`` creates unknown project/logstores (web
    tracking on) on their first write. ``shards``, ``quota`` and ``index`` apply to the
    ``logstores`` given here (see :meth:`create_logstore`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str | None = None,
        *,
        auto_create: bool = False,
        logstores: Iterable[tuple[str, str]] = (),
        on_request: Callable[[Record], None] | None = None,
        shards: int = 2,
        quota: WriteQuota | bool | None = None,
        index: bool = True,
    ) -> None:
        self.host = host
        self._port = port
        self.db_path = db_path
        store: Store = SqliteStore(str(db_path)) if db_path else MemoryStore()
        self._state = EmulatorState(store=store, auto_create=auto_create, on_request=on_request)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for project, logstore in logstores:
            self.create_logstore(project, logstore, shards=shards, quota=quota, index=index)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SlsEmulator:
        """Bind and serve on a daemon thread; returns ``self``. Port 0 picks a free port."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self._port), self._state)
        self._port = self._server.server_address[1]
        # A short poll interval makes stop() take ~50 ms instead of the default 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sls-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close open connections. Stored logs stay readable; ``start()`` again works."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def close(self) -> None:
        """Stop and release the database (the emulator is unusable afterwards)."""
        self.stop()
        self._state.store.close()

    def __enter__(self) -> SlsEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return self._port

    @property
    def endpoint(self) -> str:
        """``http://host:port``; a wildcard bind is reported as the loopback address to connect to."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self._port}" if ":" in host else f"http://{host}:{self._port}"

    # -- logstores -------------------------------------------------------------------------
    def create_logstore(
        self,
        project: str,
        logstore: str,
        web_tracking: bool = True,
        *,
        shards: int = 2,
        quota: WriteQuota | bool | None = None,
        index: bool = True,
    ) -> None:
        """Create (or update the web-tracking switch of) a logstore; creating a project implicitly.

        :param shards: shards the logstore's writes are spread over (round robin).
        :param quota: each shard's write quota, on raw (uncompressed) bytes and writes: a
            :class:`WriteQuota` (what it leaves ``None`` is SLS's), ``True`` for SLS's (5 MB/s with
            an index, 10 without, and 500 writes/s a shard), or ``None``/``False`` for none (the
            default: unlimited).
        :param index: whether the logstore has an index (SLS gives its shards 5 MB/s, 10 without).
        """
        self._state.quotas.set_logstore(project, logstore, shards, WriteQuota.given(quota), index=index)
        self._state.store.put_logstore(project, logstore, web_tracking)

    def set_project_quota(self, project: str, quota: WriteQuota | bool | None) -> None:
        """A write quota over all the logstores of ``project``: a :class:`WriteQuota` (what it
        leaves ``None`` is SLS's), ``True`` for SLS's (100 GB/min and 600,000 writes/min of raw
        data), ``None``/``False`` to remove it."""
        self._state.quotas.set_project(project, WriteQuota.given(quota))

    def shard_counters(self, project: str, logstore: str) -> list[ShardCounters]:
        """Accepted and refused writes (and raw and body bytes) of each shard of a logstore with a quota."""
        return self._state.quotas.counters(project, logstore)

    def project_counters(self, project: str) -> ShardCounters | None:
        """Accepted and refused writes of the project's quota, if it has one."""
        return self._state.quotas.project_counters(project)

    def set_web_tracking(self, project: str, logstore: str, enabled: bool) -> None:
        """Switch web tracking; ``KeyError`` if the logstore does not exist."""
        if self._state.store.logstore(project, logstore) is None:
            raise KeyError(f"{project}/{logstore}")
        self._state.store.put_logstore(project, logstore, enabled)

    # -- what was stored -------------------------------------------------------------------
    def get_logs(
        self,
        project: str,
        logstore: str,
        topic: str | None = None,
        *,
        query: str | None = None,
        from_time: int | None = None,
        to_time: int | None = None,
        offset: int = 0,
        line: int | None = None,
        reverse: bool = False,
    ) -> list[dict[str, str]]:
        """Stored logs as GetLogs returns them (flat dicts), in arrival order; no line cap."""
        return select_logs(
            self._state.store.batches(project, logstore, topic),
            query=query,
            from_time=from_time,
            to_time=to_time,
            offset=offset,
            line=line,
            reverse=reverse,
        )

    def count(self, project: str, logstore: str, topic: str | None = None) -> int:
        """Logs stored in a logstore (for one topic if given), without parsing them."""
        return sum(b.count for b in self._state.store.batches(project, logstore, topic))

    def counts(self) -> dict[CountKey, int]:
        """``{(project, logstore, topic): n}`` for every non-empty combination."""
        return self._state.store.counts()

    @property
    def requests(self) -> RequestLog:
        return self._state.requests

    @property
    def faults(self) -> FaultInjector:
        return self._state.faults

    def clear(self) -> None:
        """Drop stored logs, the request record, armed faults and every counter; logstores and
        quotas stay. The same as ``POST /_emulator/reset``."""
        self._state.reset()
