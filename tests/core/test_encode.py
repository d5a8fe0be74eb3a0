"""encode_frame: the columnar NDJSON encoder must spell every cell exactly as to_text does.

Each case states the expected strings literally and also checks them against to_text applied to the
cell values (``series.iloc[i]``), so a drift of either side shows up.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
import zoneinfo
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sls_provider.core import encode
from sls_provider.core.encode import EncodedRows, encode_frame, from_ndjson
from sls_provider.core.errors import SlsInputError
from sls_provider.core.values import to_text

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def decode(rows: EncodedRows) -> list[dict[str, str]]:
    """Parse the rows as one JSON array, independently of EncodedRows.row, and check the framing
    (each row followed by a comma at its ``ends`` offset) agrees with it."""
    data = bytes(rows.data)
    assert data == b"" or data.endswith(b",")
    assert all(data[e] == ord(",") for e in rows.ends.tolist())
    objs = json.loads(b"[" + data[:-1] + b"]") if data else []
    assert len(objs) == len(rows)
    out = []
    for i, obj in enumerate(objs):
        assert json.loads(rows.row(i)) == obj
        assert isinstance(obj, dict)
        assert all(isinstance(v, str) for v in obj.values()), obj
        out.append(obj)
    return out


def reference(frame: pd.DataFrame, keys: list[str]) -> list[dict[str, str]]:
    """What to_text says each row must be: every non-missing cell, under its key, in column order."""
    rows = []
    for i in range(len(frame)):
        row = {}
        for j, key in enumerate(keys):
            text = to_text(frame.iloc[:, j].iloc[i])
            if text is not None:
                row[key] = text
        rows.append(row)
    return rows


def expected_rows(key: str, texts: list[str | None]) -> list[dict[str, str]]:
    return [{key: t} if t is not None else {} for t in texts]


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


CASES: list[tuple[str, pd.Series, list[str | None]]] = [
    ("int64", pd.Series([1, -2, 2**63 - 1], dtype="int64"), ["1", "-2", "9223372036854775807"]),
    ("int8", pd.Series([-128, 127], dtype="int8"), ["-128", "127"]),
    ("uint64", pd.Series([2**64 - 1, 0], dtype="uint64"), ["18446744073709551615", "0"]),
    ("Int64 with NA", pd.Series([1, pd.NA, 3, -4], dtype="Int64"), ["1", None, "3", "-4"]),
    ("UInt8 with NA", pd.Series([pd.NA, 255], dtype="UInt8"), [None, "255"]),
    ("int64[pyarrow] with null", pd.Series([7, None], dtype="int64[pyarrow]"), ["7", None]),
    ("object ints with None", pd.Series([1, None, 3], dtype=object), ["1", None, "3"]),
    (
        "object ints beyond int64",
        pd.Series([2**70, None, 1, -(2**63) - 1], dtype=object),
        ["1180591620717411303424", None, "1", "-9223372036854775809"],
    ),
    ("object numpy ints", pd.Series([np.int64(5), np.uint8(6), None], dtype=object), ["5", "6", None]),
    (
        "float64",
        pd.Series(
            [
                3.0,
                0.1,
                -2.5,
                -0.0,
                1e-5,
                9.99e-5,
                0.0001,
                1e15,
                1e16,
                1e20,
                5e-324,
                float("inf"),
                float("-inf"),
                float("nan"),
            ],
            dtype="float64",
        ),
        [
            "3.0",
            "0.1",
            "-2.5",
            "-0.0",
            "1e-05",
            "9.99e-05",
            "0.0001",
            "1000000000000000.0",
            "1e+16",
            "1e+20",
            "5e-324",
            "inf",
            "-inf",
            None,
        ],
    ),
    ("float64 all NaN", pd.Series([np.nan, np.nan]), [None, None]),
    (
        "float32",
        pd.Series([0.5, 0.1, np.nan, np.inf], dtype="float32"),
        ["0.5", repr(float(np.float32(0.1))), None, "inf"],
    ),
    ("Float64 with NA", pd.Series([0.5, pd.NA, 3.0], dtype="Float64"), ["0.5", None, "3.0"]),
    ("object floats with None", pd.Series([1.5, None, 1e-7], dtype=object), ["1.5", None, "1e-07"]),
    ("bool", pd.Series([True, False]), ["true", "false"]),
    ("boolean with NA", pd.Series([True, pd.NA, False], dtype="boolean"), ["true", None, "false"]),
    ("object bools", pd.Series([True, None, False], dtype=object), ["true", None, "false"]),
    ("string[pyarrow]", pd.Series(["a", None, "é😀", ""], dtype="string[pyarrow]"), ["a", None, "é😀", ""]),
    ("string[python]", pd.Series(["a", None, "é😀", ""], dtype="string[python]"), ["a", None, "é😀", ""]),
    ("str", pd.Series(["a", None, "中文", ""], dtype="str"), ["a", None, "中文", ""]),
    (
        "str python storage, NaN missing",
        pd.Series(["a", None], dtype=pd.StringDtype("python", na_value=np.nan)),
        ["a", None],
    ),
    ("arrow string", pd.Series(["x", None], dtype=pd.ArrowDtype(pa.string())), ["x", None]),
    (
        "object strings",
        pd.Series(['q"uo\\te', "new\nline\r", "\x00\x01\x1f\x7f", "😀 emoji", "\u2028\u2029", None, ""]),
        ['q"uo\\te', "new\nline\r", "\x00\x01\x1f\x7f", "😀 emoji", "\u2028\u2029", None, ""],
    ),
    ("category", pd.Series(["x", None, "y", "x"], dtype="category"), ["x", None, "y", "x"]),
    ("category of ints", pd.Series([1, None, 2], dtype="category"), ["1", None, "2"]),
    (
        "datetime64[ns]",
        pd.Series(
            [
                ts("2024-01-02 03:04:05"),
                ts("2024-01-02 03:04:05.123456"),
                ts("2024-01-02 03:04:05.123456789"),
                pd.NaT,
                ts("2024-01-02 03:04:05.000001"),
                ts("2024-01-02 03:04:05.1"),
                ts("2024-01-02 03:04:05.000000001"),
                ts("1970-01-01"),
            ],
            dtype="datetime64[ns]",
        ),
        [
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05.123456",
            "2024-01-02T03:04:05.123456789",
            None,
            "2024-01-02T03:04:05.000001",
            "2024-01-02T03:04:05.100000",
            "2024-01-02T03:04:05.000000001",
            "1970-01-01T00:00:00",
        ],
    ),
    (
        "datetime64[us]",
        pd.Series([ts("2024-01-02 03:04:05.000007"), pd.NaT, ts("1900-01-01")], dtype="datetime64[us]"),
        ["2024-01-02T03:04:05.000007", None, "1900-01-01T00:00:00"],
    ),
    (
        "datetime64[ms]",
        pd.Series([ts("2024-01-02 03:04:05.123"), pd.NaT], dtype="datetime64[ms]"),
        ["2024-01-02T03:04:05.123000", None],
    ),
    (
        "datetime64[s]",
        pd.Series([ts("2024-01-02 03:04:05"), pd.NaT], dtype="datetime64[s]"),
        ["2024-01-02T03:04:05", None],
    ),
    (
        "datetime64[ns, Asia/Shanghai]",
        pd.Series(
            [ts("2024-01-02 03:04:05"), ts("2024-01-02 03:04:05.123456789"), pd.NaT], dtype="datetime64[ns]"
        ).dt.tz_localize(SHANGHAI),
        ["2024-01-02T03:04:05+08:00", "2024-01-02T03:04:05.123456789+08:00", None],
    ),
    (
        "datetime64[us, UTC]",
        pd.Series([ts("2024-01-02 03:04:05.5"), pd.NaT], dtype="datetime64[us]").dt.tz_localize("UTC"),
        ["2024-01-02T03:04:05.500000+00:00", None],
    ),
    (
        "datetime64[s, America/New_York] across DST",
        pd.Series([ts("2024-01-02 12:00"), ts("2024-07-02 12:00")], dtype="datetime64[s]").dt.tz_localize(
            "America/New_York"
        ),
        ["2024-01-02T12:00:00-05:00", "2024-07-02T12:00:00-04:00"],
    ),
    (
        "datetime64[us, tz] with local mean time offsets (seconds)",
        pd.Series(
            [ts("1883-01-01"), ts("1800-06-01 12:00"), ts("2024-01-01")], dtype="datetime64[us]"
        ).dt.tz_localize("America/New_York"),
        ["1883-01-01T00:00:00-04:56:02", "1800-06-01T12:00:00-04:56:02", "2024-01-01T00:00:00-05:00"],
    ),
    (
        "datetime64[ns, tz] after 2037 keeps the zone's DST rule",
        pd.Series(
            [ts("2100-07-01 12:00"), ts("2100-01-01 12:00"), ts("2100-04-01")], dtype="datetime64[ns]"
        ).dt.tz_localize("America/New_York"),
        ["2100-07-01T12:00:00-04:00", "2100-01-01T12:00:00-05:00", "2100-04-01T00:00:00-04:00"],
    ),
    (
        "datetime64[ns, tz] half-hour offsets",
        pd.Series([ts("2024-01-01 00:00:00.5"), pd.NaT], dtype="datetime64[ns]").dt.tz_localize(
            "America/St_Johns"
        ),
        ["2024-01-01T00:00:00.500000-03:30", None],
    ),
    (
        "timestamp[us][pyarrow]",
        pd.Series([ts("2024-01-01 00:00:00.5"), None], dtype="timestamp[us][pyarrow]"),
        ["2024-01-01T00:00:00.500000", None],
    ),
    (
        "object naive datetimes",
        pd.Series(
            [dt.datetime(2024, 1, 2, 3, 4, 5), None, dt.datetime(2024, 1, 2, 3, 4, 5, 7)], dtype=object
        ),
        ["2024-01-02T03:04:05", None, "2024-01-02T03:04:05.000007"],
    ),
    (
        "object tz-aware datetimes",
        pd.Series(
            [dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))), None],
            dtype=object,
        ),
        ["2024-01-02T03:04:05-05:30", None],
    ),
    ("object dates", pd.Series([dt.date(2024, 1, 2), None], dtype=object), ["2024-01-02", None]),
    (
        "object times",
        pd.Series([dt.time(1, 2, 3), dt.time(1, 2, 3, 4)], dtype=object),
        ["01:02:03", "01:02:03.000004"],
    ),
    ("timedelta64[ns]", pd.Series(pd.to_timedelta(["1s", None])), ["P0DT0H0M1S", None]),
    (
        "object decimals",
        pd.Series([decimal.Decimal("1.10"), decimal.Decimal("NaN"), None, decimal.Decimal("1E+3")]),
        ["1.10", None, None, "1E+3"],
    ),
    ("object uuids", pd.Series([uuid.UUID(int=5), None]), ["00000000-0000-0000-0000-000000000005", None]),
    ("object bytes", pd.Series([b"\x00\xff", bytearray(b"hi"), None]), ["AP8=", "aGk=", None]),
    (
        "object containers",
        pd.Series([{"a": "é", "b": [1, 2]}, [1, "x"], np.array([1, 2]), (3,), {"n": np.int64(4)}, None]),
        ['{"a":"é","b":[1,2]}', '[1,"x"]', "[1,2]", "[3]", '{"n":4}', None],
    ),
    (
        "object mixed",
        pd.Series([1, "a", 2.5, True, None, float("nan"), pd.NA, pd.NaT, dt.date(2024, 1, 1)], dtype=object),
        ["1", "a", "2.5", "true", None, None, None, None, "2024-01-01"],
    ),
    ("object all None", pd.Series([None, None], dtype=object), [None, None]),
]


@pytest.mark.parametrize(("series", "texts"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_dtype_is_spelled_like_to_text(series: pd.Series, texts: list[str | None]) -> None:
    frame = pd.DataFrame({"column one": series})
    encoded = decode(encode_frame(frame, ["v"]))
    assert encoded == expected_rows("v", texts)
    assert encoded == reference(frame, ["v"])


def test_float64_holding_whole_numbers_stays_float_but_nullable_ints_stay_ints() -> None:
    frame = pd.DataFrame(
        {
            "f": pd.Series([3.0, np.nan], dtype="float64"),
            "i": pd.Series([3, pd.NA], dtype="Int64"),
            "o": pd.Series([3, None], dtype=object),
        }
    )
    assert decode(encode_frame(frame, ["f", "i", "o"])) == [{"f": "3.0", "i": "3", "o": "3"}, {}]


def test_missing_values_leave_out_the_key_in_every_position() -> None:
    frame = pd.DataFrame(
        {
            "x": pd.Series([None, "a1", "a2", None, "a4"], dtype=object),
            "y": pd.Series([1, pd.NA, 2, pd.NA, 4], dtype="Int64"),
            "z": pd.Series([0.5, 1.5, np.nan, np.nan, 4.5]),
        }
    )
    assert decode(encode_frame(frame, ["a", "b", "c"])) == [
        {"b": "1", "c": "0.5"},
        {"a": "a1", "c": "1.5"},
        {"a": "a2", "b": "2"},
        {},
        {"a": "a4", "b": "4", "c": "4.5"},
    ]


def test_dropping_nulls_does_not_touch_similar_keys_or_lookalike_values() -> None:
    frame = pd.DataFrame(
        {
            "ab": ['x","b":null', None, '{"b":null}'],
            "b": pd.Series([None, "2", None], dtype=object),
            "bb": [None, None, "3"],
        }
    )
    assert decode(encode_frame(frame, ["ab", "b", "bb"])) == [
        {"ab": 'x","b":null'},
        {"b": "2"},
        {"ab": '{"b":null}', "bb": "3"},
    ]


def test_nulls_of_a_wide_frame_in_any_pattern_are_cut_exactly() -> None:
    # Runs of nulls at the start, middle and end of rows, rows all null or all present, keys that
    # are prefixes of one another, values that look like null members.
    rng = np.random.default_rng(7)
    texts = np.array([None, "v", 'x","k1":null,"', "\\", '{"k":null}', ":null"], dtype=object)
    cells = rng.choice(texts, (40, 60))
    cells[0, :] = None
    cells[1, :] = "v"
    cells[2, :30] = None
    cells[3, 30:] = None
    frame = pd.DataFrame(cells, columns=[f"c{j}" for j in range(60)])
    keys = [f"k{j}" if j % 3 else "k" * (j % 7 + 1) + str(j) for j in range(60)]
    rows = encode_frame(frame, keys)
    expected = [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in reference(frame, keys)]
    assert [rows.row(i).decode() for i in range(len(rows))] == expected
    assert decode(rows)[0] == {}


def test_nulls_are_cut_in_one_pass_over_the_chunk_whatever_the_number_of_columns_holding_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A pass over the whole chunk per column holding a null made wide frames quadratic (20,000 rows
    # x 400 float columns with 10% NaN: 136 s instead of 1 s). The linear-time guarantee, without timing:
    # the chunk's bytes are scanned for nulls once, not once per column.
    passes = []
    original = encode._drop_nulls

    def counting(*args: Any) -> Any:
        passes.append(len(args))
        return original(*args)

    monkeypatch.setattr(encode, "_drop_nulls", counting)
    values = np.arange(300 * 50, dtype=np.float64).reshape(50, 300)
    values[np.arange(50) % 2 == 0, ::2] = np.nan
    frame = pd.DataFrame(values, columns=[f"c{j}" for j in range(300)])
    keys = [f"c{j}" for j in range(300)]
    assert decode(encode_frame(frame, keys)) == reference(frame, keys)
    assert len(passes) == 1


def test_keys_come_from_the_keys_argument_in_column_order() -> None:
    frame = pd.DataFrame([[1, "x"], [2, "y"]], columns=["same", "same"], index=[10, 3])
    rows = encode_frame(frame, ["first", "second"])
    assert [list(json.loads(rows.row(i))) for i in range(2)] == [["first", "second"]] * 2
    assert decode(rows) == [{"first": "1", "second": "x"}, {"first": "2", "second": "y"}]


def test_empty_frame_and_frame_without_columns() -> None:
    empty = encode_frame(pd.DataFrame({"a": pd.Series([], dtype="int64")}), ["a"])
    assert len(empty) == 0 and empty.data == b""
    no_columns = encode_frame(pd.DataFrame(index=range(3)), [])
    assert decode(no_columns) == [{}, {}, {}]


def test_values_with_newlines_never_break_the_row_framing() -> None:
    frame = pd.DataFrame({"t": ["a\nb", "\n", "c\r\n"], "n": [1, 2, 3]})
    rows = encode_frame(frame, ["t", "n"])
    assert len(rows) == 3
    assert decode(rows) == [{"t": "a\nb", "n": "1"}, {"t": "\n", "n": "2"}, {"t": "c\r\n", "n": "3"}]


def test_output_is_utf8_json_that_keeps_non_ascii_text() -> None:
    rows = encode_frame(pd.DataFrame({"t": ["日本語 ✓ 😀"]}), ["t"])
    assert "日本語 ✓ 😀".encode() in bytes(rows.data)
    assert decode(rows) == [{"t": "日本語 ✓ 😀"}]


def test_take_selects_rows_in_the_given_order() -> None:
    rows = encode_frame(pd.DataFrame({"n": [0, 1, 2, 3]}), ["n"])
    picked = rows.take(np.array([3, 0, 2]))
    assert decode(picked) == [{"n": "3"}, {"n": "0"}, {"n": "2"}]


def test_from_ndjson_indexes_row_ends_and_separates_rows_with_commas() -> None:
    ndjson = b'{"a":"1"}\n{}\n{"b":"x\\ny"}\n'
    rows = from_ndjson(ndjson)
    assert rows.ends.tolist() == [9, 12, 25]
    assert [rows.row(i) for i in range(3)] == [b'{"a":"1"}', b"{}", b'{"b":"x\\ny"}']
    assert bytes(rows.data) == b'{"a":"1"},{},{"b":"x\\ny"},'
    assert ndjson.count(b"\n") == 3  # bytes are copied, never changed


def test_from_ndjson_changes_a_writable_buffer_in_place() -> None:
    buffer = bytearray(b'{"a":"1"}\n{}\n')
    rows = from_ndjson(buffer)
    assert buffer == b'{"a":"1"},{},'
    assert rows.row(1) == b"{}"


@pytest.mark.parametrize(
    "series",
    [
        pd.Series(["fine", "bad \ud800 text"], dtype=object),
        pd.Series(["fine", "bad \udfff"], dtype="string[python]"),
        pd.Series([1, "bad \ud83d"], dtype=object),
        pd.Series([{"nested": "bad \udc00"}], dtype=object),
    ],
    ids=["object", "string[python]", "mixed", "dict"],
)
def test_lone_surrogates_raise_naming_the_column(series: pd.Series) -> None:
    frame = pd.DataFrame({"ok": range(len(series)), "comment": series})
    with pytest.raises(SlsInputError) as info:
        encode_frame(frame, ["ok", "comment"])
    message = str(info.value)
    assert "'comment'" in message
    assert "surrogate" in message


def test_valid_surrogate_pairs_are_fine() -> None:
    text = "\ud83d\ude00".encode("utf-16", "surrogatepass").decode("utf-16")  # a real emoji
    assert decode(encode_frame(pd.DataFrame({"t": [text]}), ["t"])) == [{"t": "😀"}]


def _self_containing() -> list:
    value: list = [1]
    value.append(value)
    return value


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ({(1, 2): "x"}, "a dict value .* keys must be str, int, float, bool or None, not tuple"),
        (_self_containing(), "a list value .* contains itself"),
        ([float("nan"), _self_containing()], "a list value .* contains itself"),  # through the NaN walk
        (_nested(5_000), "a list value .* nested too deeply"),
    ],
    ids=["tuple-key", "self-containing", "self-containing-after-nan", "nested-5000"],
)
def test_values_json_cannot_write_raise_naming_row_and_column(cell: Any, why: str) -> None:
    frame = pd.DataFrame({"ok": [1, 2, 3], "payload": pd.Series([{"a": 1}, None, cell], dtype=object)})
    with pytest.raises(SlsInputError, match=rf"^Column 'p', row 2: {why}"):
        encode_frame(frame, ["ok", "p"])


def test_a_deep_but_not_too_deep_list_is_still_json() -> None:
    assert decode(encode_frame(pd.DataFrame({"p": [_nested(50)]}), ["p"])) == [{"p": "[" * 51 + "]" * 51}]


# -- property: random frames of mixed columns --------------------------------------------------

TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=10)
NAIVE = st.datetimes(min_value=dt.datetime(1700, 1, 1), max_value=dt.datetime(2250, 1, 1))
SCALARS = st.one_of(
    st.none(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    TEXT,
    st.booleans(),
    st.dates(),
    NAIVE,
    st.times(),
    st.decimals(allow_nan=False),
    st.uuids(),
    st.binary(max_size=6),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(TEXT, TEXT, max_size=2),
)
TZS = [dt.UTC, dt.timezone(dt.timedelta(hours=8)), zoneinfo.ZoneInfo("America/New_York")]


def _nanos(stamps: list[tuple[dt.datetime, int] | None]) -> list[Any]:
    return [None if s is None else pd.Timestamp(s[0]) + pd.Timedelta(nanoseconds=s[1]) for s in stamps]


def _series(kind: str, n: int) -> st.SearchStrategy[pd.Series]:
    def lists(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
        return st.lists(elements, min_size=n, max_size=n)

    def maybe(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(st.none(), elements)

    int64 = st.integers(-(2**63), 2**63 - 1)
    stamps = st.tuples(st.datetimes(dt.datetime(1700, 1, 1), dt.datetime(2250, 1, 1)), st.integers(0, 999))
    build = {
        "int64": lambda: lists(int64).map(lambda v: pd.Series(v, dtype="int64")),
        "uint8": lambda: lists(st.integers(0, 255)).map(lambda v: pd.Series(v, dtype="uint8")),
        "Int64": lambda: lists(maybe(int64)).map(lambda v: pd.Series(v, dtype="Int64")),
        "float64": lambda: lists(st.floats()).map(lambda v: pd.Series(v, dtype="float64")),
        "float32": lambda: lists(st.floats(width=32)).map(lambda v: pd.Series(v, dtype="float32")),
        "Float64": lambda: lists(maybe(st.floats(allow_nan=False))).map(
            lambda v: pd.Series(v, dtype="Float64")
        ),
        "bool": lambda: lists(st.booleans()).map(lambda v: pd.Series(v, dtype="bool")),
        "boolean": lambda: lists(maybe(st.booleans())).map(lambda v: pd.Series(v, dtype="boolean")),
        "object ints": lambda: lists(maybe(st.integers())).map(lambda v: pd.Series(v, dtype=object)),
        "object floats": lambda: lists(maybe(st.floats())).map(lambda v: pd.Series(v, dtype=object)),
        "object strings": lambda: lists(maybe(TEXT)).map(lambda v: pd.Series(v, dtype=object)),
        "object mixed": lambda: lists(SCALARS).map(lambda v: pd.Series(v, dtype=object)),
        "object datetimes": lambda: lists(maybe(NAIVE)).map(lambda v: pd.Series(v, dtype=object)),
        "string[pyarrow]": lambda: lists(maybe(TEXT)).map(lambda v: pd.Series(v, dtype="string[pyarrow]")),
        "string[python]": lambda: lists(maybe(TEXT)).map(lambda v: pd.Series(v, dtype="string[python]")),
        "str": lambda: lists(maybe(TEXT)).map(lambda v: pd.Series(v, dtype="str")),
        "category": lambda: lists(maybe(st.sampled_from(["a", "b", "é"]))).map(
            lambda v: pd.Series(v, dtype="category")
        ),
        "datetime64[ns]": lambda: lists(maybe(stamps)).map(
            lambda v: pd.Series(_nanos(v), dtype="datetime64[ns]")
        ),
        "datetime64[us]": lambda: lists(maybe(NAIVE)).map(lambda v: pd.Series(v, dtype="datetime64[us]")),
        "datetime64[ns, tz]": lambda: st.tuples(lists(maybe(stamps)), st.sampled_from(TZS)).map(
            lambda a: pd.Series(_nanos(a[0]), dtype="datetime64[ns]").dt.tz_localize(
                a[1], ambiguous="NaT", nonexistent="NaT"
            )
        ),
        "timedelta64[ns]": lambda: lists(
            maybe(st.timedeltas(dt.timedelta(days=-999), dt.timedelta(days=999)))
        ).map(lambda v: pd.Series(v, dtype="timedelta64[ns]")),
    }
    return build[kind]()


KINDS = [
    "int64",
    "uint8",
    "Int64",
    "float64",
    "float32",
    "Float64",
    "bool",
    "boolean",
    "object ints",
    "object floats",
    "object strings",
    "object mixed",
    "object datetimes",
    "string[pyarrow]",
    "string[python]",
    "str",
    "category",
    "datetime64[ns]",
    "datetime64[us]",
    "datetime64[ns, tz]",
    "timedelta64[ns]",
]


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, list[str]]:
    n = draw(st.integers(0, 6))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5))
    columns = {f"{kind} #{i}": draw(_series(kind, n)) for i, kind in enumerate(kinds)}
    keys = [f"k{i}" for i in range(len(kinds))]
    return pd.DataFrame(columns), keys


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_random_frames_encode_like_to_text(case: tuple[pd.DataFrame, list[str]]) -> None:
    frame, keys = case
    assert decode(encode_frame(frame, keys)) == reference(frame, keys)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(), min_size=1, max_size=20))
def test_random_float_columns_match_repr(values: list[float]) -> None:
    frame = pd.DataFrame({"f": pd.Series(values, dtype="float64")})
    assert decode(encode_frame(frame, ["f"])) == [{} if v != v else {"f": repr(v)} for v in values]
