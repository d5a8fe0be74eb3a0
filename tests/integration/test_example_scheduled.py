"""``dags/example_sls_export.py`` as shipped, and the getting-started DAG of ``docs/index.md`` as
printed there, run by a real scheduler (``tests/cluster.py``: LocalExecutor, a PostgreSQL metadata
DB): the first scheduled run of each exports exactly the day that has ended, every row once.
``dag.test()`` cannot show this: it infers a manual run's interval from the date it is given, while
what matters is what the scheduler gives the run it creates (issue #22: under ``schedule="@daily"``
that run exported the day that had just begun, which has no rows yet).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections import Counter
from pathlib import Path

from scripts.demo import build_warehouse
from sls_provider.emulator import SlsEmulator
from tests.cluster import ROOT, Cluster
from tests.conftest import LOGSTORE, PROJECT, sls_connection
from tests.warehouses.conftest import POSTGRES, require

DAG_ID = "example_sls_export"
#: The getting-started page's DAG: the block saved as ``~/airflow/dags/export_web_events.py``.
GUIDE_DAG_ID = "export_web_events"
GUIDE_FILE = "# ~/airflow/dags/export_web_events.py"


def guide_dag(folder: Path) -> Path:
    """The getting-started DAG exactly as ``docs/index.md`` prints it, as a file in ``folder``."""
    text = (ROOT / "docs" / "index.md").read_text()
    start = text.index(GUIDE_FILE)
    path = folder / f"{GUIDE_DAG_ID}.py"
    path.write_text(text[start : text.index("```", start)])
    return path


def test_the_first_scheduled_run_exports_the_day_that_has_ended(tmp_path: Path) -> None:
    pg = require(POSTGRES)
    # Rows on the day before yesterday, yesterday and today (UTC, the DAG's timezone), a different
    # number on each, so an export of the wrong day cannot pass.
    today = dt.datetime.now(dt.UTC).date()
    days = {str(today - dt.timedelta(days=n)): count for n, count in ((2, 300), (1, 200), (0, 100))}
    warehouse = tmp_path / "warehouse.db"
    build_warehouse(warehouse, days)
    with SlsEmulator() as emu:
        emu.create_logstore(PROJECT, LOGSTORE, web_tracking=True)
        env = {
            "AIRFLOW_CONN_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
            "AIRFLOW_CONN_SLS_DEFAULT": sls_connection(emu.endpoint),
        }
        dag_files = [ROOT / "dags" / f"{DAG_ID}.py", guide_dag(tmp_path)]
        started = time.monotonic()
        with Cluster(tmp_path / "airflow", pg, env, dag_files) as cluster:
            up = time.monotonic() - started
            assert cluster.query("SELECT filename, stacktrace FROM import_error") == []
            # The DAG is unpaused at creation with catchup=False: the scheduler creates one run, for
            # the latest period that has ended.
            run_id, state = cluster.wait_run(DAG_ID)
            [(run_type, start, end)] = cluster.query(
                "SELECT run_type, data_interval_start, data_interval_end FROM dag_run "
                f"WHERE dag_id = '{DAG_ID}' AND run_id = '{run_id}'"
            )
            assert state == "success", cluster.diagnostics()
            guide_run_id, guide_state = cluster.wait_run(GUIDE_DAG_ID)
            assert guide_state == "success", cluster.diagnostics()
            ran = time.monotonic() - started - up
        logs = emu.get_logs(PROJECT, LOGSTORE)
    print(f"\ncluster up in {up:.1f} s, run {run_id} ended in {ran:.1f} s more")

    assert run_type == "scheduled"
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    # A whole day that has ended. Which day is read from the run, not assumed: a run created just
    # after midnight UTC covers the day the test called "today".
    assert end - start == dt.timedelta(days=1) and start.time() == dt.time(0), (
        f"data interval {start} to {end}"
    )
    assert end <= dt.datetime.now(dt.UTC), f"data interval {start} to {end}"
    day = str(start.date())
    assert day in days, (day, sorted(days))
    with sqlite3.connect(warehouse) as db:
        query = "SELECT id, event_type FROM web_events WHERE event_date = ?"
        expected = dict(db.execute(query, (day,)).fetchall())
    assert len(expected) == days[day]

    # The rows of this run (tagged with its run id): exactly that day's, each once, under its topic.
    # The getting-started DAG names its source "warehouse"; the example leaves it to the service.
    def of_run(run: str, guide: bool) -> list[dict]:
        return [
            log
            for log in logs
            if log.get("__tag__:dag_run") == run and (log.get("__source__") == "warehouse") == guide
        ]

    assert guide_run_id == run_id  # the same period, so the same scheduled run id
    for events in (of_run(run_id, guide=False), of_run(guide_run_id, guide=True)):
        stored = Counter(int(log["id"]) for log in events)
        assert sorted(stored) == sorted(expected) and set(stored.values()) == {1}
        assert all(log["__topic__"] == expected[int(log["id"])] for log in events)
        assert {log["event_date"] for log in events} == {day}
    # The daily totals of the same day: one row per event type, adding up to the day's rows.
    totals = [log for log in logs if log["__topic__"] == "daily_totals" and log["day"] == day]
    assert sorted(log["event_type"] for log in totals) == sorted(set(expected.values()))
    assert sum(int(log["events"]) for log in totals) == days[day]
