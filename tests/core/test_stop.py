"""An export stops when asked (the operator's ``on_kill`` sets its stop signal; a ``BaseException`` in
the calling thread does too): no request starts after the stop, waits end, tries on the wire are cut
after a short grace, and a read-ahead thread blocked in a driver is left behind. The same with real
Airflow task runs (SIGTERM, mark failed, execution_timeout): tests/reliability/test_airflow_stop.py."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sls_provider.core.client import RetryPolicy, WebTrackingClient
from sls_provider.core.endpoint import resolve_target
from sls_provider.core.errors import SlsRetryableError, SlsSourceError, SlsStoppedError
from sls_provider.core.export import Exporter
from sls_provider.core.options import ExportOptions
from sls_provider.core.pack import Request
from sls_provider.core.stop import STOP_GRACE, StopSignal
from sls_provider.emulator import SlsEmulator
from sls_provider.sources.readers import READER_JOIN, _named_errors, prefetch
from tests.conftest import LOGSTORE, PROJECT

#: A request whose start raced the stop may reach the emulator this long after it (a loaded machine).
RACE = 1.0


def frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"id": np.arange(rows), "noise": rng.integers(0, 10**12, rows)})


def client(endpoint: str, **kwargs: object) -> WebTrackingClient:
    return WebTrackingClient(resolve_target(endpoint, PROJECT, LOGSTORE), **kwargs)  # type: ignore[arg-type]


def run_until_stopped(exporter: Exporter, after: float) -> tuple[BaseException | None, float, float]:
    """Run the export on a thread, set its stop signal ``after`` seconds in: (what it raised, wall
    clock time of the stop, seconds from the stop to the end of ``run``)."""
    outcome: list[BaseException | None] = [None]

    def target() -> None:
        try:
            exporter.run([frame(40_000)])
        except BaseException as err:  # noqa: BLE001 - examined by the test
            outcome[0] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    time.sleep(after)
    stopped_wall, stopped = time.time(), time.monotonic()
    exporter.stop.set("asked by the test")
    thread.join(30)
    assert not thread.is_alive(), "the export did not stop"
    return outcome[0], stopped_wall, time.monotonic() - stopped


def track_times(emu: SlsEmulator) -> list[float]:
    return [r["time"] for r in emu.requests.snapshot() if r["path"].endswith("/track")]


def test_a_stop_ends_an_export_refused_for_quota_at_once(emulator: SlsEmulator) -> None:
    """Every write refused for quota: the retry loop and the pacing waited on until stall_timeout."""
    emulator.faults.fail_next(10**6, status=403, error_code="ShardWriteQuotaExceed")
    exporter = Exporter(
        client(emulator.endpoint), ExportOptions(max_logs=1000, max_workers=2, stall_timeout=120)
    )
    error, stopped_at, took = run_until_stopped(exporter, 2.5)
    assert isinstance(error, SlsStoppedError) and "asked by the test" in str(error)
    assert took < 3.0, f"the export took {took:.2f} s to stop"  # it waited for stall_timeout
    assert max(track_times(emulator)) < stopped_at + RACE  # no request started after the stop
    # Counted while refused, not only once an acknowledgement ends the spell (it read 0.0).
    assert exporter.summary.throttled > 0 and exporter.summary.throttled_seconds > 0.5


def test_a_stop_gives_requests_on_the_wire_a_short_grace(emulator: SlsEmulator) -> None:
    emulator.faults.latency(8.0)  # every answer comes 8 s late
    exporter = Exporter(client(emulator.endpoint), ExportOptions(max_logs=1000, max_workers=2))
    error, stopped_at, took = run_until_stopped(exporter, 1.0)
    assert isinstance(error, SlsStoppedError)
    assert took < STOP_GRACE + 3.0, f"the export took {took:.2f} s to stop"  # not the 8 s answers
    assert max(track_times(emulator)) < stopped_at + RACE
    emulator.faults.clear()


def test_a_wait_for_rows_ends_at_a_stop_and_a_blocked_reader_is_left_behind() -> None:
    stop = StopSignal()
    chunks = prefetch(_named_errors(blocked_reader(), "SELECT 1", "dbapi", None), 2, stop)
    assert next(chunks).num_rows == 1
    threading.Timer(0.3, stop.set, args=("asked by the test",)).start()
    started = time.monotonic()
    with pytest.raises(SlsStoppedError, match="asked by the test"):
        next(chunks)
    assert time.monotonic() - started < 0.3 + READER_JOIN + 1.0


class Interrupt(BaseException):
    """Stands for AirflowTaskTimeout: raised by a signal handler in the consuming thread."""


def test_an_exception_in_the_consumer_is_not_a_source_error_and_does_not_wait_for_the_reader() -> None:
    chunks = prefetch(_named_errors(blocked_reader(), "SELECT 1", "dbapi", None), 2)
    assert next(chunks).num_rows == 1

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupt("timed out")

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        started = time.monotonic()
        with pytest.raises(Interrupt):
            next(chunks)
        assert time.monotonic() - started < 0.3 + READER_JOIN + 1.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_reader_error_is_still_named() -> None:
    def failing() -> Iterator[pa.Table]:
        yield pa.table({"a": [1]})
        raise ConnectionResetError("server closed the connection")

    chunks = prefetch(_named_errors(failing(), "SELECT 1", "dbapi", None), 2)
    with pytest.raises(SlsSourceError, match="ConnectionResetError: server closed the connection"):
        list(chunks)


def blocked_reader() -> Iterator[pa.Table]:
    """One chunk, then a read that never returns (a driver on a silent socket)."""
    yield pa.table({"a": [1]})
    threading.Event().wait()
    yield pa.table({"a": [2]})


def test_a_try_that_never_connected_says_why_when_the_deadline_ends_the_retries() -> None:
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    policy = RetryPolicy(attempts=100, deadline=1.0, backoff=0.4, max_backoff=0.4)
    refused = client(f"http://127.0.0.1:{port}", retry=policy)
    request = Request(seq=0, topic="", body=b'{"__topic__":"","__logs__":[{"a":"1"}]}', logs=1)
    with pytest.raises(SlsRetryableError) as caught:
        refused.send(request)
    assert str(caught.value).startswith("Could not connect to SLS"), str(caught.value)
    assert not caught.value.ambiguous
