"""to_text: the one documented spelling of every value type (the reference the encoder must match).

Expected strings are written out literally, or come from the standard library function the spelling
is defined by (repr, isoformat, json.dumps, base64), never from the module under test.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import json
import math
import uuid
from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sls_provider.core.encode import column_text
from sls_provider.core.values import to_json_text, to_text

TZ_PLUS8 = dt.timezone(dt.timedelta(hours=8))


class Color(enum.IntEnum):
    RED = 7


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "",
        "héllo wörld",
        "中文日志",
        "😀 emoji 🎉",
        'say "hi"',
        "back\\slash",
        "line\nbreak\r\n",
        "tab\tand\x00nul\x1f\x7f",
        "\u2028\u2029",
        '{"looks": ["like json"]}',
        "null",
        "NaN",
    ],
)
def test_str_is_sent_as_is(value: str) -> None:
    assert to_text(value) == value


def test_numpy_str_is_sent_as_is() -> None:
    assert to_text(np.str_("ümlaut")) == "ümlaut"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "true"), (False, "false"), (np.bool_(True), "true"), (np.bool_(False), "false")],
)
def test_bool(value: object, expected: str) -> None:
    assert to_text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        (-5, "-5"),
        (1234567890123, "1234567890123"),
        (2**70, "1180591620717411303424"),
        (-(2**63), "-9223372036854775808"),
        (np.int8(-3), "-3"),
        (np.int64(9223372036854775807), "9223372036854775807"),
        (np.uint64(2**64 - 1), "18446744073709551615"),
        (Color.RED, "7"),
    ],
)
def test_integers_are_digits(value: object, expected: str) -> None:
    assert to_text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, "0.1"),
        (3.0, "3.0"),
        (-2.5, "-2.5"),
        (-0.0, "-0.0"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (1.5e-7, "1.5e-07"),
        (1e20, "1e+20"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (123456.789, "123456.789"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
        (np.float64(0.1), "0.1"),
        (np.float64("inf"), "inf"),
    ],
)
def test_floats_are_shortest_repr(value: float, expected: str) -> None:
    assert to_text(value) == expected
    assert float(expected) == value  # round-trips


def test_float32_is_spelled_as_the_float64_it_widens_to() -> None:
    assert to_text(np.float32(0.5)) == "0.5"
    assert to_text(np.float32(0.1)) == repr(float(np.float32(0.1)))


@pytest.mark.parametrize(
    "value",
    [
        None,
        float("nan"),
        np.nan,
        np.float32("nan"),
        pd.NA,
        pd.NaT,
        np.datetime64("NaT"),
        np.timedelta64("NaT"),
        decimal.Decimal("NaN"),
        decimal.Decimal("sNaN"),
    ],
    ids=repr,
)
def test_missing_values_leave_the_key_out(value: object) -> None:
    assert to_text(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 7), "2024-01-02T03:04:05.000007"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=TZ_PLUS8), "2024-01-02T03:04:05.123456+08:00"),
        (dt.datetime(2024, 1, 2, tzinfo=dt.UTC), "2024-01-02T00:00:00+00:00"),
        (pd.Timestamp("2024-01-02 03:04:05"), "2024-01-02T03:04:05"),
        (pd.Timestamp("2024-01-02 03:04:05.123456"), "2024-01-02T03:04:05.123456"),
        (pd.Timestamp("2024-01-02 03:04:05.123456789"), "2024-01-02T03:04:05.123456789"),
        (pd.Timestamp("2024-01-02 03:04:05.000000001"), "2024-01-02T03:04:05.000000001"),
        (
            pd.Timestamp("2024-01-02 03:04:05.123456789", tz="America/New_York"),
            "2024-01-02T03:04:05.123456789-05:00",
        ),
        (pd.Timestamp("2024-07-02 03:04:05", tz="Asia/Kolkata"), "2024-07-02T03:04:05+05:30"),
        (np.datetime64("2024-01-02T03:04:05.250"), "2024-01-02T03:04:05.250000"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.time(1, 2, 3), "01:02:03"),
        (dt.time(1, 2, 3, 4), "01:02:03.000004"),
        (dt.time(23, 59, 59, tzinfo=TZ_PLUS8), "23:59:59+08:00"),
    ],
)
def test_datetimes_are_isoformat(value: object, expected: str) -> None:
    assert to_text(value) == expected


def test_timedelta_is_iso_duration() -> None:
    assert to_text(dt.timedelta(seconds=1)) == "P0DT0H0M1S"
    assert to_text(pd.Timedelta("1s")) == "P0DT0H0M1S"
    # np.timedelta64 subclasses np.signedinteger: it must not come out as bare digits.
    assert to_text(np.timedelta64(5, "s")) == "P0DT0H0M5S"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (decimal.Decimal("1.10"), "1.10"),
        (decimal.Decimal("-0.000001"), "-0.000001"),
        (decimal.Decimal("1E+3"), "1E+3"),
        (decimal.Decimal("12345678901234567890.123456789"), "12345678901234567890.123456789"),
        (decimal.Decimal("Infinity"), "Infinity"),
    ],
)
def test_decimal_via_str(value: decimal.Decimal, expected: str) -> None:
    assert to_text(value) == expected


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_bytes_are_base64(kind: type) -> None:
    raw = b"\x00\xffhi"
    assert to_text(kind(raw)) == "AP9oaQ=="
    assert base64.b64decode(to_text(kind(raw))) == raw


def test_uuid_is_its_canonical_string() -> None:
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert to_text(value) == "12345678-1234-5678-1234-567812345678"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": "é", "b": [1, 2.5, None, True]}, '{"a":"é","b":[1,2.5,null,true]}'),
        ({}, "{}"),
        ([], "[]"),
        (["x", "中", "😀"], '["x","中","😀"]'),
        ((1, "two"), '[1,"two"]'),
        ({"q": 'a"b\\c\n'}, '{"q":"a\\"b\\\\c\\n"}'),
        (np.array([1, 2, 3]), "[1,2,3]"),
        (np.array([[1.5, 2.0], [3.0, 4.0]]), "[[1.5,2.0],[3.0,4.0]]"),
        (np.array(["é", "b"]), '["é","b"]'),
        (OrderedDict([("z", 1), ("a", 2)]), '{"z":1,"a":2}'),
        ({3, 1, 2}, "[1,2,3]"),
        (frozenset({"b"}), '["b"]'),
    ],
    ids=repr,
)
def test_containers_are_compact_json_keeping_non_ascii(value: object, expected: str) -> None:
    text = to_text(value)
    assert text == expected
    json.loads(text)


def test_values_nested_in_containers_use_the_same_spelling() -> None:
    value = {
        "when": dt.datetime(2024, 1, 2, 3, 4, 5),
        "day": dt.date(2024, 1, 2),
        "amount": decimal.Decimal("1.10"),
        "id": uuid.UUID(int=1),
        "raw": b"\x00\xff",
    }
    assert json.loads(to_text(value)) == {
        "when": "2024-01-02T03:04:05",
        "day": "2024-01-02",
        "amount": "1.10",
        "id": "00000000-0000-0000-0000-000000000001",
        "raw": "AP8=",
    }


def test_numpy_values_nested_in_containers_stay_json_numbers_arrays_and_booleans() -> None:
    # Not JSON text nested as a quoted string ('{"a":"[1,2]"}').
    value = {
        "i": np.int64(1),
        "f": np.float32(0.5),
        "b": np.bool_(True),
        "arr": np.array([1, 2]),
        "set": {2, 1},
        "inner": [np.int32(3), np.array(["x"])],
    }
    assert json.loads(to_text(value)) == {
        "i": 1,
        "f": 0.5,
        "b": True,
        "arr": [1, 2],
        "set": [1, 2],
        "inner": [3, ["x"]],
    }
    assert json.loads(to_text([np.array([1, 2]), {"k": np.array([[1]])}])) == [[1, 2], {"k": [[1]]}]


def test_datetime_arrays_and_scalars_inside_containers_stay_isoformat() -> None:
    stamps = np.array(["2024-01-02T03:04:05.123456789", "NaT"], dtype="datetime64[ns]")
    assert to_text(stamps) == '["2024-01-02T03:04:05.123456789",null]'
    grid = np.array([["2024-01-02", "2024-01-03"]], dtype="datetime64[ns]")
    assert json.loads(to_text(grid)) == [["2024-01-02T00:00:00", "2024-01-03T00:00:00"]]
    spans = np.array([1, 90], dtype="timedelta64[s]")
    assert json.loads(to_text({"spans": spans})) == {"spans": ["P0DT0H0M1S", "P0DT0H1M30S"]}
    nested = {"at": np.datetime64("2024-01-02T03:04:05", "ns"), "took": np.timedelta64(5, "s")}
    assert json.loads(to_text(nested)) == {"at": "2024-01-02T03:04:05", "took": "P0DT0H0M5S"}


def test_nan_and_infinity_inside_containers_are_json_null() -> None:
    # Strict JSON has no NaN or Infinity; SLS's json_extract() cannot read Python's spelling of them.
    nan, inf = float("nan"), float("inf")
    assert to_text({"a": nan, "b": [1.5, -inf, {"c": inf}], "d": (nan,)}) == (
        '{"a":null,"b":[1.5,null,{"c":null}],"d":[null]}'
    )
    assert (
        to_text([np.float64("nan"), np.array([1.0, np.inf]), {2.0, nan} - {nan}]) == "[null,[1.0,null],[2.0]]"
    )
    assert (
        to_text({"m": pd.Series([0.5, np.nan]).to_dict(), "s": {nan}})
        == '{"m":{"0":0.5,"1":null},"s":[null]}'
    )


def test_to_json_text_is_compact() -> None:
    assert to_json_text({"a": [1, {"b": None}]}) == '{"a":[1,{"b":null}]}'
    assert " " not in to_json_text({"a": [1, 2], "b": {"c": 3}})


def test_unknown_types_fall_back_to_str() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing-ü"

    assert to_text(Thing()) == "thing-ü"
    assert to_text(complex(1, 2)) == "(1+2j)"


@settings(max_examples=150, deadline=None)
@given(st.floats(allow_nan=False))
def test_any_finite_or_infinite_float_round_trips_through_repr(value: float) -> None:
    text = to_text(value)
    assert text == repr(value)
    assert float(text) == value or (math.isnan(value) and math.isnan(float(text)))


@settings(max_examples=100, deadline=None)
@given(st.integers())
def test_any_int_is_its_digits(value: int) -> None:
    text = to_text(value)
    assert text == str(value)
    assert int(text) == value


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_any_str_is_unchanged(value: str) -> None:
    assert to_text(value) == value


# Years 0-9999 are four digits; beyond, ISO 8601 expanded years: a sign and at least four digits.
EXPANDED_YEARS = [
    ("12000-01-01T01:02:03", "+12000-01-01T01:02:03"),
    ("-0100-06-01T00:00:00", "-0100-06-01T00:00:00"),
    ("-0001-06-01T00:00:00", "-0001-06-01T00:00:00"),
    ("0000-01-01T00:00:00", "0000-01-01T00:00:00"),
    ("0999-12-31T23:59:59", "0999-12-31T23:59:59"),
    ("2026-03-01T10:00:05", "2026-03-01T10:00:05"),
]


def test_years_beyond_9999_or_before_1_are_spelled_alike_in_every_column_kind() -> None:
    stamps = np.array([stamp for stamp, _ in EXPANDED_YEARS], dtype="datetime64[s]")
    expected = [text for _, text in EXPANDED_YEARS]
    column = pd.Series(stamps)
    assert column.dtype == "datetime64[s]"
    aware = column.dt.tz_localize("UTC")
    spellings = {
        "datetime64[s] column": column,
        "object column of Timestamps": column.astype(object),
        "object column of numpy datetime64": pd.Series(list(stamps), dtype=object),
    }
    for kind, series in spellings.items():
        assert column_text(series, "t").to_list() == expected, kind
    assert [to_text(v) for v in stamps] == expected
    assert [to_text(v) for v in column] == expected
    with_offset = [text + "+00:00" for text in expected]
    assert column_text(aware, "t").to_list() == with_offset
    assert column_text(aware.astype(object), "t").to_list() == with_offset
    assert [to_text(v) for v in aware] == with_offset
