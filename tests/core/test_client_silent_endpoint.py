"""An endpoint that takes connections and never answers fails the export in ``first_answer`` seconds,
not after every try; a slow but working one is still waited for; "possible duplicates" counts only
tries that may really have been stored. Real sockets (tests/core/peers.py), times scaled down from
the defaults (30 s timeout, 45 s first answer, first byte of a slow endpoint after 10 s)."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import pytest

from sls_provider.core.client import RetryPolicy, WebTrackingClient
from sls_provider.core.endpoint import resolve_target
from sls_provider.core.errors import SlsRetryableError
from sls_provider.core.export import Exporter, ExportOptions
from sls_provider.core.pack import Request
from tests.core.peers import Peer, answer, peer

PROJECT, LOGSTORE = "proj", "store"
#: The defaults' tries and deadline, with short waits between tries.
POLICY = RetryPolicy(backoff=0.01, max_backoff=0.05)


def client_for(server: Peer, timeout: float, policy: RetryPolicy = POLICY) -> WebTrackingClient:
    return WebTrackingClient(
        resolve_target(server.endpoint, PROJECT, LOGSTORE), timeout=timeout, retry=policy
    )


def silent(conn: socket.socket, headers: dict[str, str]) -> bool:
    time.sleep(60)  # reads the request, never answers
    return False


def rows(n: int) -> list[dict[str, int]]:
    return [{"id": i} for i in range(n)]


def test_the_defaults_give_a_silent_endpoint_under_a_minute_and_a_slow_one_its_timeout() -> None:
    policy, timeout = RetryPolicy(), 30.0  # the hook's default timeout
    first_answer = max(policy.first_answer, 1.5 * timeout)
    assert first_answer < 60  # a never-answering endpoint fails the task within a minute
    assert timeout > 10  # an endpoint whose first byte comes after 10 s is answered in its first try


def test_a_silent_endpoint_fails_the_export_in_first_answer_seconds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sls_provider")
    with peer(silent) as server:
        client = client_for(server, timeout=1.0)  # first answer awaited max(45, 1.5) s: scaled below
        client.retry = RetryPolicy(backoff=0.01, max_backoff=0.05, first_answer=1.5)
        exporter = Exporter(client, ExportOptions(max_logs=10, max_workers=4))
        started = time.monotonic()
        with pytest.raises(SlsRetryableError) as caught:
            exporter.run([_frame(100)])
        took = time.monotonic() - started
        client.close()
    # One try of 1 s and a cut second one: 1.5 s, not 8 tries of 1 s (or 8 x 30 s by default). The
    # tries tell it apart; the time bound is for a hang, loose for a loaded machine.
    assert len(server.requests) <= 2 * 4, len(server.requests)  # two tries of each request in flight
    assert took < 30, took
    assert "Nothing answered at" in str(caught.value) and "within 1.5 s" in str(caught.value)
    stopped = next(r.getMessage() for r in caplog.records if "export stopped after" in r.getMessage())
    assert "possible duplicate" not in stopped, stopped  # nothing shows a working SLS there
    assert exporter.summary.possible_duplicates == 0
    retrying = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying:")]
    assert retrying and all(" of 8 failed, next in " in line for line in retrying), retrying
    assert retrying[0].startswith("Retrying: try 1 of 8 failed, next in 0.0 s: No answer from SLS")


def test_a_slow_but_working_endpoint_is_still_waited_for() -> None:
    # Scaled: its first byte after 1 s, with a timeout of 2 s (the defaults: 10 s and 30 s).
    def slow(conn: socket.socket, headers: dict[str, str]) -> None:
        time.sleep(1.0)
        conn.sendall(answer("200 OK", headers={"x-log-requestid": "5F0C2A"}))

    with peer(slow) as server:
        client = client_for(server, timeout=2.0, policy=RetryPolicy(first_answer=0.5))
        summary = Exporter(client, ExportOptions(max_logs=10, max_workers=2)).run([_frame(40)])
        client.close()
    assert summary.rows == 40 and summary.retries == 0


def test_unanswered_tries_count_as_possible_duplicates_once_the_endpoint_has_answered() -> None:
    # The first try of each request is swallowed, the second is answered: the endpoint works, so
    # the swallowed tries (sent whole) may have been stored.
    seen: set[str] = set()
    lock = threading.Lock()

    def first_lost(conn: socket.socket, headers: dict[str, str]) -> bool:
        with lock:
            again = headers["x-log-bodyrawsize"] + headers.get(":request-line", "") in seen
            seen.add(headers["x-log-bodyrawsize"] + headers.get(":request-line", ""))
        if not again:
            time.sleep(3)
            return False
        conn.sendall(answer("200 OK", headers={"x-log-requestid": "5F0C2A"}))
        return True

    with peer(first_lost) as server:
        client = client_for(server, timeout=0.5)
        summary = Exporter(client, ExportOptions(max_workers=1)).run([_frame(10)])
        client.close()
    assert summary.rows == 10 and summary.retries == 1 and summary.possible_duplicates == 1


def test_a_try_cut_while_sending_the_body_is_not_a_possible_duplicate() -> None:
    # A peer that takes the connection and never reads: a body larger than the socket buffers
    # cannot all go out, so the service cannot have it, whatever the try's end.
    def never_reads(conn: socket.socket, headers: dict[str, str]) -> None:
        time.sleep(30)

    body = os.urandom(32 * 1024 * 1024)
    with peer(never_reads, raw=True) as server:
        client = WebTrackingClient(
            resolve_target(server.endpoint, PROJECT, LOGSTORE),
            timeout=0.5,
            compress_type="none",
            retry=RetryPolicy(attempts=1),
        )
        with pytest.raises(SlsRetryableError) as caught:
            client.send(Request(seq=0, topic="t", body=body, logs=1))
        client.close()
    assert caught.value.ambiguous is False, caught.value


def _frame(n: int):  # type: ignore[no-untyped-def]
    import pandas as pd

    return pd.DataFrame({"id": range(n), "note": [json.dumps({"n": i}) for i in range(n)]})
