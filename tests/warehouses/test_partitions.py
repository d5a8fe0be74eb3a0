"""``sls_provider.partitions``: ranges that cover every row exactly once, on SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sls_provider.core.errors import SlsConfigError, SlsInputError
from sls_provider.partitions import date_partitions, key_ranges, range_queries, split_range
from tests.warehouses.conftest import Server, table_name
from tests.warehouses.web_events import build


def covered(ranges: list[dict[str, int]], ids: list[int]) -> list[int]:
    """How many ranges each id falls in."""
    return [sum(r["lo"] <= i < r["hi"] for r in ranges) for i in ids]


def test_split_range_is_contiguous_and_even() -> None:
    assert split_range(lo=0, hi=10, parts=3) == [{"lo": 0, "hi": 4}, {"lo": 4, "hi": 7}, {"lo": 7, "hi": 10}]
    assert split_range(lo=5, hi=7, parts=8) == [{"lo": 5, "hi": 6}, {"lo": 6, "hi": 7}]
    assert split_range(lo=3, hi=3, parts=2) == []
    with pytest.raises(SlsConfigError, match="parts"):
        split_range(lo=0, hi=1, parts=0)


def sqlite_hook(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.sdk import BaseHook

    monkeypatch.setenv("AIRFLOW_CONN_PARTS", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return BaseHook.get_connection("parts").get_hook()


@pytest.mark.parametrize("balanced", [False, True])
def test_key_ranges_on_sqlite_cover_every_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, balanced: bool
) -> None:
    ids = build(tmp_path / "w.db", 1000, first_id=-50)
    sqlite_hook(tmp_path / "w.db", monkeypatch)
    ranges = key_ranges(conn_id="parts", table="web_events", key="id", parts=4, balanced=balanced)
    assert len(ranges) == 4
    assert set(covered(ranges, ids)) == {1}
    assert ranges[0]["lo"] == min(ids) and ranges[-1]["hi"] == max(ids) + 1
    assert all(a["hi"] == b["lo"] for a, b in zip(ranges, ranges[1:], strict=False))
    if balanced:  # about the same number of rows each
        sizes = [sum(r["lo"] <= i < r["hi"] for i in ids) for r in ranges]
        assert sizes == [250] * 4
    # The ready-made queries select every row exactly once.
    seen: list[int] = []
    with sqlite3.connect(tmp_path / "w.db") as db:
        for query in range_queries(select="SELECT id FROM web_events", key="id", ranges=ranges):
            seen += [row[0] for row in db.execute(query["sql"])]
    db.close()
    assert seen == ids


def test_key_ranges_where_empty_table_and_bad_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(tmp_path / "w.db", 300)
    hook = sqlite_hook(tmp_path / "w.db", monkeypatch)
    ranges = key_ranges(hook=hook, table="web_events", key="id", parts=2, where="event_type = 'click'")
    [(n,)] = hook.get_records(
        "SELECT COUNT(*) FROM web_events WHERE event_type = 'click' AND id >= ? AND id < ?",
        [ranges[0]["lo"], ranges[-1]["hi"]],
    )
    assert n == 100
    assert key_ranges(hook=hook, table="web_events", key="id", parts=3, where="1 = 0") == []
    with pytest.raises(SlsConfigError, match="identifier"):
        key_ranges(hook=hook, table="web_events; DROP TABLE x", key="id", parts=2)
    with pytest.raises(SlsInputError, match="integer key"):
        key_ranges(hook=hook, table="web_events", key="page", parts=2)
    with pytest.raises(SlsConfigError, match="conn_id"):
        key_ranges(table="web_events", key="id", parts=2)


def test_range_queries_spell_sql() -> None:
    ranges = [{"lo": 1, "hi": 5}, {"lo": 5, "hi": 9}]
    assert range_queries(select="SELECT * FROM t;", key="id", ranges=ranges, where="kind = 'x'") == [
        {"sql": "SELECT * FROM t WHERE id >= 1 AND id < 5 AND (kind = 'x') ORDER BY id"},
        {"sql": "SELECT * FROM t WHERE id >= 5 AND id < 9 AND (kind = 'x') ORDER BY id"},
    ]
    assert range_queries(select="SELECT a FROM s.t", key="n", ranges=ranges[:1], order_by=False) == [
        {"sql": "SELECT a FROM s.t WHERE n >= 1 AND n < 5"}
    ]


def test_date_partitions() -> None:
    assert date_partitions(start="2026-03-01", end="2026-03-04", step="1d") == [
        {"start": "2026-03-01", "end": "2026-03-02"},
        {"start": "2026-03-02", "end": "2026-03-03"},
        {"start": "2026-03-03", "end": "2026-03-04"},
    ]
    assert date_partitions(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 1), step=1) == []
    assert date_partitions(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 2), step="12h") == [
        {"start": "2026-03-01T00:00:00", "end": "2026-03-01T12:00:00"},
        {"start": "2026-03-01T12:00:00", "end": "2026-03-02T00:00:00"},
    ]
    utc = dt.UTC
    windows = date_partitions(
        start=dt.datetime(2026, 3, 1, tzinfo=utc),
        end="2026-03-01T01:00:00+00:00",
        step=dt.timedelta(minutes=25),
    )
    assert windows == [
        {"start": "2026-03-01T00:00:00+00:00", "end": "2026-03-01T00:25:00+00:00"},
        {"start": "2026-03-01T00:25:00+00:00", "end": "2026-03-01T00:50:00+00:00"},
        {"start": "2026-03-01T00:50:00+00:00", "end": "2026-03-01T01:00:00+00:00"},  # the last is cut at end
    ]
    for bad in ("1w", "0d", -1, "soon"):
        with pytest.raises(SlsConfigError, match="step"):
            date_partitions(start="2026-03-01", end="2026-03-02", step=bad)
    with pytest.raises(SlsConfigError, match="start must be a date"):
        date_partitions(start="March", end="2026-03-02", step="1d")
    with pytest.raises(SlsConfigError, match="aware"):
        date_partitions(start="2026-03-01T00:00:00", end="2026-03-02T00:00:00+00:00", step="1h")


@pytest.mark.parametrize("which", ["postgres", "mariadb"])
def test_key_ranges_on_real_servers(
    which: str, request: pytest.FixtureRequest, scratch_tables: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import BaseHook

    server: Server = request.getfixturevalue(which)
    table = table_name("sls_parts")
    scratch_tables.append((server, table))
    # Skewed keys: 1..900 then 100000..100099.
    server.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY)")
    values = ", ".join(f"({i})" for i in [*range(1, 901), *range(100_000, 100_100)])
    server.execute(f"INSERT INTO {table} (id) VALUES {values}")
    monkeypatch.setenv("AIRFLOW_CONN_PARTS_SRV", server.airflow_conn())
    hook = BaseHook.get_connection("parts_srv").get_hook()
    ids = [*range(1, 901), *range(100_000, 100_100)]
    even = key_ranges(hook=hook, table=table, key="id", parts=4)
    balanced = key_ranges(hook=hook, table=table, key="id", parts=4, balanced=True)
    assert set(covered(even, ids)) == set(covered(balanced, ids)) == {1}
    assert [sum(r["lo"] <= i < r["hi"] for i in ids) for r in balanced] == [250] * 4
    assert [sum(r["lo"] <= i < r["hi"] for i in ids) for r in even] == [900, 0, 0, 100]  # why balanced exists
