"""Rows inserted before the resume point between a failed try and its retry: nothing is lost, rows
the first try stored are sent again in other requests, and the summary counts them (they were only in
a warning, and ``possible_duplicates`` said 0)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sls_provider.core.client import RetryPolicy, WebTrackingClient
from sls_provider.core.endpoint import resolve_target
from sls_provider.core.errors import SlsRequestError
from sls_provider.core.export import Exporter
from sls_provider.core.ledger import Ledger
from sls_provider.core.options import ExportOptions
from sls_provider.emulator import SlsEmulator
from tests.conftest import LOGSTORE, PROJECT


class Store(dict):
    def set(self, key: str, value: Any) -> None:
        self[key] = value

    def delete(self, key: str) -> None:
        self.pop(key, None)


def rows(ids: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "v": ids * 3})


def test_rows_inserted_before_the_resume_point_are_counted(emulator: SlsEmulator) -> None:
    client = WebTrackingClient(
        resolve_target(emulator.endpoint, PROJECT, LOGSTORE), retry=RetryPolicy(attempts=1)
    )
    options = ExportOptions(max_logs=1000, max_workers=1)
    store = Store()
    acked = Counter[str]()

    def fail_after_ten(record: dict) -> None:
        if record["status"] == 200:
            acked["n"] += 1
            if acked["n"] == 10:
                emulator.faults.fail_next(1, status=400, error_code="InvalidKey")

    emulator._state.on_request = fail_after_ten
    first = Exporter(client, options, Ledger("e1", store=store), export_id="e1")
    with pytest.raises(SlsRequestError):
        first.run([rows(np.arange(40_000))])
    emulator._state.on_request = None
    # 5,000 rows come before the first try's 10,000 in the ORDER BY: every request it stored changed.
    second = Exporter(client, options, Ledger("e1", store=store), export_id="e1")
    summary = second.run([rows(np.arange(-5_000, 40_000))])

    copies = Counter(int(log["id"]) for log in emulator.get_logs(PROJECT, LOGSTORE))
    assert set(copies) == set(range(-5_000, 40_000))  # nothing lost
    twice = sum(1 for n in copies.values() if n == 2)
    assert twice == 10_000  # the first try's rows, all sent again in other requests
    # Only request #10, refused by the 400 and so still on record as sent: none of the duplicates
    # above shares an (sls_export, sls_seq) with its first copy, which is what this figure counts.
    assert summary.possible_duplicates == 1
    assert (summary.changed_requests, summary.changed_rows) == (10, 10_000)
    assert "requests whose rows changed since an earlier try" in summary.line()
