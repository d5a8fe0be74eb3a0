"""Incremental exports across runs (``incremental=Incremental(...)``) on SQLite, in ``dag.test()`` runs
against the emulator: windows, watermarks, backfills, mapped partitions, cleared runs, NULL cursors.
The same scenario on PostgreSQL and MariaDB is in ``tests/warehouses/test_incremental_warehouses.py``."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
import uuid
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG

from sls_provider import Incremental, SlsConfigError
from sls_provider.emulator import SlsEmulator
from sls_provider.incremental import (
    IncrementalRun,
    Window,
    decode_value,
    encode_value,
    window_query,
)
from sls_provider.lineage import logstore_asset
from sls_provider.operators.web_tracking import SlsWebTrackingOperator
from tests.conftest import FAST_RETRY, PROJECT
from tests.incremental_runs import (
    DAY0,
    exactly_once,
    explicit_exports,
    exports,
    fresh_emulator,
    rerun,
    run_day,
    run_ids,
    watermarks,
)

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture
def sls_conn(sls_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> SlsEmulator:
    return fresh_emulator(sls_emulator_factory, monkeypatch)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sqlite3.Connection:
    path = tmp_path / "warehouse.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, n INTEGER, region TEXT, at TEXT)")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return conn


def insert(db: sqlite3.Connection, rows: list[tuple[int, int | None, str]]) -> None:
    db.executemany("INSERT INTO events (id, n, region) VALUES (?, ?, ?)", rows)


def dag_id() -> str:
    return f"incr_{uuid.uuid4().hex[:8]}"


def export_dag(name: str, incremental: Incremental, sql: str = "SELECT * FROM events", **kwargs: Any) -> DAG:
    """One incremental export of ``sql`` on the ``warehouse`` connection (also used by
    tests/warehouses/test_incremental_warehouses.py)."""
    with DAG(name, schedule=None, start_date=DAY0) as dag:
        SlsWebTrackingOperator(
            task_id="export",
            sql=sql,
            sql_conn_id="warehouse",
            incremental=incremental,
            retry=FAST_RETRY,
            **{"max_logs": 3, **kwargs},
        )
    return dag


@pytest.mark.parametrize("reader", ["arrow", "dbapi"])
def test_runs_with_inserts_between_export_each_row_once(
    sls_conn: SlsEmulator, db: sqlite3.Connection, reader: str
) -> None:
    name = dag_id()
    dag = export_dag(name, Incremental("n", order_by=["id"]), sql_reader=reader)
    key = f"sls_watermark/{name}/export"
    # Run 1: n < max (3); the rows at the max wait for the next run.
    insert(db, [(1, 1, "eu"), (2, 2, "eu"), (3, 2, "us"), (4, 3, "eu"), (5, 3, "us")])
    assert run_day(dag, 0) == "success"
    assert watermarks(name)[key]["watermark"] == {"int": 3}
    assert sorted(exports(sls_conn).values()) == [["1", "2", "3"]]
    # Late rows equal to the previous end (n=3) go with the next run: start is inclusive.
    insert(db, [(6, 3, "eu"), (7, 4, "us"), (8, 5, "eu")])
    assert run_day(dag, 1) == "success"
    assert watermarks(name)[key]["watermark"] == {"int": 5}
    # An explicit window (a manual re-export of a period) moves no watermark.
    assert run_day(dag, 2, conf={"sls_window": {"start": 1, "end": 3}}) == "success"
    assert watermarks(name)[key]["watermark"] == {"int": 5}
    # A backfill between scheduled runs: its own window, the watermark stays.
    insert(db, [(9, 6, "eu")])
    assert run_day(dag, 3, conf={"sls_window": {"start": 2, "end": 3}}, backfill=True) == "success"
    assert watermarks(name)[key]["watermark"] == {"int": 5}
    assert run_day(dag, 4) == "success"
    assert watermarks(name)[key]["watermark"] == {"int": 6}
    # Nothing new: an empty window, nothing read, the watermark stays.
    assert run_day(dag, 5) == "success"
    assert watermarks(name)[key]["watermark"] == {"int": 6}

    by_export = exports(sls_conn)
    explicit = explicit_exports(name)
    assert sorted(by_export[e] for e in explicit) == [["1", "2", "3"], ["2", "3"]]
    assert sorted(v for e, v in by_export.items() if e not in explicit) == [
        ["1", "2", "3"],
        ["4", "5", "6", "7"],
        ["8"],
    ]
    # Every row below the last watermark exactly once over the incremental runs; n=6 (id 9) waits.
    exactly_once(sls_conn, {str(i) for i in range(1, 9)}, skip=explicit.__contains__)


def test_clock_end_with_lag_catches_rows_committed_late(
    sls_conn: SlsEmulator, db: sqlite3.Connection
) -> None:
    """end='clock': the window ends at the source's clock minus lag. A row whose cursor is at or after
    the last end is exported next run however late it commits; one below it (committed later than
    the lag allowed) is exported by no run. Asserted against the ends the runs recorded, not timing."""
    name = dag_id()
    dag = export_dag(name, Incremental("at", end="clock", lag=dt.timedelta(seconds=5), order_by="id"))
    key = f"sls_watermark/{name}/export"

    def sqlite_now() -> dt.datetime:
        return dt.datetime.fromisoformat(db.execute("SELECT datetime('now')").fetchone()[0])

    def at(moment: dt.datetime) -> str:
        return moment.isoformat(sep=" ")

    t0 = sqlite_now()
    rows = {1: at(t0 - dt.timedelta(seconds=60)), 2: at(t0 - dt.timedelta(seconds=30)), 3: at(t0)}
    db.executemany("INSERT INTO events (id, at) VALUES (?, ?)", list(rows.items()))
    assert run_day(dag, 0) == "success"
    end1 = decode_value(watermarks(name)[key]["watermark"])
    assert isinstance(end1, str) and end1 <= at(sqlite_now() - dt.timedelta(seconds=5))
    assert list(exports(sls_conn).values()) == [[str(i) for i in rows if rows[i] < end1]]
    # Committed after run 1: one at run 1's end (late, within the lag), one a second before it.
    late = dt.datetime.fromisoformat(end1)
    rows.update({4: at(late), 5: at(late - dt.timedelta(seconds=1))})
    db.executemany("INSERT INTO events (id, at) VALUES (?, ?)", [(4, rows[4]), (5, rows[5])])
    while sqlite_now() - dt.timedelta(seconds=5) <= max(late, t0):  # the clock passes them: ~2 s
        time.sleep(0.2)
    assert run_day(dag, 1) == "success"
    end2 = decode_value(watermarks(name)[key]["watermark"])
    assert end2 > rows[4] and end2 > rows[3]
    exactly_once(sls_conn, {"1", "2", "3", "4"})  # 5 is below run 1's end: no run exports it


def test_backfill_exports_its_data_interval_and_the_asset_event_says_so(
    sls_conn: SlsEmulator, db: sqlite3.Connection
) -> None:
    name = dag_id()
    with DAG(name, schedule=dt.timedelta(days=1), start_date=DAY0, catchup=False) as dag:
        SlsWebTrackingOperator(
            task_id="export",
            sql="SELECT id, at FROM events",
            sql_conn_id="warehouse",
            incremental=Incremental("at", order_by="id"),
            retry=FAST_RETRY,
        )
    stamps = [(i, f"2026-01-0{1 + i // 4} {i % 4 * 6:02d}:00:00") for i in range(12)]  # 3 days, 4 a day
    db.executemany("INSERT INTO events (id, at) VALUES (?, ?)", stamps)
    assert run_day(dag, 5) == "success"  # incremental: [-, max), ids 0-10
    key = f"sls_watermark/{name}/export"
    assert watermarks(name)[key]["watermark"] == {"str": "2026-01-03 18:00:00"}
    assert run_day(dag, 1, backfill=True) == "success"  # 2026-01-02's interval [01-02, 01-03)
    assert watermarks(name)[key]["watermark"] == {"str": "2026-01-03 18:00:00"}
    assert sorted(exports(sls_conn).values()) == [[str(i) for i in range(11)], ["4", "5", "6", "7"]]

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_dag_id == name)).all()
        extras = sorted((e.extra["sls_incremental"] for e in events), key=lambda x: x["explicit"])
    incremental, backfill = extras
    assert incremental["start"] is None and incremental["end"] == "2026-01-03 18:00:00"
    assert incremental["rows"] == 11 and incremental["watermark_moved"] and not incremental["explicit"]
    assert backfill["start"] == "2026-01-02 00:00:00" and backfill["end"] == "2026-01-03 00:00:00"
    assert backfill["rows"] == 4 and backfill["explicit"] and not backfill["watermark_moved"]
    assert len({incremental["export_id"], backfill["export_id"]}) == 2


def test_two_mapped_partitions_keep_separate_watermarks(
    sls_conn: SlsEmulator, db: sqlite3.Connection
) -> None:
    name = dag_id()
    with DAG(name, schedule=None, start_date=DAY0) as dag:
        asset = logstore_asset(endpoint=sls_conn.endpoint, project=PROJECT, logstore=sls_conn.logstore)
        SlsWebTrackingOperator.partial(
            task_id="export",
            sql_conn_id="warehouse",
            outlets=[asset],  # a mapped task names the logstore's asset in .partial()
            incremental=Incremental("n", order_by="id"),
            retry=FAST_RETRY,
        ).expand(sql=["SELECT * FROM events WHERE region = 'eu'", "SELECT * FROM events WHERE region = 'us'"])
    insert(db, [(1, 1, "eu"), (2, 2, "eu"), (3, 1, "us"), (4, 5, "us")])
    assert run_day(dag, 0) == "success"
    marks = watermarks(name)
    assert {k: v["watermark"] for k, v in marks.items()} == {
        f"sls_watermark/{name}/export/0": {"int": 2},
        f"sls_watermark/{name}/export/1": {"int": 5},
    }
    insert(db, [(5, 3, "eu"), (6, 4, "us"), (7, 6, "us"), (8, 9, "eu")])
    assert run_day(dag, 1) == "success"
    marks = watermarks(name)
    assert {k: v["watermark"] for k, v in marks.items()} == {
        f"sls_watermark/{name}/export/0": {"int": 9},
        f"sls_watermark/{name}/export/1": {"int": 6},
    }
    # Run 1: eu [-, 2) = id 1, us [-, 5) = id 3; run 2: eu [2, 9) = ids 2, 5, us [5, 6) = id 4.
    # id 6 (us, n=4) arrived below the us watermark (5): a late row no window takes (use lag).
    exactly_once(sls_conn, {"1", "3", "2", "5", "4"})


def test_cleared_successful_run_fails_clearly_or_resends(
    sls_conn: SlsEmulator, db: sqlite3.Connection, capsys: pytest.CaptureFixture
) -> None:
    name = dag_id()
    insert(db, [(1, 1, "eu"), (2, 2, "eu"), (3, 3, "eu")])
    dag = export_dag(name, Incremental("n"))
    assert run_day(dag, 0) == "success"
    (run_id,) = run_ids(name)
    insert(db, [(4, 4, "eu")])
    capsys.readouterr()
    assert rerun(dag, run_id) == "failed"
    out = capsys.readouterr().out
    assert "this run already exported its window [-, 3) of" in out and "Nothing was sent again" in out
    assert list(exports(sls_conn).values()) == [["1", "2"]]
    assert watermarks(name)[f"sls_watermark/{name}/export"]["watermark"] == {"int": 3}
    # Its task state cleaned ([state_store] clear_on_success): the watermark names the run.
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(TaskStateStoreModel).where(TaskStateStoreModel.dag_id == name))
    assert rerun(dag, run_id) == "failed"
    assert "this run already exported its window [-, 3) of" in capsys.readouterr().out

    resend = export_dag(name, Incremental("n", on_rerun="resend"))
    assert rerun(resend, run_id) == "success"
    assert sorted(exports(sls_conn).values()) == [["1", "2"], ["1", "2"]]  # the same window, a new id
    assert watermarks(name)[f"sls_watermark/{name}/export"]["watermark"] == {"int": 3}
    # The next run carries on from the watermark.
    assert run_day(resend, 1) == "success"
    assert sorted(exports(sls_conn).values()) == [["1", "2"], ["1", "2"], ["3"]]


def test_failed_run_leaves_the_watermark_and_the_next_run_takes_its_window_over(
    sls_conn: SlsEmulator, db: sqlite3.Connection, capsys: pytest.CaptureFixture
) -> None:
    name = dag_id()
    dag = export_dag(name, Incremental("n"))
    key = f"sls_watermark/{name}/export"
    insert(db, [(1, 1, "eu"), (2, 2, "eu"), (3, 3, "eu")])
    assert run_day(dag, 0) == "success"
    insert(db, [(4, 4, "eu"), (5, 5, "eu")])
    sls_conn.faults.fail_next(1000, status=400, error_code="PostBodyInvalid")
    assert run_day(dag, 1) == "failed"  # no retries: failed for good, its window claimed
    record = watermarks(name)[key]
    assert record["watermark"] == {"int": 3} and record["claim"]["end"] == {"int": 5}
    sls_conn.faults.clear()
    insert(db, [(6, 6, "eu")])
    capsys.readouterr()
    assert run_day(dag, 2) == "success"
    assert "failed without finishing it; this run takes its rows over" in capsys.readouterr().out
    assert watermarks(name)[key]["watermark"] == {"int": 6} and "claim" not in watermarks(name)[key]
    exactly_once(sls_conn, {"1", "2", "3", "4", "5"})


def test_a_run_in_progress_holds_its_window() -> None:
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r2", map_index=-1, get_ti_count=lambda **kw: 0)
    stores: dict = {None: {}}
    run = IncrementalRun(
        Incremental("n"), {"ti": ti, "task_state_store": {}, "asset_state_store": stores}, None
    )
    run._claim_check({"claim": {"run_id": "r2", "end": {"int": 5}}}, "r2")  # its own: fine
    with pytest.raises(SlsConfigError, match="run r1 is exporting a window of sls_watermark/d/t and has not"):
        run._claim_check({"claim": {"run_id": "r1", "end": {"int": 5}}}, "r2")
    with pytest.raises(SlsConfigError, match=r"must name it in \.partial\(\)"):
        IncrementalRun(Incremental("n"), {"ti": ti, "task_state_store": {}}, None)


class Store(dict):
    """Airflow's state stores in memory (JSON values)."""

    def set(self, key: str, value: Any) -> None:
        self[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.pop(key, None)


def test_retries_read_the_first_tries_window(db: sqlite3.Connection) -> None:
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    hook = SqliteHook(sqlite_conn_id="warehouse")
    insert(db, [(1, 1, "eu"), (2, 2, "eu"), (3, 3, "eu")])
    task, asset = Store(), Store()

    def attempt(run_id: str = "r1") -> IncrementalRun:
        ti = SimpleNamespace(dag_id="d", task_id="t", run_id=run_id, map_index=-1)
        context = {"ti": ti, "task_state_store": task, "asset_state_store": {None: asset}}
        return IncrementalRun(Incremental("n"), context, None)

    first = attempt()
    assert (first.decide(hook, "SELECT * FROM events", None).end, first.window.start) == (3, None)
    insert(db, [(4, 9, "eu")])  # the source moves on between tries
    assert attempt().decide(hook, "SELECT * FROM events", None).end == 3  # the same window
    # A try that moved the watermark and died before marking its window done: the retry goes on.
    undone = dict(task["sls_incremental_window"])
    first.done({"rows": 2, "export_id": "e1"})
    task["sls_incremental_window"] = undone
    assert asset["sls_watermark/d/t"]["watermark"] == {"int": 3} and "claim" not in asset["sls_watermark/d/t"]
    assert attempt().decide(hook, "SELECT * FROM events", None).end == 3
    # Another run took the window over after this one failed: this one's retry sends nothing.
    asset.set("sls_watermark/d/t", {"watermark": {"int": 3}, "claim": {"run_id": "r2", "end": {"int": 9}}})
    with pytest.raises(SlsConfigError, match="was taken over by run r2 after this run failed"):
        attempt().decide(hook, "SELECT * FROM events", None)


def test_null_cursor_fails_or_is_skipped_with_a_warning(
    sls_conn: SlsEmulator, db: sqlite3.Connection, capsys: pytest.CaptureFixture
) -> None:
    insert(db, [(1, 1, "eu"), (2, None, "eu"), (3, 2, "eu")])
    assert run_day(export_dag(dag_id(), Incremental("n")), 0) == "failed"
    assert "1 row(s) of the query have a NULL 'n'" in capsys.readouterr().out
    assert exports(sls_conn) == {}
    assert run_day(export_dag(dag_id(), Incremental("n", on_null="skip")), 0) == "success"
    assert "1 row(s) with a NULL 'n' are skipped" in capsys.readouterr().out
    assert list(exports(sls_conn).values()) == [["1"]]


def test_missing_cursor_column_fails_naming_the_columns(
    sls_conn: SlsEmulator, db: sqlite3.Connection, capsys: pytest.CaptureFixture
) -> None:
    insert(db, [(1, 1, "eu")])
    assert run_day(export_dag(dag_id(), Incremental("created")), 0) == "failed"
    out = capsys.readouterr().out
    assert "'created' is not a column of the query's result (its columns: id, n, region, at)" in out
    assert exports(sls_conn) == {}


def test_a_statement_that_is_not_a_read_is_refused_before_the_window_query(
    sls_conn: SlsEmulator, db: sqlite3.Connection, capsys: pytest.CaptureFixture
) -> None:
    """The window's first query wraps the sql in a subquery: the read-only check comes before it, so
    the error is the clear one (an input error, no retries spent), not the database's syntax error."""
    insert(db, [(1, 1, "eu"), (2, 2, "eu")])
    assert run_day(export_dag(dag_id(), Incremental("n"), sql="DELETE FROM events"), 0) == "failed"
    out = capsys.readouterr().out
    assert "The sql is refused, nothing was run: it is a DELETE statement" in out
    assert "syntax error" not in out
    assert db.execute("SELECT COUNT(*) FROM events").fetchone() == (2,)
    assert exports(sls_conn) == {}


def test_user_parameters_and_percent_signs_stay_the_users(
    sls_conn: SlsEmulator, db: sqlite3.Connection
) -> None:
    insert(db, [(1, 1, "e%"), (2, 2, "us"), (3, 3, "e%"), (4, 4, "e%")])
    sql = "SELECT * FROM events WHERE region LIKE :region -- a comment at the end"
    dag = export_dag(dag_id(), Incremental("n"), sql=sql, parameters={"region": "e%"})
    assert run_day(dag, 0) == "success"
    assert list(exports(sls_conn).values()) == [["1", "3"]]


# --- without a DAG run -----------------------------------------------------------------------------


def test_config_is_validated_once() -> None:
    assert Incremental("n", order_by="id").order_by == ("id",)
    for bad, message in [
        ({"cursor_column": ""}, "cursor_column"),
        ({"cursor_column": "n", "end": "now"}, "end must be one of max, clock"),
        ({"cursor_column": "n", "lag": -1}, "lag must not be negative"),
        ({"cursor_column": "n", "end": "clock", "lag": 5}, "lag must be a timedelta"),
        ({"cursor_column": "n", "initial_value": object()}, "initial_value must be"),
        ({"cursor_column": "n", "key": "a b"}, "key must be"),
        ({"cursor_column": "n", "on_null": "ignore"}, "on_null"),
        ({"cursor_column": "n", "on_rerun": "again"}, "on_rerun"),
    ]:
        with pytest.raises(SlsConfigError, match=message):
            Incremental(**bad)
    with pytest.raises(SlsConfigError, match="needs sql="):
        SlsWebTrackingOperator(task_id="t", dataframe=[], incremental=Incremental("n"))


@pytest.mark.parametrize(
    "value",
    [5, 2.5, Decimal("1.10"), "b", dt.date(2026, 1, 2), dt.datetime(2026, 1, 2, 3), DAY0],
)
def test_watermark_values_keep_their_type(value: Any) -> None:
    back = decode_value(json.loads(json.dumps(encode_value(value))))
    assert back == value and type(back) is type(value) or isinstance(value, dt.datetime)


def test_window_query_binds_in_each_paramstyle() -> None:
    common = {"column": "n", "order_by": ["id"], "start": 3, "end": 5}
    sql, params = window_query(
        "SELECT * FROM t WHERE a LIKE 'x%';", None, dialect="postgres", style="format", **common
    )
    assert sql == (
        "SELECT * FROM (\nSELECT * FROM t WHERE a LIKE 'x%%'\n) AS sls_window "
        'WHERE "n" >= %s AND "n" < %s ORDER BY "n", "id"'
    )
    assert params == [3, 5]
    sql, params = window_query(
        "SELECT * FROM t WHERE a = %(a)s", {"a": 1}, dialect="mysql", style="format", **common
    )
    assert "`n` >= %(sls_window_start)s AND `n` < %(sls_window_end)s ORDER BY `n`, `id`" in sql
    assert params == {"a": 1, "sls_window_start": 3, "sls_window_end": 5}
    sql, params = window_query("SELECT * FROM t WHERE a = ?", [1], dialect="sqlite", style="qmark", **common)
    assert sql.endswith('WHERE "n" >= ? AND "n" < ? ORDER BY "n", "id"') and params == [1, 3, 5]
    sql, params = window_query(
        "SELECT 1 AS n",
        None,
        dialect="postgres",
        style="settings",
        pg_type="bigint",
        **{**common, "start": None},
    )
    assert "\"n\" < CAST(current_setting('sls.sls_window_end') AS bigint)" in sql and params == {
        "sls.sls_window_end": "5"
    }
    assert 'ORDER BY "n", "id"' in sql
    with pytest.raises(SlsConfigError, match="SHOW cannot"):
        window_query("SHOW TABLES", None, dialect="mysql", style="format", **common)


def test_airflow_before_3_3_fails_before_reading() -> None:
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=-1)
    with pytest.raises(SlsConfigError, match=r"needs Airflow 3\.3 or later .* Nothing was read or sent"):
        IncrementalRun(Incremental("n"), {"ti": ti}, asset=None)


def test_backfill_window_is_the_data_interval() -> None:
    from sls_provider.incremental import _explicit_bounds, bound_for

    start, end = DAY0, DAY0 + dt.timedelta(days=1)
    context = {
        "dag_run": SimpleNamespace(conf={}, run_type="backfill"),
        "data_interval_start": start,
        "data_interval_end": end,
    }
    assert _explicit_bounds(context) == (start, end, "the backfill run's data interval")
    assert bound_for(start, "sqlite") == "2026-01-01 00:00:00"
    assert bound_for(start, "mysql") == dt.datetime(2026, 1, 1)
    assert bound_for(start, "postgres") == start
    assert _explicit_bounds({"dag_run": SimpleNamespace(conf={}, run_type="scheduled")}) is None
    empty = Window(start=3, end=3, explicit=False, watermark_key="k", run_id="r")
    assert (
        empty.empty and not Window(None, 3, False, "k", "r").empty and Window(1, None, False, "k", "r").empty
    )
