"""``make demo``: a SQLite warehouse, the local SLS emulator, and dags/example_sls_export.py run end to end.

Builds ``.demo/warehouse.db`` (150,000 web events over three days, five event types), starts the
emulator, runs the DAG with ``dag.test()`` on a SQLite metadata DB under ``.demo/airflow`` as the
scheduler starts it at midnight after 2026-03-01 (its data interval is that day), then checks that
the emulator holds exactly that day's rows per topic (none of the days either side), with the right
values. Exits non-zero on any mismatch. Prints only its own lines; Airflow's log stream of the
run goes to ``.demo/airflow-run.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("SLS_DEMO_DIR", ROOT / ".demo"))
DAY = "2026-03-01"  # the day exported; the warehouse also holds the days either side
DAYS = {"2026-02-28": 15_000, DAY: 120_000, "2026-03-02": 15_000}
EVENT_TYPES = ("page_view", "click", "add_to_cart", "purchase", "signup")
PROJECT, LOGSTORE = "demo-project", "web-events"


def build_warehouse(path: Path, rows_per_day: dict[str, int]) -> None:
    rng = random.Random(42)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE web_events (id INTEGER PRIMARY KEY, event_date TEXT, event_time TEXT, "
            "event_type TEXT, user_id INTEGER, page TEXT, referrer TEXT, country TEXT, revenue NUMERIC, "
            "latency_ms REAL, is_mobile BOOLEAN)"
        )
        rows, next_id = [], 0
        for day, count in rows_per_day.items():
            for i in range(count):
                kind = rng.choices(EVENT_TYPES, weights=(60, 25, 8, 4, 3))[0]
                rows.append(
                    (
                        next_id,
                        day,
                        f"{day}T{i * 86400 // count // 3600:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z",
                        kind,
                        rng.randrange(1, 20_000),
                        f"/products/{rng.randrange(500)}",
                        rng.choice([None, "https://example.com/", "https://search.example/?q=café"]),
                        rng.choice(["CN", "SG", "DE", "US", "BR"]),
                        round(rng.uniform(5, 500), 2) if kind == "purchase" else None,
                        round(rng.lognormvariate(4, 0.5), 3),
                        rng.random() < 0.6,
                    )
                )
                next_id += 1
        db.executemany("INSERT INTO web_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "airflow").mkdir(parents=True)
    warehouse = WORK / "warehouse.db"
    build_warehouse(warehouse, DAYS)
    print(f"warehouse: {warehouse} (150,000 web events over 3 days; 120,000 on {DAY})")

    os.environ.update(
        AIRFLOW_HOME=str(WORK / "airflow"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{WORK / 'airflow' / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_WAREHOUSE=json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
    )
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)

    from sls_provider.emulator import SlsEmulator

    with SlsEmulator(db_path=str(WORK / "sls.db")) as emu:
        emu.create_logstore(PROJECT, LOGSTORE, web_tracking=True)
        os.environ["AIRFLOW_CONN_SLS_DEFAULT"] = json.dumps(
            {"conn_type": "sls", "host": emu.endpoint, "extra": {"project": PROJECT, "logstore": LOGSTORE}}
        )
        print(f"SLS emulator: {emu.endpoint} ({PROJECT}/{LOGSTORE})")
        return run_and_check(emu, warehouse)


def run_and_check(emu, warehouse: Path) -> int:  # noqa: ANN001 - the emulator type needs a late import
    import datetime as dt

    from airflow.dag_processing.dagbag import DagBag

    log_path = WORK / "airflow-run.log"
    # The DAG's timetable gives a run started at midnight the day that has just ended.
    midnight = dt.datetime.fromisoformat(f"{DAY}T00:00:00+00:00") + dt.timedelta(days=1)
    print(
        f"running the DAG example_sls_export as at {midnight:%Y-%m-%d %H:%M} UTC, for {DAY} "
        f"(Airflow's log: {log_path})",
        flush=True,
    )
    started = time.monotonic()
    with output_to(log_path):
        dag = DagBag(dag_folder=str(ROOT / "dags" / "example_sls_export.py")).get_dag("example_sls_export")
        run = dag.test(logical_date=midnight)
    seconds = time.monotonic() - started
    print(f"\nDAG run {run.run_id}: {run.state} in {seconds:.1f} s")
    print(f"data interval: {run.data_interval_start} to {run.data_interval_end}")

    problems: list[str] = []
    if str(run.state) != "success":
        problems.append(f"the DAG run ended {run.state}")
    if f"{run.data_interval_start:%Y-%m-%d}" != DAY:
        problems.append(f"the run's data interval starts {run.data_interval_start}, not on {DAY}")
    summary = xcom_summary(run.dag_id, run.run_id, "export_events")
    print(f"export_events summary: {json.dumps(summary, indent=None)}")

    with sqlite3.connect(warehouse) as db:
        expected = dict(
            db.execute(
                "SELECT event_type, COUNT(*) FROM web_events WHERE event_date = ? GROUP BY event_type", (DAY,)
            ).fetchall()
        )
        sample = db.execute(
            "SELECT id, event_type, user_id, page, referrer, revenue, is_mobile FROM web_events "
            "WHERE event_date = ? AND event_type = 'purchase' ORDER BY id LIMIT 1",
            (DAY,),
        ).fetchone()
    expected["daily_totals"] = len(expected)
    held = {topic: n for (_, _, topic), n in emu.counts().items()}

    print(f"\n{'topic':<14} {'warehouse':>10} {'in SLS':>10}")
    for topic in sorted(set(expected) | set(held)):
        mark = "" if expected.get(topic) == held.get(topic) else "   <-- MISMATCH"
        print(f"{topic:<14} {expected.get(topic, 0):>10,} {held.get(topic, 0):>10,}{mark}")
        if mark:
            problems.append(f"topic {topic!r}: warehouse {expected.get(topic, 0)}, SLS {held.get(topic, 0)}")
    if summary and summary.get("rows") != sum(n for t, n in expected.items() if t != "daily_totals"):
        problems.append(f"the summary counts {summary.get('rows')} rows")
    totals_days = {log.get("day") for log in emu.get_logs(PROJECT, LOGSTORE, topic="daily_totals")}
    if totals_days != {DAY}:
        problems.append(f"the daily totals are for {sorted(map(str, totals_days))}, not {DAY}")

    # One row, value by value: the strings SLS holds are the warehouse's values.
    row_id, kind, user, page, referrer, revenue, mobile = sample
    stored = [log for log in emu.get_logs(PROJECT, LOGSTORE, topic=kind) if log["id"] == str(row_id)]
    want = {
        "id": str(row_id),
        "user_id": str(user),
        "page": page,
        "revenue": str(revenue),
        "is_mobile": str(mobile),
        **({"referrer": referrer} if referrer else {}),
    }
    if len(stored) != 1 or any(stored[0].get(k) != v for k, v in want.items()):
        problems.append(f"row {row_id} arrived as {stored!r}, expected {want!r}")
    else:
        print(f"\nrow {row_id} as stored: {json.dumps(stored[0], ensure_ascii=False)}")

    if problems:
        print("\nDEMO FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(f"\nOK: {sum(held.values()):,} logs in SLS, exactly the warehouse's rows for {DAY}.")
    return 0


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send everything written to stdout and stderr, by Python or by Airflow's log handlers (which
    hold the original streams), to ``path``: at the file-descriptor level."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def xcom_summary(dag_id: str, run_id: str, task_id: str) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(run_id=run_id, dag_ids=dag_id, task_ids=task_id, key="return_value")
        row = session.scalars(query).first()
        return XComModel.deserialize_value(row) if row is not None else {}


if __name__ == "__main__":
    sys.exit(main())
