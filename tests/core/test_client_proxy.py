"""The client honours the environment's proxy settings (``HTTP_PROXY`` / ``NO_PROXY``), as requests and
curl do: a real forwarding proxy in a thread sits between the client and the emulator."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from sls_provider.core.client import RetryPolicy, WebTrackingClient
from sls_provider.core.endpoint import resolve_target
from sls_provider.core.errors import SlsRetryableError
from sls_provider.core.pack import Request
from sls_provider.emulator import SlsEmulator

PROJECT, LOGSTORE = "proj", "store"
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy")


class ForwardingProxy:
    """A plain HTTP forward proxy: records each request line, passes the request on unchanged."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                proxy.seen.append(f"{self.command} {self.path}")
                url = urlsplit(self.path)  # a proxy is sent the absolute URL
                body = self.rfile.read(int(self.headers["Content-Length"]))
                upstream = http.client.HTTPConnection(url.netloc, timeout=10)
                upstream.request(self.command, url.path, body=body, headers=dict(self.headers))
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ForwardingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def emu() -> Iterator[SlsEmulator]:
    with SlsEmulator() as emulator:
        emulator.create_logstore(PROJECT, LOGSTORE, web_tracking=True)
        yield emulator


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardingProxy]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with ForwardingProxy() as running:
        yield running


def request(n: int) -> Request:
    body = json.dumps({"__topic__": "t", "__tags__": {}, "__logs__": [{"n": str(n)}]}).encode()
    return Request(seq=n, topic="t", body=body, logs=1)


def test_requests_go_through_the_proxy_the_environment_names(
    emu: SlsEmulator, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    target = resolve_target(emu.endpoint, PROJECT, LOGSTORE)
    client = WebTrackingClient(target)
    try:
        client.send(request(0))
        client.send(request(1))
    finally:
        client.close()
    assert proxy.seen == [f"POST {target.track_url}"] * 2
    assert emu.count(PROJECT, LOGSTORE, "t") == 2


def test_no_proxy_sends_directly(
    emu: SlsEmulator, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    client = WebTrackingClient(resolve_target(emu.endpoint, PROJECT, LOGSTORE))
    try:
        client.send(request(0))
    finally:
        client.close()
    assert proxy.seen == []
    assert emu.count(PROJECT, LOGSTORE, "t") == 1


def test_an_unreachable_proxy_is_a_connection_error_that_sent_nothing(
    emu: SlsEmulator, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy.server.server_close()  # the port now refuses connections
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    retry = RetryPolicy(attempts=2, backoff=0.001, max_backoff=0.001)
    client = WebTrackingClient(resolve_target(emu.endpoint, PROJECT, LOGSTORE), retry=retry)
    try:
        with pytest.raises(SlsRetryableError, match="Could not connect") as info:
            client.send(request(0))
    finally:
        client.close()
    assert info.value.ambiguous is False  # a retry cannot store anything twice
    assert emu.count(PROJECT, LOGSTORE) == 0
