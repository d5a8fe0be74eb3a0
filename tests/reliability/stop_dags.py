"""DAGs for tests/reliability/test_airflow_stop.py: exports that Airflow stops while they run.

Each runs once as soon as the scheduler sees it. Its task writes marks the test reads (wall-clock
times): ``start`` (with the task process's pid) when ``execute`` begins, which is when the
``execution_timeout`` clock starts, and ``on_kill`` when Airflow's SIGTERM reaches the task.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

from airflow.sdk import DAG

from sls_provider.operators.web_tracking import SlsWebTrackingOperator

MARKS = Path(os.environ.get("SLS_TEST_STOP_MARKS", "/tmp"))
#: ~20 MB of rows: far more than any of these exports gets through before it is stopped
QUERY = "SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, {rows}) AS g ORDER BY g"
TIMEOUT = dt.timedelta(seconds=8)


def mark(dag_id: str, event: str, **more: Any) -> None:
    (MARKS / f"{dag_id}.{event}.json").write_text(json.dumps({"time": time.time(), **more}))


class Probe(SlsWebTrackingOperator):
    def execute(self, context: Any) -> Any:
        mark(self.dag_id, "start", pid=os.getpid())
        return super().execute(context)

    def on_kill(self) -> None:
        mark(self.dag_id, "on_kill")
        super().on_kill()


for dag_id, sls, sql_conn, rows, timeout in (
    ("stop_sigterm", "sls_sigterm", "pg", 400_000, None),  # the test sends SIGTERM to the task process
    ("stop_mark_failed", "sls_mark_failed", "pg", 400_000, None),  # marked failed through the API
    ("stop_timeout_quota", "sls_refusing", "pg", 400_000, TIMEOUT),  # every write refused for quota
    # the source stops answering (the proxy freezes after 5 MB, some 100,000 rows)
    ("stop_timeout_source", "sls_source", "pg_frozen", 1_000_000, TIMEOUT),
    ("stop_timeout_mariadb", "sls_mariadb", "mariadb_frozen", 1_000_000, TIMEOUT),  # the same, MariaDB
):
    sql = QUERY.format(rows=rows)
    if sql_conn.startswith("mariadb"):  # no generate_series: MariaDB's sequence engine
        sql = f"SELECT seq AS id, md5(seq) AS payload FROM seq_1_to_{rows} ORDER BY seq"
    with DAG(dag_id, schedule="@once", start_date=dt.datetime(2026, 1, 1), catchup=False) as dag:
        Probe(
            task_id="export",
            sls_conn_id=sls,
            sql=sql,
            sql_conn_id=sql_conn,
            max_logs=500,
            max_workers=2,
            retries=0,
            execution_timeout=timeout,
        )
    globals()[dag_id] = dag
