"""A million rows with one request in ten failing transiently: exact counts at the end."""

from __future__ import annotations

from sls_provider.emulator import SlsEmulator
from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from tests.conftest import LOGSTORE, PROJECT
from tests.reliability.test_transient_faults import FAST, TOPICS, frame, stored_batches

ROWS = 1_000_000


def test_soak_million_rows_ten_percent_transient_failures(sls_conn: SlsEmulator) -> None:
    sls_conn.faults.fail_fraction(0.10, seed=7, status=503, error_code="ServerBusy")
    summary = SlsWebTrackingHook(retry=FAST).put_dataframe(
        frame(ROWS), topic_column="topic", max_workers=4, chunksize=100_000
    )
    failed = sls_conn.faults.injected["fail_fraction"]
    attempts = len(sls_conn.requests.where(path=f"/logstores/{LOGSTORE}/track"))
    assert 0.05 < failed / attempts < 0.15  # the fault rate the soak asked for
    expected = {t: len(range(i, ROWS, 3)) for i, t in enumerate(TOPICS)}
    assert summary.rows == ROWS and summary.topics == expected
    assert summary.retries == failed
    assert sls_conn.counts() == {(PROJECT, LOGSTORE, t): n for t, n in expected.items()}
    batches = stored_batches(sls_conn)
    assert len(batches) == summary.requests and set(batches.values()) == {1}
