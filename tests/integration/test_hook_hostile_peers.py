"""test_connection() against peers that are not SLS: error pages echoing the signed request's headers,
a captive portal, a trickling server, nothing listening. Raw socket servers (tests/core/peers.py)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from tests.conftest import LOGSTORE, PROJECT
from tests.core.peers import answer, in_thread, peer

KEY_ID, SECRET, TOKEN = "LTAI5tHostileKeyId", "s3cr3t-AccessKeySecret-value", "sts-security-token-value"


def connect(monkeypatch: pytest.MonkeyPatch, endpoint: str, **extra: object) -> None:
    conn = {
        "conn_type": "sls",
        "host": endpoint,
        "login": KEY_ID,
        "password": SECRET,
        "extra": {"project": PROJECT, "logstore": LOGSTORE, "security_token": TOKEN, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", json.dumps(conn))


def echo_page(headers: dict[str, str]) -> bytes:
    return ("<html><pre>" + "\n".join(f"{k}: {v}" for k, v in headers.items()) + "</pre></html>").encode()


def assert_no_secret(message: str) -> None:
    for secret in (KEY_ID, SECRET, TOKEN):
        assert secret not in message


def test_a_403_page_echoing_the_headers_is_not_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(conn: socket.socket, headers: dict[str, str]) -> None:
        conn.sendall(answer("403 Forbidden", echo_page(headers), {"Content-Type": "text/html"}))

    with peer(handler) as server:
        connect(monkeypatch, server.endpoint)
        ok, message = SlsWebTrackingHook().test_connection()
    assert server.requests[0]["x-acs-security-token"] == TOKEN  # the page did hold the token
    assert not ok
    assert "403 Forbidden" in message and "text/html" in message and "not an SLS error" in message
    assert "<pre>" not in message
    assert_no_secret(message)


def test_an_sls_shaped_error_echoing_the_token_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(conn: socket.socket, headers: dict[str, str]) -> None:
        body = {"errorCode": "Unauthorized", "errorMessage": f"bad {headers['authorization']} {TOKEN}"}
        conn.sendall(answer("401 Unauthorized", json.dumps(body).encode(), {"x-log-requestid": "77AB"}))

    with peer(handler) as server:
        connect(monkeypatch, server.endpoint)
        ok, message = SlsWebTrackingHook().test_connection()
    assert not ok
    assert "SLS answered 401 Unauthorized: bad LOG ***:" in message and "77AB" in message
    assert message.count("***") == 2
    assert_no_secret(message)


def test_a_captive_portal_200_is_not_a_logstore(monkeypatch: pytest.MonkeyPatch) -> None:
    page = b"<html>Welcome to the hotel network</html>"
    with peer(lambda conn, _: conn.sendall(answer("200 OK", page, {"Content-Type": "text/html"}))) as server:
        connect(monkeypatch, server.endpoint)
        ok, message = SlsWebTrackingHook().test_connection()
    assert not ok
    assert "200 OK, text/html" in message and "not an SLS answer" in message
    assert "hotel" not in message


def test_a_trickling_server_does_not_hang_the_test_button(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(conn: socket.socket, headers: dict[str, str]) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for byte in b"X-Slow: " + b"z" * 10_000:
            time.sleep(0.5)
            conn.sendall(bytes([byte]))
        return False

    with peer(handler) as server:
        connect(monkeypatch, server.endpoint, timeout=1)
        finished, outcome = in_thread(SlsWebTrackingHook().test_connection, 60)
    assert finished, "test_connection() was still running after 60 s"
    ok, message = outcome
    assert not ok and "no complete answer within 2 s" in message


def test_nothing_listening_says_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: refuses, and no other test takes it
    port = closed.getsockname()[1]
    try:
        connect(monkeypatch, f"http://127.0.0.1:{port}")
        ok, message = SlsWebTrackingHook().test_connection()
    finally:
        closed.close()
    assert not ok
    assert message == (
        f"Could not reach SLS at http://127.0.0.1:{port}: connection refused: "
        f"nothing is listening at 127.0.0.1:{port}"
    )


def test_an_unknown_host_says_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    connect(monkeypatch, "http://sls-test.invalid")
    ok, message = SlsWebTrackingHook().test_connection()
    assert not ok and "could not be resolved (DNS failure)" in message
