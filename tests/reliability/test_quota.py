"""Write quotas, over real HTTP against the emulator's shards: throttling is not failure; an export
with no room at all fails naming the quota; ``Retry-After`` is bounded; the figures are true. The
quota counts raw (uncompressed) bytes, and so do the pacing and its cap."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sls_provider.core import export as export_module
from sls_provider.core.congestion import SendController
from sls_provider.core.errors import SlsQuotaError, SlsRetryableError
from sls_provider.emulator import SlsEmulator, WriteQuota
from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from sls_provider.testing import EmulatorFactory
from tests.conftest import FAST_RETRY, LOGSTORE, PROJECT, sls_connection

FAST = replace(FAST_RETRY, attempts=4, deadline=30)


def frame(rows: int, start: int = 0) -> pd.DataFrame:
    ids = np.arange(start, start + rows)
    rng = np.random.default_rng(7)
    return pd.DataFrame({"id": ids, "noise": rng.integers(0, 10**12, rows), "note": "some text here"})


@pytest.fixture
def quota_emulator(sls_emulator_factory: EmulatorFactory, monkeypatch: pytest.MonkeyPatch) -> SlsEmulator:
    """An emulator with no logstore yet (each test creates ``proj/store`` with its quota)."""
    emu = sls_emulator_factory()
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emu.endpoint))
    return emu


def stored_ids(emu: SlsEmulator) -> Counter[int]:
    return Counter(int(log["id"]) for log in emu.get_logs(PROJECT, LOGSTORE))


def test_a_throttled_export_completes_with_every_row_once(quota_emulator: SlsEmulator) -> None:
    # About 7.4 MB raw (2.3 MB of lz4 bodies) against 2 shards of 1.25 MB/s of raw data: several
    # seconds over the quota (a quota on compressed bytes would let it through 3x faster).
    quota_emulator.create_logstore(PROJECT, LOGSTORE, shards=2, quota=WriteQuota(mb_per_second=1.25))
    rows = 120_000
    summary = SlsWebTrackingHook(retry=FAST).put_dataframe(frame(rows), max_logs=2000)
    shards = quota_emulator.shard_counters(PROJECT, LOGSTORE)
    refused = sum(s.refused for s in shards)
    assert refused > 0 and summary.throttled == refused
    assert sum(s.accepted_raw_bytes for s in shards) == summary.raw_bytes  # each request once
    assert sum(s.accepted_body_bytes for s in shards) == summary.sent_bytes
    assert summary.throttled_seconds > 0
    assert summary.retries == 0 and summary.possible_duplicates == 0  # throttling is not a fault
    assert summary.rows == rows
    ids = stored_ids(quota_emulator)
    assert set(ids) == set(range(rows)) and sum(ids.values()) == rows  # every row, once
    assert "throttled" in summary.line() and "MB/s sent" in summary.line()


def test_two_exports_on_one_hook_each_keep_their_own_pace_and_counts(quota_emulator: SlsEmulator) -> None:
    quota_emulator.create_logstore(PROJECT, LOGSTORE, shards=2, quota=WriteQuota(mb_per_second=0.95))
    hook = SlsWebTrackingHook(retry=FAST)
    before = dict(vars(hook.client))
    summaries: dict[int, object] = {}

    def export(n: int) -> None:
        summaries[n] = hook.put_dataframe(frame(40_000, start=n * 40_000), max_logs=2000, topic=f"t{n}")

    threads = [threading.Thread(target=export, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert [summaries[n].rows for n in range(2)] == [40_000, 40_000]  # type: ignore[attr-defined]
    ids = stored_ids(quota_emulator)
    assert set(ids) == set(range(80_000)) and sum(ids.values()) == 80_000
    assert vars(hook.client) == before  # nothing set on the shared client


def test_a_logstore_that_refuses_everything_fails_after_stall_timeout(
    quota_emulator: SlsEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    quota_emulator.create_logstore(PROJECT, LOGSTORE)
    quota_emulator.faults.fail_every(1, status=403, error_code="ShardWriteQuotaExceed")
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="sls_provider.core.export"):
        with pytest.raises(SlsQuotaError) as caught:
            SlsWebTrackingHook(retry=FAST, stall_timeout=2).put_dataframe(frame(10_000), max_logs=2000)
    assert time.monotonic() - started < 60  # not the default five minutes
    # Throttled seconds count as the refusals go on: they read 0.0 when no acknowledgement ended them.
    (line,) = [r.getMessage() for r in caplog.records if "SLS export stopped after" in r.getMessage()]
    seconds = float(line.rsplit("), ", 1)[1].split(" s spent waiting")[0])
    assert seconds >= 1.5, line
    text = str(caught.value)
    assert "refused every write of this export for 2 s" in text
    assert "the logstore's write quota is the limit" in text
    assert "No write of this export was accepted at all" in text
    assert "ShardWriteQuotaExceed" in text
    assert quota_emulator.count(PROJECT, LOGSTORE) == 0


def test_time_waiting_on_throttled_answers_is_in_the_summary_in_the_service_s_words(
    quota_emulator: SlsEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    # Every write refused with 429 Throttled and Retry-After: 1 until the stall timeout ends the export.
    quota_emulator.create_logstore(PROJECT, LOGSTORE)
    quota_emulator.faults.fail_every(1, status=429, error_code="Throttled", retry_after=1)
    caplog.set_level(logging.INFO, logger="sls_provider")
    with pytest.raises(SlsQuotaError) as caught:
        SlsWebTrackingHook(retry=FAST, stall_timeout=3).put_dataframe(frame(100))
    stopped = next(r.getMessage() for r in caplog.records if "export stopped after" in r.getMessage())
    waited = float(stopped.split("), ")[-1].split(" s spent waiting")[0])
    assert waited >= 2.5, stopped  # the 3 s spent waiting, not 0.0
    assert "(429 Throttled x" in stopped and "over the write quota" not in stopped
    assert "answering 429 Throttled x" in str(caught.value)


def test_a_quota_that_closes_mid_export_fails_with_throughput_and_shards_needed(
    quota_emulator: SlsEmulator,
) -> None:
    quota_emulator.create_logstore(PROJECT, LOGSTORE)
    seen = {"n": 0}

    def close_after_three(record: dict) -> None:
        seen["n"] += 1
        if seen["n"] == 3:
            quota_emulator.faults.fail_every(1, status=403, error_code="WriteQuotaExceed")

    quota_emulator._state.on_request = close_after_three
    with pytest.raises(SlsQuotaError) as caught:
        SlsWebTrackingHook(retry=FAST, stall_timeout=2).put_dataframe(
            frame(40_000), max_logs=2000, max_workers=1
        )
    text = str(caught.value)
    assert "It achieved" in text and "MB/s of raw data" in text and "shard(s)" in text
    assert "5 MB/s of raw (uncompressed) data with an index (10 without)" in text
    assert "without an index)" in text
    assert quota_emulator.count(PROJECT, LOGSTORE) == 3 * 2000


def test_the_pacing_and_its_cap_count_raw_bytes(
    quota_emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the controller is told a request weighs is its raw body, as the quota counts it."""
    quota_emulator.create_logstore(PROJECT, LOGSTORE)
    made: list[SendController] = []
    acked: list[int] = []

    class Recording(SendController):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)  # type: ignore[arg-type]
            made.append(self)

        def on_ack(self, nbytes: int, sent_at: float) -> None:
            acked.append(nbytes)
            super().on_ack(nbytes, sent_at)

    monkeypatch.setattr(export_module, "SendController", Recording)
    summary = SlsWebTrackingHook(retry=FAST).put_dataframe(frame(10_000), max_logs=2000, max_mb_per_second=50)
    (controller,) = made
    assert controller.max_bytes_per_second == 50e6  # raw bytes/s
    ok = quota_emulator.requests.where(status=200)
    assert sorted(acked) == sorted(r["raw_bytes"] for r in ok) and len(acked) == 5
    assert controller.acked_bytes == summary.raw_bytes > 2 * summary.sent_bytes


def test_retry_after_is_bounded_by_the_deadline(quota_emulator: SlsEmulator) -> None:
    quota_emulator.create_logstore(PROJECT, LOGSTORE)
    quota_emulator.faults.fail_next(1, status=429, error_code="TooManyRequests", retry_after=120)
    policy = replace(FAST_RETRY, attempts=4, deadline=3)
    started = time.monotonic()
    summary = SlsWebTrackingHook(retry=policy).put_dataframe(frame(1000), max_workers=1)
    assert time.monotonic() - started < 60  # it waited 120 s before
    assert summary.rows == 1000 and summary.throttled == 1


def _answering(answers: list[bytes]) -> tuple[socket.socket, threading.Thread]:
    """A raw HTTP server giving ``answers`` in turn, one per connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        for answer in answers:
            conn, _ = server.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize("value", ["inf", "nan", "1e400", "-5"])
def test_non_finite_retry_after_is_ignored(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    refused = (
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: " + value.encode() + b"\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: 53\r\n\r\n"
        b'{"errorCode":"ServerBusy","errorMessage":"try later"}'
    )
    ok = b"HTTP/1.1 200 OK\r\nx-log-requestid: ok-1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    server, thread = _answering([refused, ok])
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(endpoint))
    started = time.monotonic()
    summary = SlsWebTrackingHook(retry=FAST).put_dataframe(frame(100), max_workers=1)
    assert time.monotonic() - started < 15  # not the whole 30 s deadline, nor a crash
    assert summary.rows == 100 and summary.retries == 1
    thread.join(timeout=10)
    server.close()


def test_the_failure_line_has_the_true_figures(quota_emulator: SlsEmulator, caplog) -> None:
    quota_emulator.create_logstore(PROJECT, LOGSTORE)
    seen = {"n": 0}

    def break_after_five(record: dict) -> None:
        seen["n"] += 1
        if seen["n"] == 5:
            quota_emulator.faults.fail_next(100, status=503, error_code="ServerBusy")

    quota_emulator._state.on_request = break_after_five
    with caplog.at_level(logging.ERROR, logger="sls_provider.core.export"):
        with pytest.raises(SlsRetryableError):
            SlsWebTrackingHook(retry=FAST).put_dataframe(frame(20_000), max_workers=1, max_logs=1000)
    (line,) = [r.getMessage() for r in caplog.records if "SLS export stopped after" in r.getMessage()]
    assert "5,000 rows in 5 requests" in line
    assert f"retries: {FAST.attempts - 1}" in line  # filled in before the line is logged
    assert "(0 rows/s" not in line
