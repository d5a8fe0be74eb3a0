"""``incremental=`` on the Airflow installed: from 3.3 it exports; before 3.3 (no asset or task state
store) the task fails before reading or sending anything, saying why. ``make test-oldest`` runs this
file on Airflow 3.1."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from sls_provider import Incremental
from sls_provider.emulator import SlsEmulator
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.conftest import FAST_RETRY, PROJECT
from tests.dagrun import START, run
from tests.incremental_runs import fresh_emulator

pytestmark = pytest.mark.usefixtures("airflow_db")


def has_state_stores() -> bool:
    try:
        from airflow.sdk.execution_time.context import AssetStateStoreAccessors  # noqa: F401
    except ImportError:
        return False
    return True


def test_incremental_on_this_airflow(
    sls_emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    emulator: SlsEmulator = fresh_emulator(sls_emulator_factory, monkeypatch)  # an asset of its own
    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, n INTEGER)")
        db.executemany("INSERT INTO events VALUES (?, ?)", [(i, i) for i in range(1, 11)])
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    with DAG("incremental_versions", schedule=None, start_date=START) as dag:
        SlsWebTrackingOperator(
            task_id="export",
            sql="SELECT * FROM events",
            sql_conn_id="warehouse",
            incremental=Incremental("n"),
            retry=FAST_RETRY,
        )
    state = run(dag)
    if has_state_stores():
        assert state == "success"
        assert len(emulator.get_logs(PROJECT, emulator.logstore)) == 9  # n < 10: the largest waits
    else:
        assert state == "failed"
        out = capsys.readouterr().out
        assert "incremental= needs Airflow 3.3 or later" in out and "Nothing was read or sent" in out
        assert emulator.get_logs(PROJECT, emulator.logstore) == []
