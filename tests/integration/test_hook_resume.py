"""The hook owns resume: ``SlsWebTrackingHook.resumable_export`` decides the export id once, keeps the
ledger in the state store while the export is unfinished, and removes it when the export ends."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from sls_provider.core.options import ExportOptions
from sls_provider.emulator import SlsEmulator
from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from tests.conftest import LOGSTORE, PROJECT

KEY = "sls_export_ledger"
OWNER = "dag\x00task\x00run\x00-1"


class Store(dict):
    """Airflow's task state store as the ledger uses it: JSON values by key."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value

    def delete(self, key: str) -> None:
        self.pop(key, None)


class AfterTheExport(Exception):
    """A step after the rows were sent fails (the watermark's write, say)."""


def frame(n: int = 5_000) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "v": [f"row {i}" for i in range(n)]})


def test_a_failed_try_keeps_the_export_and_the_next_try_resumes_it(sls_conn: SlsEmulator) -> None:
    hook, store, options = SlsWebTrackingHook(), Store(), ExportOptions(max_logs=1000, max_workers=2)
    chunks = lambda: [frame()]  # noqa: E731

    with pytest.raises(AfterTheExport):
        with hook.resumable_export(store, key=KEY, fingerprint="f1", owner=OWNER) as first:
            # The id is in the store before a row is sent: a crash from here on keeps it.
            assert store[KEY]["export_id"] == first.export_id
            summary = first.run(chunks(), options, topic="t")
            assert (summary.rows, summary.requests, summary.resumed_requests) == (5_000, 5, 0)
            raise AfterTheExport

    assert store[KEY]["export_id"] == first.export_id  # kept for the next try
    with hook.resumable_export(store, key=KEY, fingerprint="f1", owner=OWNER) as second:
        assert second.export_id == first.export_id
        summary = second.run(chunks(), options, topic="t")
    # Everything was acknowledged by the first try: nothing is sent again, nothing is stored twice.
    assert (summary.rows, summary.resumed_requests, summary.resumed_rows) == (5_000, 5, 5_000)
    assert len(sls_conn.requests.where(status=200)) == 5
    assert len(sls_conn.get_logs(PROJECT, LOGSTORE)) == 5_000
    assert not any(key.startswith(KEY) for key in store)  # ended: the state is gone

    # A task cleared after its success is a new export: a new id naming the same owner.
    with hook.resumable_export(store, key=KEY, fingerprint="f1", owner=OWNER) as third:
        assert third.export_id != first.export_id
        assert third.export_id[:8] == first.export_id[:8]


def test_without_a_store_nothing_is_kept_and_every_try_is_a_new_export(sls_conn: SlsEmulator) -> None:
    hook = SlsWebTrackingHook()
    ids = []
    for _ in range(2):
        with hook.resumable_export(None, key=KEY, fingerprint="f1", owner=OWNER) as export:
            ids.append(export.export_id)
            assert export.run([frame(100)], ExportOptions()).rows == 100
    assert ids[0] != ids[1] and ids[0][:8] == ids[1][:8]
    tags = {log["__tag__:sls_export"] for log in sls_conn.get_logs(PROJECT, LOGSTORE)}
    assert tags == set(ids)
