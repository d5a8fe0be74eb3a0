"""Peers that are not SLS, or not behaving: a server trickling its answer, a proxy answering 200
with a page of its own, an error page echoing the request's headers, endpoints that cannot be
reached. Real sockets, real HTTP; the servers are made here (tests/core/peers.py)."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import replace

import pandas as pd
import pytest

from sls_provider.core.client import RetryPolicy, WebTrackingClient
from sls_provider.core.endpoint import resolve_target
from sls_provider.core.errors import SlsRequestError, SlsRetryableError, SlsServiceError
from sls_provider.core.export import Exporter, ExportOptions
from sls_provider.core.ledger import Ledger
from sls_provider.core.pack import Request
from tests.conftest import FAST_RETRY
from tests.core.peers import Peer, answer, in_thread, peer
from tests.core.test_ledger import RecordingStore

PROJECT, LOGSTORE = "proj", "store"
ONCE = RetryPolicy(attempts=1)
HTML = b"<html><body><h1>Welcome to the hotel network</h1>Please log in.</body></html>"


def request() -> Request:
    body = json.dumps({"__topic__": "t", "__tags__": {}, "__logs__": [{"k": "v"}]}).encode()
    return Request(seq=3, topic="t", body=body, logs=1)


def client_for(server: Peer, **options: object) -> WebTrackingClient:
    return WebTrackingClient(resolve_target(server.endpoint, PROJECT, LOGSTORE), **options)  # type: ignore[arg-type]


def send(client: WebTrackingClient, bound: float = 60.0) -> SlsServiceError:
    finished, outcome = in_thread(lambda: client.send(request()), bound)
    client.close()
    assert finished, f"the send was still running after {bound} s"
    assert isinstance(outcome, SlsServiceError), outcome
    return outcome


# -- 1. a whole try is bounded ------------------------------------------------------------


def trickle(tail: bytes):  # type: ignore[no-untyped-def]
    """A status line, then ``tail`` one byte a second, then more header bytes forever."""

    def handler(conn: socket.socket, headers: dict[str, str]) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        data = tail + b"X-Slow: " + b"z" * 10_000
        for byte in data:
            time.sleep(0.5)
            conn.sendall(bytes([byte]))
        return False

    return handler


def test_trickled_headers_end_the_try_at_twice_the_timeout() -> None:
    with peer(trickle(b"x-log-requestid: ABC\r\n")) as server:
        started = time.monotonic()
        error = send(client_for(server, timeout=1.0, retry=ONCE))
        took = time.monotonic() - started
    assert isinstance(error, SlsRetryableError)
    assert "No complete answer" in str(error) and "2 s" in str(error)
    assert error.ambiguous is True  # the request was sent: SLS may have stored it
    assert took < 30  # generous: the limit is 2 s; without it the try never ends
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 100000\r\n",
        # No length and Connection: close: http.client hands the socket to the answer and closes
        # the connection object before the body is read; the bound must still hold.
        b"Connection: close\r\n",
    ],
)
def test_trickled_body_ends_the_try(head: bytes) -> None:
    def handler(conn: socket.socket, headers: dict[str, str]) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nx-log-requestid: ABC\r\n" + head + b"\r\n")
        for _ in range(100_000):
            time.sleep(0.5)
            conn.sendall(b"z")
        return False

    with peer(handler) as server:
        error = send(client_for(server, timeout=1.0, retry=ONCE))
    assert isinstance(error, SlsRetryableError) and "No complete answer" in str(error)


def test_the_retry_deadline_cuts_a_running_try() -> None:
    # Each try may take 2 x 20 s; the retry deadline (3 s) must still hold.
    policy = replace(FAST_RETRY, attempts=5, deadline=3)
    with peer(trickle(b"x-log-requestid: ABC\r\n")) as server:
        started = time.monotonic()
        error = send(client_for(server, timeout=20.0, retry=policy), bound=35)
        took = time.monotonic() - started
    assert isinstance(error, SlsRetryableError) and "No complete answer" in str(error)
    assert took < 35  # generous; one try alone could take 40 s without the deadline
    assert len(server.requests) == 1


def test_a_good_answer_after_a_slow_start_is_still_taken() -> None:
    # Not a timing test: 0.3 s of silence is well inside a 2 x 5 s try.
    def handler(conn: socket.socket, headers: dict[str, str]) -> None:
        time.sleep(0.3)
        conn.sendall(answer("200 OK", headers={"x-log-requestid": "5F0C2A"}))

    with peer(handler) as server:
        client = client_for(server, timeout=5.0, retry=ONCE)
        sent = client.send(request())
        client.send(request())  # the same kept-alive connection, watched again
        client.close()
    assert sent.request_id == "5F0C2A"
    assert len(server.requests) == 2


# -- 2. a 200 that is not from SLS is not delivery ----------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "says"),
    [
        ({"Content-Type": "text/html"}, HTML, ["text/html", "no x-log-requestid", "Welcome to the hotel"]),
        ({"x-log-requestid": "ABC", "Content-Type": "text/html"}, HTML, ["a body starting", "<html>"]),
        ({}, b"", ["no content type", "no x-log-requestid"]),
    ],
)
def test_a_200_that_does_not_look_like_sls_is_an_error(
    headers: dict[str, str], body: bytes, says: list[str]
) -> None:
    with peer(lambda conn, _: conn.sendall(answer("200 OK", body, headers))) as server:
        error = send(client_for(server, retry=replace(FAST_RETRY, attempts=4)))
    assert isinstance(error, SlsRequestError)  # final: asking again gets the same page
    assert error.ambiguous is True  # a proxy may have forwarded the request first
    assert error.status == 200
    message = str(error)
    assert "200 OK" in message and "not an acknowledgement from SLS" in message and "#3" in message
    for text in says:
        assert text in message
    assert len(server.requests) == 1  # not retried


def test_a_captive_portal_200_fails_the_export_and_acknowledges_nothing() -> None:
    store = RecordingStore()
    ledger = Ledger("0123456789abcdef", store=store)
    with peer(lambda conn, _: conn.sendall(answer("200 OK", HTML, {"Content-Type": "text/html"}))) as server:
        client = client_for(server, retry=ONCE)
        frames = [pd.DataFrame({"id": range(2000)})]
        with pytest.raises(SlsRequestError, match="not an acknowledgement from SLS"):
            Exporter(client, ExportOptions(max_logs=100, max_workers=1), ledger).run(frames)
        client.close()
    assert len(ledger) == 0
    assert store.writes  # the ledger was written (before the first request), but acknowledges nothing
    assert len(Ledger("0123456789abcdef", store=store)) == 0


# -- 3. error pages are not quoted ----------------------------------------------------------


def echo_headers(status: str, content_type: str = "text/html"):  # type: ignore[no-untyped-def]
    def handler(conn: socket.socket, headers: dict[str, str]) -> None:
        page = "<html><pre>" + "\n".join(f"{k}: {v}" for k, v in headers.items()) + "</pre></html>"
        conn.sendall(answer(status, page.encode(), {"Content-Type": content_type}))

    return handler


def test_an_error_page_is_named_not_quoted() -> None:
    with peer(echo_headers("502 Bad Gateway")) as server:
        error = send(client_for(server, retry=ONCE))
    message = str(error)
    assert isinstance(error, SlsRetryableError) and error.status == 502
    assert "502 Bad Gateway" in message and "text/html" in message and "not an SLS error" in message
    assert "x-log-apiversion" not in message and "<html>" not in message
    assert error.error_code is None and error.error_message is None


def test_proxy_credentials_echoed_in_a_200_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    # A plain-HTTP proxy sees Proxy-Authorization; one that answers for itself may echo it.
    def handler(conn: socket.socket, headers: dict[str, str]) -> None:
        page = f"<p>{headers.get('proxy-authorization')}</p>".encode()
        conn.sendall(answer("200 OK", page, {"Content-Type": "text/html"}))

    with peer(handler) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://etl:pr0xy-pass@127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "")
        client = WebTrackingClient(resolve_target("http://sls.example.com", PROJECT, LOGSTORE), retry=ONCE)
        error = send(client)
    assert proxy.requests[0]["proxy-authorization"].startswith("Basic ")
    token = proxy.requests[0]["proxy-authorization"].split()[1]
    assert token not in str(error) and "<p>Basic ***</p>" in str(error)


# -- 4. why a connection failed, in words ---------------------------------------------------


def test_refused_connection_says_so() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: refuses, and no other test takes it
    port = closed.getsockname()[1]
    try:
        client = WebTrackingClient(resolve_target(f"http://127.0.0.1:{port}", PROJECT, LOGSTORE), retry=ONCE)
        with pytest.raises(SlsRetryableError) as info:
            client.send(request())
    finally:
        closed.close()
    assert str(info.value) == (
        f"Could not connect to SLS at http://127.0.0.1:{port}: connection refused: "
        f"nothing is listening at 127.0.0.1:{port}"
    )
    assert info.value.ambiguous is False


def test_unresolvable_host_says_dns() -> None:
    client = WebTrackingClient(resolve_target("http://sls-test.invalid", PROJECT, LOGSTORE), retry=ONCE)
    with pytest.raises(SlsRetryableError, match=r"could not be resolved \(DNS failure\)") as info:
        client.send(request())
    assert info.value.ambiguous is False


def test_no_answer_says_how_long_was_waited() -> None:
    with peer(lambda conn, _: time.sleep(30)) as server:
        error = send(client_for(server, timeout=0.5, retry=ONCE))
    assert "no answer within 0.5 s from 127.0.0.1" in str(error) and error.ambiguous is True


def test_tls_to_a_plain_http_server_says_tls() -> None:
    with peer(lambda conn, _: conn.sendall(answer("400 Bad Request")), raw=True) as server:
        target = resolve_target(f"https://127.0.0.1:{server.port}", PROJECT, LOGSTORE)
        error = send(WebTrackingClient(target, retry=ONCE, verify=False))
    assert str(error).startswith(f"Could not connect to SLS at https://127.0.0.1:{server.port}: TLS error")
    assert "wrong version number" in str(error)
    assert error.ambiguous is False  # the handshake failed: nothing was sent
