"""Every kind of bad input gets a defined outcome: a clear error before anything is sent, or a
documented conversion (docs/bad-input.md lists them)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from sls_provider.core import export
from sls_provider.core.errors import SlsConfigError, SlsInputError
from sls_provider.emulator import SlsEmulator
from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from tests.conftest import LOGSTORE, PROJECT, content, sls_connection

MiB = 1024 * 1024


def nothing_sent(emu: SlsEmulator) -> bool:
    return emu.requests.where(method="POST") == []


def test_empty_dataframe_sends_nothing_and_reports_zeros(sls_conn: SlsEmulator) -> None:
    summary = SlsWebTrackingHook().put_dataframe(pd.DataFrame({"a": pd.Series([], dtype="int64")}))
    assert (summary.rows, summary.requests, summary.raw_bytes, summary.sent_bytes) == (0, 0, 0, 0)
    assert summary.topics == {} and nothing_sent(sls_conn)
    assert SlsWebTrackingHook().put_logs([]).rows == 0


def test_every_pandas_dtype_is_converted_as_documented(sls_conn: SlsEmulator) -> None:
    frame = pd.DataFrame(
        {
            "obj": pd.Series(["x", 1, None], dtype=object),
            "string": pd.Series(["a", None, "c"], dtype="string"),
            "str": pd.Series(["é", None, "ü"], dtype="str"),
            "cat": pd.Series(["p", "q", None], dtype="category"),
            "nint": pd.array([1, None, -3], dtype="Int64"),
            "int": np.array([1, 2, 3]),
            "bool": [True, False, True],
            "nbool": pd.array([True, None, False], dtype="boolean"),
            "float": [0.1, float("nan"), float("inf")],
            "ninf": [-np.inf, 1e-7, 1e22],
            "naive": pd.to_datetime(["2026-01-02 03:04:05.123456", None, "2026-01-02"], format="ISO8601"),
            "aware": pd.to_datetime(["2026-01-02 03:04:05+08:00", None, "2026-01-02 00:00:00+08:00"]),
            "delta": pd.to_timedelta(["1 day 2h", None, "3s"]),
            "dec": [Decimal("1.50"), None, Decimal("-0")],
            "bytes": [b"\xff\xfe", None, b"ok"],  # not UTF-8: sent as base64
            "nested": [{"k": [1, "ü"]}, None, [1, 2]],
            "date": [dt.date(2026, 1, 2), None, dt.date(1999, 12, 31)],
        }
    )
    SlsWebTrackingHook().put_dataframe(frame)
    logs = [content(log) for log in sls_conn.get_logs(PROJECT, LOGSTORE)]
    assert logs[0] == {
        "obj": "x",
        "string": "a",
        "str": "é",
        "cat": "p",
        "nint": "1",
        "int": "1",
        "bool": "true",
        "nbool": "true",
        "float": "0.1",
        "ninf": "-inf",
        "naive": "2026-01-02T03:04:05.123456",
        "aware": "2026-01-02T03:04:05+08:00",
        "delta": "P1DT2H0M0S",
        "dec": "1.50",
        "bytes": "//4=",
        "nested": '{"k":[1,"ü"]}',
        "date": "2026-01-02",
    }
    assert logs[1] == {"obj": "1", "cat": "q", "int": "2", "bool": "false", "ninf": "1e-07"}
    assert logs[2] == {
        "string": "c",
        "str": "ü",
        "nint": "-3",
        "int": "3",
        "bool": "true",
        "nbool": "false",
        "float": "inf",
        "ninf": "1e+22",
        "naive": "2026-01-02T00:00:00",
        "aware": "2026-01-02T00:00:00+08:00",
        "delta": "P0DT0H0M3S",
        "dec": "-0",
        "bytes": "b2s=",
        "nested": "[1,2]",
        "date": "1999-12-31",
    }


def test_lone_surrogates_fail_naming_column_and_row(sls_conn: SlsEmulator) -> None:
    # pandas' own str dtype refuses lone surrogates; object columns and plain dicts carry them.
    frame = pd.DataFrame({"ok": ["a", "b"], "text": pd.Series(["fine", "bad \ud800 text"], dtype=object)})
    with pytest.raises(SlsInputError, match=r"'text'.*row 1|row 1.*'text'"):
        SlsWebTrackingHook().put_dataframe(frame)
    with pytest.raises(SlsInputError, match=r"'k'"):
        SlsWebTrackingHook().put_logs([{"k": "x"}, {"k": "\udfff"}])
    assert nothing_sent(sls_conn)


@pytest.mark.parametrize(
    "columns, named",
    [
        (["a", "a", "b"], r"'a' appears more than once"),
        (["__topic__", "ok"], r"'__topic__'"),
        (["__source__", "_extract_others_"], r"'__source__'.*'_extract_others_'"),
        (["x" * 129], r"'xxxx"),
        (["naïve", "has-dash", ""], r"'naïve'.*'has-dash'.*''"),
    ],
)
def test_bad_keys_fail_naming_every_bad_column(sls_conn: SlsEmulator, columns: list[str], named: str) -> None:
    frame = pd.DataFrame([list(range(len(columns)))], columns=columns)
    with pytest.raises(SlsInputError, match=named):
        SlsWebTrackingHook().put_dataframe(frame)
    assert nothing_sent(sls_conn)


def test_time_key_is_sent_with_one_warning(sls_conn: SlsEmulator, caplog: pytest.LogCaptureFixture) -> None:
    frame = pd.DataFrame({"__time__": ["1700000000"] * 3, "v": [1, 2, 3]})
    with caplog.at_level(logging.WARNING):
        SlsWebTrackingHook().put_dataframe(frame, chunksize=1)  # three chunks, one warning
    assert sum("__time__" in r.getMessage() for r in caplog.records) == 1
    assert sls_conn.count(PROJECT, LOGSTORE) == 3


def test_column_names_are_resolved_once_although_two_threads_encode(
    sls_conn: SlsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slowed down so both encoder threads ask for the keys of the same column set at once.
    calls: list[tuple] = []
    real = export.resolve_keys

    def slow_resolve_keys(columns: list, policy: str) -> list[str]:
        calls.append(tuple(columns))
        time.sleep(0.05)
        return real(columns, policy)

    monkeypatch.setattr(export, "resolve_keys", slow_resolve_keys)
    SlsWebTrackingHook().put_dataframe(pd.DataFrame({"v": [1, 2, 3, 4]}), chunksize=1)
    assert calls == [("v",)]
    assert sls_conn.count(PROJECT, LOGSTORE) == 4


@pytest.mark.parametrize("what", ["topic", "source"])
def test_topic_or_source_over_128_bytes(sls_conn: SlsEmulator, what: str) -> None:
    with pytest.raises(SlsInputError, match=f"{what} .* over 128 bytes"):
        SlsWebTrackingHook().put_logs([{"a": "1"}], **{what: "é" * 65})  # 130 bytes, 65 characters
    assert nothing_sent(sls_conn)
    SlsWebTrackingHook().put_logs([{"a": "1"}], **{what: "é" * 64})  # 128 bytes: fine
    assert sls_conn.count(PROJECT, LOGSTORE) == 1


@pytest.mark.parametrize("source", [123, b"x"])
def test_a_source_that_is_not_a_string_fails_before_sending(sls_conn: SlsEmulator, source: object) -> None:
    # It was an AttributeError ('int' object has no attribute 'encode').
    with pytest.raises(
        SlsInputError, match=f"^source must be a string \\(or None\\), got {type(source).__name__}$"
    ):
        SlsWebTrackingHook().put_logs([{"a": "1"}], source=source)  # type: ignore[arg-type]
    assert nothing_sent(sls_conn)


def test_an_empty_tag_key_fails_before_sending(sls_conn: SlsEmulator) -> None:
    # It was sent, and SLS refused the request (400).
    with pytest.raises(SlsInputError, match="A tag key is empty"):
        SlsWebTrackingHook().put_logs([{"a": "1"}], tags={"": "v"})
    assert nothing_sent(sls_conn)


def test_tags_too_large_for_any_request_are_named(sls_conn: SlsEmulator) -> None:
    # The error blamed the row: "row 0 ... is 9 bytes as JSON, over the -104,966 a request holds".
    tags = {"big": "t" * (3 * MiB + 100_000)}
    with pytest.raises(
        SlsInputError, match=r"^The tags, topic and source of each request take 3,2\d\d,\d\d\d bytes"
    ):
        SlsWebTrackingHook().put_logs([{"a": "1"}], tags=tags)
    assert nothing_sent(sls_conn)


def test_topic_column_value_over_128_bytes_fails_before_sending(sls_conn: SlsEmulator) -> None:
    frame = pd.DataFrame({"t": ["ok", "x" * 200], "v": [1, 2]})
    with pytest.raises(SlsInputError, match="topic 'xxx"):
        SlsWebTrackingHook().put_dataframe(frame, topic_column="t")
    assert nothing_sent(sls_conn)


def test_topic_column_naming_a_duplicated_column_fails_before_sending(sls_conn: SlsEmulator) -> None:
    frame = pd.DataFrame([["a", "b", 1], ["c", "d", 2]], columns=["t", "t", "v"])
    with pytest.raises(
        SlsInputError, match=r"^topic_column 't' names 2 columns of the data \(at positions \[0, 1\]\)"
    ):
        SlsWebTrackingHook().put_dataframe(frame, topic_column="t")
    assert nothing_sent(sls_conn)


def test_a_cell_json_cannot_write_fails_before_sending_naming_row_and_column(sls_conn: SlsEmulator) -> None:
    frame = pd.DataFrame({"id": [0, 1, 2], "payload": [{"a": 1}, {(1, 2): "x"}, None]})
    with pytest.raises(SlsInputError, match=r"^Column 'payload', row 1: a dict value cannot be sent as text"):
        SlsWebTrackingHook().put_dataframe(frame)
    assert nothing_sent(sls_conn)


def test_value_over_one_mib(sls_conn: SlsEmulator) -> None:
    frame = pd.DataFrame({"id": [0, 1, 2], "blob": ["small", "v" * (MiB + 1), "small"]})
    with pytest.raises(SlsInputError, match=r"row 1 \(topic ''\) has a value of 1,048,577 bytes in 'blob'"):
        SlsWebTrackingHook().put_dataframe(frame)
    assert nothing_sent(sls_conn)
    summary = SlsWebTrackingHook().put_dataframe(frame, on_oversize="skip")
    assert (summary.rows, summary.skipped_rows) == (2, 1)
    assert [log["id"] for log in sls_conn.get_logs(PROJECT, LOGSTORE)] == ["0", "2"]
    # Exactly 1 MiB is allowed.
    SlsWebTrackingHook().put_dataframe(pd.DataFrame({"blob": ["v" * MiB]}))
    assert sls_conn.count(PROJECT, LOGSTORE) == 3


def test_row_over_the_request_limit_is_named(sls_conn: SlsEmulator) -> None:
    wide = {f"c{i}": "w" * 900_000 for i in range(4)}  # 3.6 MB of values, none over 1 MiB
    with pytest.raises(SlsInputError, match=r"row 0 \(topic ''\) is 3,600,0\d\d bytes as JSON"):
        SlsWebTrackingHook().put_logs([wide, {"c0": "small"}])
    assert nothing_sent(sls_conn)


def test_ten_thousand_topics(sls_conn: SlsEmulator) -> None:
    n = 60_000
    frame = pd.DataFrame({"t": [f"topic-{i % 10_000}" for i in range(n)], "i": np.arange(n)})
    summary = SlsWebTrackingHook().put_dataframe(frame, topic_column="t", chunksize=20_000)
    assert summary.rows == n and len(summary.topics) == 10_000
    assert set(summary.topics.values()) == {6}
    counts = sls_conn.counts()
    assert len(counts) == 10_000 and set(counts.values()) == {6}
    # One request per topic: each topic's six rows fit in one.
    assert summary.requests == 10_000


@pytest.mark.parametrize(
    "connection, message",
    [
        ({"conn_type": "sls", "extra": {"project": PROJECT, "logstore": LOGSTORE}}, "has no endpoint"),
        (
            {
                "conn_type": "sls",
                "host": "http://127.0.0.1:99999",
                "extra": {"project": PROJECT, "logstore": LOGSTORE},
            },
            "port",
        ),
        (
            {
                "conn_type": "sls",
                "host": "ftp://example.com",
                "extra": {"project": PROJECT, "logstore": LOGSTORE},
            },
            "http or https",
        ),
        (
            {
                "conn_type": "sls",
                "host": "http://127.0.0.1:1",
                "extra": {"project": "Bad_Project", "logstore": "s"},
            },
            "project must be",
        ),
    ],
)
def test_malformed_connection(monkeypatch: pytest.MonkeyPatch, connection: dict, message: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", json.dumps(connection))
    with pytest.raises(SlsConfigError, match=message):
        SlsWebTrackingHook().put_logs([{"a": "1"}])


def test_unknown_compress_type(emulator: SlsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLS_DEFAULT", sls_connection(emulator.endpoint, compress_type="gzip"))
    with pytest.raises(ValueError, match="gzip"):
        SlsWebTrackingHook().put_logs([{"a": "1"}])
    assert nothing_sent(emulator)


def test_missing_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SLS_DEFAULT", raising=False)
    with pytest.raises(Exception, match="sls_nowhere"):
        SlsWebTrackingHook(sls_conn_id="sls_nowhere").put_logs([{"a": "1"}])
