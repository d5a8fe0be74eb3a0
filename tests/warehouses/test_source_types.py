"""The source layer's fixes without a server: what MariaDB here cannot produce (MySQL 5.7+'s JSON type,
out-of-day TIME values) and the column choice from cursor metadata."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from sls_provider.core.values import to_text
from sls_provider.sources.frames import frames_from_rows
from sls_provider.sources.types import ColumnFixer, description_fixes, mysql_json, mysql_time, range_text

# MySQLdb-style descriptions: (name, type_code, display_size, internal_size, precision, scale, null_ok)
MYSQL_DESCRIPTION = [
    ("flag", 1, 1, 1, 1, 0, 1),  # TINYINT(1) / BOOLEAN
    ("small", 1, 4, 4, 4, 0, 1),  # TINYINT(4)
    ("bit1", 16, 1, 1, 1, 0, 1),
    ("bit8", 16, 1, 8, 8, 0, 1),
    ("tm", 11, 8, 10, 10, 0, 1),
    ("doc", 245, 20, 4294967295, 4294967295, 0, 1),  # MySQL's JSON
    ("note", 252, 4, 262140, 262140, 0, 1),
]


def test_mysql_columns_are_chosen_from_the_description() -> None:
    fixes = description_fixes("MySQLdb", MYSQL_DESCRIPTION)
    assert sorted(fixes) == [0, 2, 3, 4, 5]
    assert description_fixes("psycopg", MYSQL_DESCRIPTION) == {}
    # mysql-connector-python reports no width: its TINYINT(1) and BIT are left alone.
    connector = [(d[0], d[1], None, None, None, None, 1, 0, 63) for d in MYSQL_DESCRIPTION]
    assert sorted(description_fixes("mysql", connector)) == [4, 5]


def test_mysql_row_becomes_the_logical_row() -> None:
    fixer = ColumnFixer("MySQLdb", MYSQL_DESCRIPTION)
    rows = [
        (1, 5, b"\x01", b"\x05", dt.timedelta(hours=25, seconds=1), '{"a": [1, "é"], "b": {"c": null}}', "x"),
        (0, 1, b"\x00", b"\x00", dt.timedelta(days=-1, seconds=82676, microseconds=500000), '"text"', "y"),
        (7, None, None, None, None, None, None),
    ]
    frame = fixer(frames_from_rows(rows, [d[0] for d in MYSQL_DESCRIPTION]))
    texts = [[to_text(v) for v in row] for row in frame.itertuples(index=False)]
    assert texts == [
        ["true", "5", "true", "5", "25:00:01", '{"a":[1,"é"],"b":{"c":null}}', "x"],
        ["false", "1", "false", "0", "-01:02:03.500000", "text", "y"],
        ["7", None, None, None, None, None, None],  # TINYINT(1) holding 7 stays 7: nothing is lost
    ]


def test_time_and_json_edge_values() -> None:
    assert mysql_time(dt.timedelta(0)) == "00:00:00"
    assert mysql_time(dt.timedelta(hours=838, minutes=59, seconds=59)) == "838:59:59"
    assert mysql_time(-dt.timedelta(hours=838, minutes=59, seconds=59)) == "-838:59:59"
    assert mysql_time(dt.timedelta(microseconds=250)) == "00:00:00.000250"
    assert mysql_json(b'{"k": 1}') == {"k": 1}
    assert mysql_json("not json") == "not json"


def test_ranges_from_both_postgres_drivers() -> None:
    from psycopg.types.range import Range
    from psycopg2.extras import DateTimeTZRange, NumericRange

    utc = dt.UTC
    assert range_text(Range(1, 5)) == range_text(NumericRange(1, 5)) == "[1,5)"
    half = Decimal("2.5")
    assert range_text(Range(None, half, "(]")) == range_text(NumericRange(None, half, "(]")) == "(,2.5]"
    assert range_text(Range(empty=True)) == range_text(NumericRange(empty=True)) == "empty"
    stamps = (dt.datetime(2026, 1, 1, tzinfo=utc), dt.datetime(2026, 1, 2, tzinfo=utc))
    assert range_text(Range(*stamps, "[]")) == range_text(DateTimeTZRange(*stamps, "[]"))
    assert range_text(Range(*stamps, "[]")) == "[2026-01-01T00:00:00+00:00,2026-01-02T00:00:00+00:00]"


def test_value_fixes_wait_for_the_first_non_null() -> None:
    from psycopg.types.range import Range

    fixer = ColumnFixer("psycopg2", [("r", 3904), ("b", 17), ("n", 23)])
    first = fixer(frames_from_rows([(None, None, 1)], ["r", "b", "n"]))
    assert first.iloc[0].tolist() == [None, None, 1] and fixer.undecided == {0, 1}
    second = fixer(frames_from_rows([(Range(1, 2), memoryview(b"\x00"), 2)], ["r", "b", "n"]))
    assert second.iloc[0].tolist() == ["[1,2)", b"\x00", 2] and fixer.undecided == set()


@pytest.mark.parametrize("value", [1, "x", dt.date(2026, 1, 1), [1], {"a": 1}, b"x", Decimal("1")])
def test_plain_values_need_no_fix(value: object) -> None:
    fixer = ColumnFixer("psycopg", [("v", 0)])
    assert fixer(pd.DataFrame({"v": pd.Series([value], dtype=object)})).iloc[0, 0] == value
    assert fixer.fixes == {}
