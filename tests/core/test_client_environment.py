"""The client reads the environment as requests does: the proxy (``HTTP_PROXY``, ``NO_PROXY``...), through
a real forwarding proxy in a thread between the client and the emulator, and the CA bundle
(``REQUESTS_CA_BUNDLE``), against a real TLS server with a certificate made for the test."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sls_provider.core.client import RetryPolicy, WebTrackingClient
from sls_provider.core.endpoint import resolve_target
from sls_provider.core.errors import SlsRetryableError
from sls_provider.core.pack import Request
from sls_provider.emulator import SlsEmulator
from sls_provider.testing import EmulatorFactory
from tests.conftest import FAST_RETRY

PROJECT, LOGSTORE = "proj", "store"
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
)


class ForwardingProxy:
    """A plain HTTP forward proxy: records each request line, passes the request on unchanged."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.authorization: list[str | None] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                proxy.seen.append(f"{self.command} {self.path}")
                proxy.authorization.append(self.headers.get("Proxy-Authorization"))
                url = urlsplit(self.path)  # a proxy is sent the absolute URL
                body = self.rfile.read(int(self.headers["Content-Length"]))
                upstream = http.client.HTTPConnection(url.netloc, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-authorization"}
                upstream.request(self.command, url.path, body=body, headers=headers)
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
def emu(sls_emulator_factory: EmulatorFactory) -> SlsEmulator:
    return sls_emulator_factory(logstores=[(PROJECT, LOGSTORE)])


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
    # A port bound but not listening refuses connections, and no other test can take it meanwhile.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed.getsockname()[1]}")
    retry = replace(FAST_RETRY, attempts=2)
    client = WebTrackingClient(resolve_target(emu.endpoint, PROJECT, LOGSTORE), retry=retry)
    try:
        with pytest.raises(SlsRetryableError, match="Could not connect") as info:
            client.send(request(0))
    finally:
        client.close()
        closed.close()
    assert info.value.ambiguous is False  # a retry cannot store anything twice
    assert emu.count(PROJECT, LOGSTORE) == 0
    assert proxy.seen == []


def send_one(emu: SlsEmulator) -> None:
    client = WebTrackingClient(resolve_target(emu.endpoint, PROJECT, LOGSTORE))
    try:
        client.send(request(0))
    finally:
        client.close()


def test_proxy_credentials_in_the_url_are_sent_as_basic_auth(
    emu: SlsEmulator, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://etl:s%40cret@"))
    send_one(emu)
    assert proxy.authorization == ["Basic " + base64.b64encode(b"etl:s@cret").decode()]
    assert emu.count(PROJECT, LOGSTORE, "t") == 1


@pytest.mark.parametrize(
    ("variables", "through_proxy"),
    [
        ({"HTTP_PROXY": "{bare}"}, True),  # no scheme: http:// is assumed, as requests does
        ({"ALL_PROXY": "{url}"}, True),
        ({"HTTP_PROXY": "{url}", "NO_PROXY": "127.0.0.0/8"}, False),  # a CIDR range
        ({"HTTP_PROXY": "{url}", "NO_PROXY": "example.com"}, True),
    ],
)
def test_proxy_variables_are_read_as_requests_reads_them(
    emu: SlsEmulator,
    proxy: ForwardingProxy,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    through_proxy: bool,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value.format(url=proxy.url, bare=proxy.url.removeprefix("http://")))
    send_one(emu)
    assert len(proxy.seen) == (1 if through_proxy else 0)
    assert emu.count(PROJECT, LOGSTORE, "t") == 1


# -- TLS ----------------------------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sls test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTPS server that answers every POST with 200; yields its endpoint, its certificate and
    the paths posted to."""
    for name in (*PROXY_VARIABLES, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    cert, key = self_signed(tmp_path)
    posted: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            posted.append(self.path)
            self.send_response(200)
            self.send_header("x-log-requestid", "tls-1")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert, posted
    server.shutdown()
    server.server_close()


def test_the_ca_bundle_named_by_the_environment_is_trusted(
    tls_sink: tuple[str, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, cert, posted = tls_sink
    target = resolve_target(endpoint, PROJECT, LOGSTORE)
    once = RetryPolicy(attempts=1)
    client = WebTrackingClient(target, retry=once)
    with pytest.raises(SlsRetryableError, match="CERTIFICATE_VERIFY_FAILED"):
        client.send(request(0))  # certifi's bundle does not know the test's certificate
    client.close()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    client = WebTrackingClient(target, retry=once)
    assert client.send(request(1)).request_id == "tls-1"
    client.close()
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    client = WebTrackingClient(target, retry=once, verify=False)
    with pytest.warns(urllib3.exceptions.InsecureRequestWarning):  # as requests warns too
        assert client.send(request(2)).request_id == "tls-1"
    client.close()
    assert posted == [target.track_url.removeprefix(endpoint)] * 2
