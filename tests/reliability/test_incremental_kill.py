"""An incremental export's task process killed with ``kill -9`` mid-run under a real scheduler
(LocalExecutor, ``tests/cluster.py``): Airflow's retry reads the window the first try decided (rows
inserted after it are left for the next run) and resumes; the next run carries on from the watermark.
Every row is stored exactly once, counted by export and request (``sls_export``, ``sls_seq``: a
request the killed try had on the wire may be stored twice, under the same tags)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from sls_provider.emulator import SlsEmulator
from tests.cluster import Cluster
from tests.conftest import LOGSTORE, PROJECT, sls_connection
from tests.warehouses.conftest import POSTGRES, heavy, require

pytestmark = pytest.mark.xdist_group("heavy")
DAG_ID = "incremental_kill"
DAG = textwrap.dedent(
    f"""
    import datetime as dt

    from airflow.sdk import DAG

    from sls_provider import Incremental
    from sls_provider.operators.web_tracking import SlsWebTrackingOperator

    with DAG("{DAG_ID}", schedule=None, start_date=dt.datetime(2026, 1, 1), max_active_runs=1) as dag:
        SlsWebTrackingOperator(
            task_id="export",
            sql="SELECT * FROM events",
            sql_conn_id="warehouse",
            incremental=Incremental("id"),
            max_workers=1,
            max_logs=10,
            retries=2,
            retry_delay=dt.timedelta(seconds=0),
        )
    """
)


def stored_requests(emu: SlsEmulator) -> dict[tuple[str, int], list[int]]:
    """``{(export id, sls_seq): ids}``, each request once however many times it was stored."""
    requests: dict[tuple[str, int], list[int]] = {}
    for log in emu.get_logs(PROJECT, LOGSTORE):
        key = (log["__tag__:sls_export"], int(log["__tag__:sls_seq"]))
        requests.setdefault(key, [])
        requests[key].append(int(log["id"]))
    # A request stored twice (sent again after the kill) holds its rows twice under one key.
    return {k: sorted(set(v)) for k, v in requests.items()}


def test_kill_9_mid_run_then_retry_and_next_run(tmp_path: Path) -> None:
    pg = require(POSTGRES)
    warehouse = tmp_path / "warehouse.db"
    with sqlite3.connect(warehouse) as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, page TEXT)")
        db.executemany("INSERT INTO events VALUES (?, ?)", [(i, f"/p/{i % 7}") for i in range(1, 301)])
    dag_file = tmp_path / f"{DAG_ID}.py"
    dag_file.write_text(DAG)
    with SlsEmulator() as emu:
        emu.create_logstore(PROJECT, LOGSTORE, web_tracking=True)
        emu.faults.latency(0.4)  # 30 requests of 10 rows: about 12 s, time to kill it midway
        env = {
            "AIRFLOW_CONN_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
            "AIRFLOW_CONN_SLS_DEFAULT": sls_connection(emu.endpoint),
        }
        with heavy("incremental kill -9 test"), Cluster(tmp_path / "airflow", pg, env, [dag_file]) as cluster:
            cluster.cli("dags", "trigger", DAG_ID, "--run-id", "r1")
            deadline = time.monotonic() + 120
            while len(emu.get_logs(PROJECT, LOGSTORE)) < 50:
                assert time.monotonic() < deadline, cluster.diagnostics()
                time.sleep(0.1)
            # Rows added after the window was decided: not the killed run's, even on its retry.
            with sqlite3.connect(warehouse) as db:
                db.executemany("INSERT INTO events VALUES (?, ?)", [(i, "late") for i in range(301, 351)])
            (pid,) = cluster.query(
                f"SELECT pid FROM task_instance WHERE dag_id = '{DAG_ID}' AND run_id = 'r1' "
                "AND state = 'running'"
            )[0]
            os.kill(pid, signal.SIGKILL)
            assert cluster.wait_run(DAG_ID, "r1", timeout=180) == ("r1", "success"), cluster.diagnostics()
            ((tries,),) = cluster.query("SELECT try_number FROM task_instance WHERE run_id = 'r1'")
            assert tries >= 2  # Airflow's retry, after the kill
            emu.faults.clear()
            cluster.cli("dags", "trigger", DAG_ID, "--run-id", "r2")
            assert cluster.wait_run(DAG_ID, "r2", timeout=120) == ("r2", "success"), cluster.diagnostics()

    requests = stored_requests(emu)
    exports = Counter(export for export, _ in requests)
    assert len(exports) == 2, exports  # the killed try and its retry are one export
    by_export: dict[str, list[int]] = {}
    for (export, _), ids in sorted(requests.items()):
        by_export.setdefault(export, []).extend(ids)
    first, second = sorted(by_export.values(), key=min)
    assert first == list(range(1, 300))  # run 1: [-, 300), in order, each once
    assert second == list(range(300, 350))  # run 2: [300, 350): 350, the largest, waits
