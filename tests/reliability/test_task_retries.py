"""Which failures use the task's Airflow retries: real DAG runs (``dag.test()`` honours ``retries``)
with ``retries=2``. A failure no retry can heal fails the task at its first try
(``AirflowFailException``, the SlsError as its cause); a transient one is retried."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from airflow.models import TaskInstance
from airflow.sdk import DAG
from airflow.utils.session import create_session

from sls_provider.emulator import SlsEmulator
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from sls_provider.sources.readers import statement_error
from tests.conftest import PROJECT, sls_connection
from tests.dagrun import retrying_dag, run
from tests.reliability.test_transient_faults import frame

pytestmark = pytest.mark.usefixtures("airflow_db")


def tries(dag_id: str) -> int:
    """How many tries the run's ``export`` task had."""
    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dag_id, task_id="export").one()
        return int(ti.try_number)


def export_dag(dag_id: str, **kwargs: object) -> DAG:
    with retrying_dag(dag_id, 2) as dag:
        SlsWebTrackingOperator(task_id="export", max_workers=1, **kwargs)
    return dag


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (id INTEGER, page TEXT)")
        db.executemany("INSERT INTO events VALUES (?, ?)", [(i, f"/p/{i}") for i in range(10)])
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))


@pytest.mark.parametrize(
    "case, kwargs, named",
    [
        ("missing_logstore", {"logstore": "missing"}, "SlsRequestError: SLS answered 404 LogStoreNotExist"),
        ("tracking_off", {"logstore": "closed"}, "SlsRequestError: SLS answered 403"),
        ("refused_sql", {"sql": "DELETE FROM events"}, "SlsInputError: The sql is refused"),
        ("syntax_error", {"sql": "SELECT id FROM events WHERE id = = 1"}, "SlsSourceError: The warehouse"),
        ("missing_table", {"sql": "SELECT * FROM nowhere"}, "no such table: nowhere"),
        ("bad_argument", {"tags": {"run": "{{ run_id }}", "n": 1}}, "SlsInputError"),
    ],
)
def test_a_failure_no_retry_can_heal_fails_at_the_first_try(
    sls_conn: SlsEmulator,
    warehouse: None,
    capsys: pytest.CaptureFixture[str],
    case: str,
    kwargs: dict,
    named: str,
) -> None:
    sls_conn.create_logstore(PROJECT, "closed", web_tracking=False)
    source = {"sql_conn_id": "warehouse"} if "sql" in kwargs else {"dataframe": frame(100)}
    dag = export_dag(f"no_heal_{case}", **source, **kwargs)
    assert run(dag) == "failed"
    assert tries(dag.dag_id) == 1
    task_log = capsys.readouterr().out  # dag.test() prints the task's log
    assert "AirflowFailException" in task_log and named in task_log, task_log[-3000:]
    assert "not retried" in task_log


def test_a_bad_connection_setting_fails_at_the_first_try(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, timeout="soon"))
    dag = export_dag("no_heal_connection", dataframe=frame(100))
    assert run(dag) == "failed"
    assert tries(dag.dag_id) == 1


def test_a_transient_failure_keeps_the_task_retries(
    emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One try of each request, so the server error reaches the task; the second task try succeeds.
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, retry_attempts=1))
    emulator.faults.fail_next(1, status=503)
    dag = export_dag("heals", dataframe=frame(100))
    assert run(dag) == "success"
    assert tries(dag.dag_id) == 2

    emulator.faults.fail_next(10, status=503)  # every task try fails: all three are used
    dag = export_dag("never_heals", dataframe=frame(100))
    assert run(dag) == "failed"
    assert tries(dag.dag_id) == 3


class _Driver(Exception):
    """A driver error as psycopg (``sqlstate``) or psycopg2 (``pgcode``) raises it."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "err, final",
    [
        (sqlite3.OperationalError('near "=": syntax error'), True),
        (sqlite3.OperationalError("no such table: nowhere"), True),
        (sqlite3.OperationalError("database is locked"), False),
        (sqlite3.ProgrammingError("Incorrect number of bindings"), True),
        (_Driver("syntax error at or near SELEC", "42601"), True),
        (_Driver("cannot execute INSERT in a read-only transaction", "25006"), True),
        (_Driver("terminating connection due to administrator command", "57P01"), False),
        (_Driver("server closed the connection unexpectedly", "08006"), False),
        (ConnectionResetError("reset by peer"), False),
    ],
)
def test_which_warehouse_errors_are_the_statement(err: BaseException, final: bool) -> None:
    assert statement_error(err) is final
