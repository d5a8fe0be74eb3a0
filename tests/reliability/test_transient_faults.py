"""Transient faults injected by the emulator, over real HTTP: every row arrives; duplicates happen
only where the service stored a request whose answer was lost, exactly as many as were injected, and
each carries the tags that identify it."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sls_provider.emulator import SlsEmulator
from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from tests.conftest import FAST_RETRY, LOGSTORE, PROJECT

ROWS = 200_000
TOPICS = ("orders", "views", "errors")
# Fast backoff: only the waits' length is scaled down for the suite.
FAST = FAST_RETRY


def frame(rows: int = ROWS) -> pd.DataFrame:
    ids = np.arange(rows)
    return pd.DataFrame(
        {
            "id": ids,
            "topic": np.array(TOPICS)[ids % 3],
            "amount": ids * 0.25,
            "note": np.where(ids % 2 == 0, "héllo wörld", "plain"),
        }
    )


def stored_batches(emu: SlsEmulator) -> Counter[tuple[str, str]]:
    """How many times each request of an export was stored, by (sls_export, sls_seq)."""
    stored = [
        r
        for r in emu.requests.snapshot()
        if r["path"].endswith("/track") and (r["status"] == 200 or r["fault"] == "accept_then_fail")
    ]
    return Counter((r["tags"]["sls_export"], r["tags"]["sls_seq"]) for r in stored)


def assert_every_row_once_plus(emu: SlsEmulator, duplicates: int) -> None:
    ids = Counter(int(log["id"]) for log in emu.get_logs(PROJECT, LOGSTORE))
    assert set(ids) == set(range(ROWS)), "rows lost"
    batches = stored_batches(emu)
    assert sum(n - 1 for n in batches.values()) == duplicates
    extra_rows = sum(ids.values()) - ROWS
    assert (extra_rows > 0) == (duplicates > 0)


@pytest.mark.parametrize(
    "arm, retries",
    [
        pytest.param(
            lambda f: f.fail_every(7, status=503, error_code="ServerBusy"), None, id="every-7th-503"
        ),
        # Refusals for quota are throttling: counted as such, not as retries. (Refused with nothing
        # through, an export probes at one request a second or slower: each refusal costs ~1 s here.)
        pytest.param(lambda f: f.fail_next(6, status=429, error_code="TooManyRequests"), 0, id="burst-429"),
        pytest.param(
            lambda f: f.fail_next(6, status=403, error_code="WriteQuotaExceed"), 0, id="burst-quota-403"
        ),
        pytest.param(
            lambda f: f.fail_next(6, status=403, error_code="ShardWriteQuotaExceed", retry_after=0.05),
            0,
            id="quota-403-retry-after",
        ),
        pytest.param(lambda f: f.fail_next(4, status=502, error_code="BadGateway"), 4, id="burst-502"),
        pytest.param(lambda f: f.drop_next(5), 5, id="dropped-connections"),
    ],
)
def test_transient_failures_lose_nothing_and_duplicate_nothing(sls_conn: SlsEmulator, arm, retries) -> None:
    arm(sls_conn.faults)
    summary = SlsWebTrackingHook(retry=FAST).put_dataframe(frame(), topic_column="topic", max_workers=4)
    injected = sum(sls_conn.faults.injected.values())
    assert injected > 0
    assert summary.rows == ROWS
    assert summary.topics == {t: len(range(i, ROWS, 3)) for i, t in enumerate(TOPICS)}
    expected = retries if retries is not None else injected
    assert summary.retries == expected
    assert summary.retries + summary.throttled == injected
    assert_every_row_once_plus(sls_conn, duplicates=0)


def test_lost_answers_leave_exactly_that_many_tagged_duplicates(sls_conn: SlsEmulator) -> None:
    sls_conn.faults.accept_then_fail(4)
    summary = SlsWebTrackingHook(retry=FAST).put_dataframe(frame(), topic_column="topic")
    assert sls_conn.faults.injected["accept_then_fail"] == 4
    assert summary.rows == ROWS and summary.possible_duplicates == 4
    assert_every_row_once_plus(sls_conn, duplicates=4)
    # The duplicates are findable: every stored log carries its export id and request number.
    logs = sls_conn.get_logs(PROJECT, LOGSTORE)
    assert {log["__tag__:sls_export"] for log in logs} == {summary.export_id}
    by_request = Counter((log["__tag__:sls_seq"], log["id"]) for log in logs)
    assert sum(n - 1 for n in by_request.values()) == len(logs) - ROWS > 0


def test_answers_slower_than_the_timeout_are_retried(emulator: SlsEmulator, monkeypatch) -> None:
    from tests.conftest import sls_connection

    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, timeout=0.5))
    emulator.faults.latency(1.5, n=3)  # stored at once, answered after the client gave up
    summary = SlsWebTrackingHook(retry=FAST).put_dataframe(frame(), topic_column="topic")
    assert emulator.faults.injected["latency"] == 3
    assert summary.rows == ROWS and summary.retries == 3 and summary.possible_duplicates == 3
    assert_every_row_once_plus(emulator, duplicates=3)


def test_retries_run_out_with_a_clear_error(sls_conn: SlsEmulator) -> None:
    from sls_provider.core.errors import SlsRetryableError

    sls_conn.faults.fail_next(100, status=503, error_code="ServerBusy")
    policy = replace(FAST_RETRY, attempts=3, deadline=30)
    with pytest.raises(SlsRetryableError, match=r"503 ServerBusy.*request id \w+.*project 'proj'"):
        SlsWebTrackingHook(retry=policy).put_dataframe(frame(5000), max_workers=1, max_logs=1000)
    assert len(sls_conn.requests.snapshot()) == 3  # one request, three attempts, then the error
