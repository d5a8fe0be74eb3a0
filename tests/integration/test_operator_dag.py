"""The operator inside real DAG runs (``dag.test()`` on a SQLite metadata DB) against the emulator."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import sqlite3
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from sls_provider import (
    Incremental,
    RetryPolicy,
    SlsConfigError,
    SlsEmptyExportError,
    SlsError,
    SlsInputError,
)
from sls_provider.emulator import SlsEmulator
from sls_provider.lineage import logstore_asset
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.conftest import FAST_RETRY, LOGSTORE, PROJECT, content
from tests.dagrun import START, run

pytestmark = pytest.mark.usefixtures("airflow_db")


def run_logged(
    dag: DAG, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> tuple[str, str]:
    """Run ``dag`` and return its state and everything its tasks logged (the task logger writes
    through structlog to the terminal, not only to caplog's records)."""
    with caplog.at_level(logging.INFO):
        state = run(dag)
    captured = capfd.readouterr()
    return state, captured.out + captured.err + caplog.text


def test_dataframe_from_upstream_taskflow_task(sls_conn: SlsEmulator, tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    with DAG("df_export", schedule=None, start_date=START) as dag:

        @task
        def build() -> pd.DataFrame:
            return pd.DataFrame(
                {
                    "user": ["ann", "bob", "chloé", None, "eve"],
                    "clicks": pd.array([3, None, 7, 1, 0], dtype="Int64"),
                    "kind": ["view", "buy", "view", None, "buy"],
                    "at": pd.to_datetime(["2026-01-01T10:00:00Z"] * 5),
                }
            )

        export = SlsWebTrackingOperator(
            task_id="export", dataframe=build(), topic_column="kind", tags={"run": "{{ run_id }}"}
        )

        @task
        def keep(summary: dict) -> None:
            out.write_text(json.dumps(summary))

        keep(export.output)

    assert run(dag) == "success"
    summary = json.loads(out.read_text())
    assert summary["rows"] == 5
    assert summary["topics"] == {"": 1, "buy": 2, "view": 2}
    assert summary["requests"] == 3  # one per topic
    assert summary["raw_bytes"] > summary["sent_bytes"] > 0

    logs = sls_conn.get_logs(PROJECT, LOGSTORE)
    assert len(logs) == 5
    by_topic = {t: [content(log) for log in logs if log["__topic__"] == t] for t in ("view", "buy", "")}
    stamp = "2026-01-01T10:00:00+00:00"
    assert by_topic["view"] == [
        {"user": "ann", "clicks": "3", "at": stamp},
        {"user": "chloé", "clicks": "7", "at": stamp},
    ]
    assert by_topic["buy"] == [{"user": "bob", "at": stamp}, {"user": "eve", "clicks": "0", "at": stamp}]
    assert by_topic[""] == [{"clicks": "1", "at": stamp}]
    run_tags = {log["__tag__:run"] for log in logs}
    assert len(run_tags) == 1 and run_tags.pop().startswith("manual__")  # the template was rendered


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (id INTEGER, page TEXT, amount NUMERIC, score REAL, topic TEXT)")
        db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
            [
                (i, f"/p/{i % 7}" if i % 5 else None, None if i % 3 == 0 else i * 10, i / 4, f"t{i % 3}")
                for i in range(10_000)
            ],
        )
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def test_sql_query_on_sqlite_connection(sls_conn: SlsEmulator, warehouse: Path, tmp_path: Path) -> None:
    (tmp_path / "events.sql").write_text("SELECT * FROM events WHERE id < {{ params.limit }} ORDER BY id")
    with DAG(
        "sql_export",
        schedule=None,
        start_date=START,
        template_searchpath=[str(tmp_path)],
        params={"limit": 9000},
    ) as dag:
        SlsWebTrackingOperator(
            task_id="export",
            sql="events.sql",
            sql_conn_id="warehouse",
            topic_column="topic",
            chunksize=1000,
            max_logs=500,
        )
    assert run(dag) == "success"

    assert sls_conn.counts() == {(PROJECT, LOGSTORE, f"t{k}"): 3000 for k in range(3)}
    logs = sls_conn.get_logs(PROJECT, LOGSTORE)
    ids = sorted(int(log["id"]) for log in logs)
    assert ids == list(range(9000))  # each row exactly once
    by_id = {int(log["id"]): content(log) for log in logs}
    assert by_id[3] == {"id": "3", "page": "/p/3", "score": "0.75"}  # NULL amount -> key left out
    assert by_id[5] == {"id": "5", "amount": "50", "score": "1.25"}  # NULL page -> key left out
    assert by_id[8] == {"id": "8", "page": "/p/1", "amount": "80", "score": "2.0"}
    # Order within a topic is the query's order once read by request number (sls_seq): requests
    # are sent concurrently, so their arrival order is not promised, only the order inside each.
    t1 = [
        (int(log["__tag__:sls_seq"]), i, int(log["id"]))
        for i, log in enumerate(logs)
        if log["__topic__"] == "t1"
    ]
    assert [row_id for _, _, row_id in sorted(t1)] == sorted(row_id for _, _, row_id in t1)
    # 3000 rows per topic at 500 logs per request.
    assert len(sls_conn.requests.where(status=200)) == 18


def test_same_row_same_log_from_dataframe_and_cursor(
    sls_conn: SlsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (n INTEGER, x REAL, s TEXT, b BLOB)")
        rows = [(1, 0.1, "a", b"\x00\xff"), (None, None, None, None)]
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    monkeypatch.setenv("AIRFLOW_CONN_W", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    frame = pd.DataFrame(
        {
            "n": pd.array([1, None], dtype="Int64"),
            "x": [0.1, None],
            "s": ["a", None],
            "b": [b"\x00\xff", None],
        }
    )
    with DAG("same_row", schedule=None, start_date=START) as dag:
        SlsWebTrackingOperator(task_id="from_sql", sql="SELECT * FROM t", sql_conn_id="w", topic="sql")
        SlsWebTrackingOperator(task_id="from_df", dataframe=frame, topic="df")
    assert run(dag) == "success"
    from_sql = [content(log) for log in sls_conn.get_logs(PROJECT, LOGSTORE, topic="sql")]
    from_df = [content(log) for log in sls_conn.get_logs(PROJECT, LOGSTORE, topic="df")]
    assert from_sql == from_df == [{"n": "1", "x": "0.1", "s": "a", "b": "AP8="}, {}]


def test_decimal_and_dates_from_python_objects(sls_conn: SlsEmulator) -> None:
    frame = pd.DataFrame(
        {"d": [Decimal("1.10")], "day": [dt.date(2026, 2, 3)], "ts": [dt.datetime(2026, 2, 3, 4, 5, 6, 7)]}
    )
    with DAG("objects", schedule=None, start_date=START) as dag:
        SlsWebTrackingOperator(task_id="export", dataframe=frame, compress_type="deflate")
    assert run(dag) == "success"
    [log] = sls_conn.get_logs(PROJECT, LOGSTORE)
    assert content(log) == {"d": "1.10", "day": "2026-02-03", "ts": "2026-02-03T04:05:06.000007"}
    assert sls_conn.requests.where(status=200)[0]["compress_type"] == "deflate"


def test_bad_column_names_fail_before_anything_is_sent(sls_conn: SlsEmulator) -> None:
    frame = pd.DataFrame({"ok": [1], "bad key": [2], "1st": [3]})
    with DAG("bad_keys", schedule=None, start_date=START) as dag:
        SlsWebTrackingOperator(task_id="export", dataframe=frame)
    assert run(dag) == "failed"
    assert sls_conn.requests.snapshot() == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_logs": 5000}, "max_logs must be between 1 and 4096"),
        ({"max_bytes": 4 * 1024 * 1024}, "max_bytes must be between"),
        ({"max_requests_per_second": 0}, "max_requests_per_second must be a positive, finite number"),
        ({"stall_timeout": 0}, "stall_timeout must be a positive, finite number"),
        ({"key_policy": "loose"}, "key_policy must be one of"),
        ({"compress_type": "gzip"}, "gzip"),
        ({"sql": "SELECT 1"}, "exactly one of sql= or dataframe="),
    ],
)
def test_bad_options_fail_when_the_dag_is_parsed(kwargs: dict, message: str) -> None:
    with pytest.raises(SlsError, match=message) as info:
        SlsWebTrackingOperator(task_id="t", dataframe=pd.DataFrame({"a": [1]}), **kwargs)
    assert isinstance(info.value, ValueError)  # the error classes stay ValueErrors too


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dataframe": pd.DataFrame({"a": [1]}), "sql": "SELECT 1"}, "exactly one of sql= or dataframe="),
        ({}, "exactly one of sql= or dataframe="),
        ({"sql": "SELECT 1"}, "sql= needs sql_conn_id="),
        (
            {"dataframe": pd.DataFrame({"a": [1]}), "sql_conn_id": "warehouse"},
            "sql_conn_id= only apply to sql=",
        ),
        (
            {"dataframe": pd.DataFrame({"a": [1]}), "parameters": {"day": "x"}},
            "parameters= only apply to sql=",
        ),
        (
            {"dataframe": pd.DataFrame({"a": [1]}), "sql_conn_id": "w", "parameters": [1]},
            "sql_conn_id= and parameters= only apply",
        ),
        (
            {"dataframe": pd.DataFrame({"a": [1]}), "topic": "t", "topic_column": "a"},
            "pass topic= or topic_column=, not both",
        ),
        (
            {"sql": "SELECT 1", "sql_conn_id": "w", "topic": "{{ ds }}", "topic_column": "a"},
            "not both",
        ),
        ({"dataframe": pd.DataFrame({"a": [1]}), "timeout": 0}, "timeout must be a positive, finite number"),
        (
            {"dataframe": pd.DataFrame({"a": [1]}), "timeout": "30"},
            "timeout must be a positive, finite number",
        ),
        (
            {"dataframe": pd.DataFrame({"a": [1]}), "timeout": float("inf")},
            "timeout must be a positive, finite number",
        ),
        ({"dataframe": pd.DataFrame({"a": [1]}), "retry": "fast"}, "retry must be a RetryPolicy"),
    ],
)
def test_conflicting_or_wrong_arguments_are_config_errors_at_parse_time(kwargs: dict, message: str) -> None:
    with pytest.raises(SlsConfigError, match=message):
        SlsWebTrackingOperator(task_id="t", **kwargs)


def test_a_bad_retry_policy_is_a_config_error() -> None:
    with pytest.raises(SlsConfigError, match="attempts must be at least 1"):
        RetryPolicy(attempts=0)
    with pytest.raises(SlsConfigError, match="deadline=0"):
        RetryPolicy(deadline=0)


def test_every_argument_is_an_attribute_of_the_same_name() -> None:
    """Like every Airflow operator: ``op.<argument>`` is what was passed (templating, UI, reprs)."""
    given = {
        "sls_conn_id": "sls_other",
        "project": "proj",
        "logstore": "store",
        "sql": "SELECT 1",
        "sql_conn_id": "warehouse",
        "parameters": {"day": "2026-01-01"},
        "topic": "",
        "topic_column": "kind",
        "source": "batch",
        "tags": {"team": "growth"},
        "compress_type": "deflate",
        "timeout": 12.5,
        "max_workers": 3,
        "chunksize": 1234,
        "key_policy": "sanitize",
        "on_oversize": "skip",
        "fail_on_empty": True,
        "max_logs": 100,
        "max_bytes": 65536,
        "resume": False,
        "trace_tags": False,
        "retry": RetryPolicy(attempts=2),
        "max_requests_per_second": 50.0,
        "max_mb_per_second": 2.0,
        "stall_timeout": 60.0,
        "sql_reader": "dbapi",
        "dead_letter": "file:///tmp/dead-letters",
        "max_bad_rows": 10,
        "incremental": Incremental("id"),
    }
    names = [
        n for n, p in inspect.signature(SlsWebTrackingOperator.__init__).parameters.items() if n != "self"
    ]
    assert set(names) - {"kwargs"} == set(given) | {"dataframe"}  # a new argument must be added here too
    # With incremental=, the logstore's asset (given: no connection "sls_other" here) is an outlet.
    asset = logstore_asset(endpoint="http://127.0.0.1:9090", project="proj", logstore="store")
    op = SlsWebTrackingOperator(task_id="t", outlets=[asset], **given)
    assert {name: getattr(op, name) for name in given} == given
    frame = pd.DataFrame({"a": [1]})
    assert SlsWebTrackingOperator(task_id="t2", dataframe=frame).dataframe is frame


def test_timeout_reaches_the_hook(sls_conn: SlsEmulator, tmp_path: Path) -> None:
    """An answer slower than the operator's timeout is given up on and retried; the connection's
    timeout (30 s) would have waited for it."""
    out = tmp_path / "summary.json"
    sls_conn.faults.latency(1.5, n=1)
    with DAG("timeout", schedule=None, start_date=START) as dag:
        export = SlsWebTrackingOperator(
            task_id="export",
            dataframe=pd.DataFrame({"a": [1, 2]}),
            timeout=0.5,
            retry=replace(FAST_RETRY, attempts=3),
        )

        @task
        def keep(summary: dict) -> None:
            out.write_text(json.dumps(summary))

        keep(export.output)

    assert export.hook.settings.timeout == 0.5
    assert run(dag) == "success"
    summary = json.loads(out.read_text())
    assert (summary["rows"], summary["retries"], summary["possible_duplicates"]) == (2, 1, 1)


def test_the_summary_is_logged_once_in_units_that_fit(sls_conn: SlsEmulator, caplog, capfd) -> None:
    with DAG("summary_once", schedule=None, start_date=START) as dag:
        SlsWebTrackingOperator(task_id="export", dataframe=pd.DataFrame({"a": [1, 2, 3]}))
    state, text = run_logged(dag, caplog, capfd)
    assert state == "success"
    assert text.count("SLS export done: 3 rows in 1 requests") == 1
    assert "SLS export summary" not in text
    assert " B raw, " in text and "0.0 MB" not in text  # a small export in bytes, not 0.0 MB


def test_an_empty_export_warns_naming_its_source_and_succeeds(
    sls_conn: SlsEmulator, warehouse: Path, tmp_path: Path, caplog, capfd
) -> None:
    out = tmp_path / "summary.json"
    # schedule="@daily": runs without a data interval, the likeliest cause of an empty export.
    with DAG("empty_export", schedule="@daily", start_date=START, params={"limit": -1}) as dag:
        query = SlsWebTrackingOperator(
            task_id="export_query",
            sql="SELECT * FROM events WHERE id < {{ params.limit }} ORDER BY id",
            sql_conn_id="warehouse",
        )
        frame = SlsWebTrackingOperator(task_id="export_frame", dataframe=pd.DataFrame({"a": []}))

        @task
        def keep(summary: dict) -> None:
            out.write_text(json.dumps(summary))

        keep(query.output)
        query >> frame
    state, text = run_logged(dag, caplog, capfd)
    assert state == "success"
    # The rendered query and both connections, at WARNING, for each task.
    assert (
        "SLS export sent no rows: the query 'SELECT * FROM events WHERE id < -1 ORDER BY id' on "
        f"connection 'warehouse' gave no rows, so nothing went to {PROJECT}/{LOGSTORE} (connection "
        "'sls_default')." in text
    ), text[-3000:]
    assert "SLS export sent no rows: the DataFrame gave no rows" in text
    assert "fail_on_empty=True" in text
    assert "this scheduled run has no data interval" in text
    # At WARNING (the task logger writes through structlog, not to caplog's records), once a task.
    lines = [line for line in text.splitlines() if "SLS export sent no rows" in line]
    assert all("warning" in line.lower() for line in lines), lines
    assert {"the query" in line for line in lines} == {True, False}, lines
    # The summary line says so too, and the summary (XCom) counts no rows.
    assert text.count("SLS export done: nothing sent, no rows to send: 0 rows in 0 requests") == 2
    assert json.loads(out.read_text())["rows"] == 0
    assert sls_conn.counts() == {}


def test_fail_on_empty_fails_the_task_with_an_input_error(
    sls_conn: SlsEmulator, warehouse: Path, caplog, capfd
) -> None:
    daily = CronDataIntervalTimetable("@daily", timezone="UTC")
    with DAG("empty_export_fails", schedule=daily, start_date=START) as dag:
        SlsWebTrackingOperator(
            task_id="export",
            sql="SELECT * FROM events WHERE id < 0",
            sql_conn_id="warehouse",
            fail_on_empty=True,
        )
    state, text = run_logged(dag, caplog, capfd)
    assert state == "failed"
    assert (
        "SlsEmptyExportError: SLS export sent no rows: the query 'SELECT * FROM events WHERE id < 0' "
        "on connection 'warehouse' gave no rows" in text
    ), text[-3000:]
    # The run's period: what the query should have selected rows of (the day before START).
    assert "against this run's data interval, 2025-12-31 00:00:00+00:00 to 2026-01-01 00:00:00+00:00" in text
    assert "The task fails: fail_on_empty=True." in text
    # An input error: the same query on the same data gives no rows on every try.
    assert issubclass(SlsEmptyExportError, SlsInputError)


def test_an_export_with_rows_does_not_warn(sls_conn: SlsEmulator, caplog) -> None:
    with DAG("not_empty", schedule=None, start_date=START) as dag:
        SlsWebTrackingOperator(task_id="export", dataframe=pd.DataFrame({"a": [1]}), fail_on_empty=True)
    with caplog.at_level(logging.INFO):
        assert run(dag) == "success"
    assert "no rows" not in caplog.text
