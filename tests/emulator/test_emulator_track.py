"""POST /track over real HTTP: success, compression, the browser form, and every error code."""

from __future__ import annotations

import json
import re

import pytest
import requests

from sls_provider.emulator import SlsEmulator
from sls_provider.testing import EmulatorFactory


def test_uncompressed_round_trip(emu: SlsEmulator, track) -> None:
    resp = track([{"a": "1", "b": "x"}, {"a": "2"}], __topic__="t1", __source__="src", __tags__={"env": "ci"})
    assert resp.status_code == 200
    assert resp.content == b""
    assert re.fullmatch(r"[0-9A-F]{24}", resp.headers["x-log-requestid"])
    logs = emu.get_logs("proj", "store")
    assert [log["a"] for log in logs] == ["1", "2"]
    first = logs[0]
    assert first["__topic__"] == "t1" and first["__source__"] == "src" and first["b"] == "x"
    assert first["__tag__:env"] == "ci"
    assert first["__tag__:__client_ip__"] == "127.0.0.1"
    assert first["__tag__:__receive_time__"] == first["__time__"]
    assert first["__time__"].isdigit()


@pytest.mark.parametrize("kind", ["lz4", "deflate"])
def test_compressed_round_trip(emu: SlsEmulator, track, kind: str) -> None:
    logs = [{"i": str(i), "text": "héllo wörld " * 20} for i in range(500)]
    assert track(logs, compress_type=kind, __topic__=kind).status_code == 200
    assert [log["i"] for log in emu.get_logs("proj", "store", topic=kind)] == [str(i) for i in range(500)]
    assert emu.requests[-1]["compress_type"] == kind
    assert emu.requests[-1]["raw_bytes"] > emu.requests[-1]["body_bytes"]


def test_browser_form(emu: SlsEmulator, track) -> None:
    resp = track(
        [{"page": "/home"}],
        api_version=None,
        params={"APIVersion": "0.6.0"},
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://example.test"},
    )
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert emu.count("proj", "store") == 1


def test_time_is_replaced_by_arrival_time(emu: SlsEmulator, track) -> None:
    assert track([{"__time__": "12345", "v": "1"}]).status_code == 200
    (log,) = emu.get_logs("proj", "store")
    assert log["__time__"] != "12345" and int(log["__time__"]) > 1_600_000_000


def test_missing_source_is_client_ip_and_topic_defaults_empty(emu: SlsEmulator, track) -> None:
    assert track([{"v": "1"}]).status_code == 200
    (log,) = emu.get_logs("proj", "store")
    assert log["__source__"] == "127.0.0.1" and log["__topic__"] == ""


def test_raw_size_ignored_when_uncompressed(emu: SlsEmulator, track) -> None:
    assert track([{"v": "1"}], raw_size=1).status_code == 200


def test_empty_logs_list_is_accepted(emu: SlsEmulator, track) -> None:
    assert track(b'{"__logs__": []}').status_code == 200
    assert emu.count("proj", "store") == 0


def test_auto_create(sls_emulator_factory: EmulatorFactory) -> None:
    emu = sls_emulator_factory(auto_create=True)
    resp = requests.post(
        f"{emu.endpoint}/logstores/newstore/track",
        data=b'{"__logs__": [{"a": "b"}]}',
        headers={"Host": f"newproj.127.0.0.1:{emu.port}", "x-log-apiversion": "0.6.0"},
        timeout=10,
    )
    assert resp.status_code == 200
    assert emu.count("newproj", "newstore") == 1


# -- errors ----------------------------------------------------------------------------------
BIG = "x" * 2048


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"host": "127.0.0.1"}, 400, "InvalidHost"),
        ({"host": "localhost:1234"}, 400, "InvalidHost"),
        ({"host": "localhost"}, 400, "InvalidHost"),
        ({"api_version": None}, 400, "MissingAPIVersion"),
        ({"api_version": "0.5.0"}, 400, "InvalidAPIVersion"),
        ({"project": "nope"}, 404, "ProjectNotExist"),
        ({"logstore": "nope"}, 404, "LogStoreNotExist"),
        ({"compress_type": "gzip"}, 400, "InvalidCompressType"),
        ({"compress_type": "lz4", "raw_size": ""}, 400, "MissingBodyRawSize"),
        ({"compress_type": "lz4", "raw_size": 3}, 400, "PostBodyUncompressError"),
        ({"compress_type": "deflate", "raw_size": 3}, 400, "PostBodyUncompressError"),
        ({"compress_type": "deflate", "raw_size": 99999}, 400, "PostBodyUncompressError"),
        ({"compress_type": "lz4", "raw_size": "abc"}, 400, "PostBodyUncompressError"),
        ({"compress_type": "lz4", "raw_size": 3 * 1024 * 1024 + 1}, 400, "PostBodyTooLarge"),
        ({"body": b"not json"}, 400, "PostBodyInvalid"),
        ({"body": b"[1, 2]"}, 400, "PostBodyInvalid"),
        ({"body": b'{"__logs__": {"a": "b"}}'}, 400, "PostBodyInvalid"),
        ({"body": b'{"__logs__": ["a"]}'}, 400, "PostBodyInvalid"),
        ({"body": b"\xff\xfe garbage"}, 400, "InvalidEncoding"),
        ({"body": b'{"__logs__": [{"a": "\\ud800"}]}'}, 400, "InvalidEncoding"),
        ({"body": b'{"__logs__": [{"a": 1}]}'}, 400, "PostBodyInvalid"),
        ({"body": b'{"__logs__": [{"a": null}]}'}, 400, "PostBodyInvalid"),
        ({"body": b'{"__logs__": [{"a": true}]}'}, 400, "PostBodyInvalid"),
        ({"body": b'{"__logs__": [{"a": {"b": "c"}}]}'}, 400, "PostBodyInvalid"),
        ({"body": [{"1abc": "v"}]}, 400, "InvalidKey"),
        ({"body": [{"a-b": "v"}]}, 400, "InvalidKey"),
        ({"body": [{"": "v"}]}, 400, "InvalidKey"),
        ({"body": [{"k" * 129: "v"}]}, 400, "InvalidKey"),
        ({"body": [{"__topic__": "v"}]}, 400, "InvalidKey"),
        ({"body": [{"__source__": "v"}]}, 400, "InvalidKey"),
        ({"body": [{"__partition_time__": "v"}]}, 400, "InvalidKey"),
        ({"body": [{"_extract_others_": "v"}]}, 400, "InvalidKey"),
        ({"body": [{"__extract_others__": "v"}]}, 400, "InvalidKey"),
        ({"body": [{"ключ": "v"}]}, 400, "InvalidKey"),
        ({"__topic__": "t" * 129}, 400, "PostBodyInvalid"),
        ({"__source__": "s" * 129}, 400, "PostBodyInvalid"),
        ({"__topic__": 5}, 400, "PostBodyInvalid"),
        ({"__tags__": {"a": 1}}, 400, "PostBodyInvalid"),
        ({"__tags__": ["a"]}, 400, "PostBodyInvalid"),
        ({"body": [{"a": "v"}] * 4097}, 400, "PostBodyTooLarge"),
        ({"body": [{"a": "x" * (1024 * 1024 + 1)}]}, 400, "PostBodyTooLarge"),
        ({"body": [{"a": BIG}] * 1600}, 400, "PostBodyTooLarge"),  # 3.3 MB raw
    ],
)
def test_errors(emu: SlsEmulator, track, expect_error, kwargs: dict, status: int, code: str) -> None:
    resp = track(kwargs.pop("body", None), **kwargs)
    expect_error(resp, status, code)
    assert emu.count("proj", "store") == 0
    record = emu.requests[-1]
    assert (record["status"], record["error_code"]) == (status, code)


def test_web_tracking_off_is_403(emu: SlsEmulator, track, expect_error) -> None:
    emu.set_web_tracking("proj", "store", False)
    resp = track([{"a": "b"}])
    expect_error(resp, 403, "Unauthorized")
    assert "web tracking" in resp.json()["errorMessage"].lower()
    emu.set_web_tracking("proj", "store", True)
    assert track([{"a": "b"}]).status_code == 200


def test_all_or_nothing(emu: SlsEmulator, track) -> None:
    logs = [{"ok": str(i)} for i in range(100)] + [{"bad key": "x"}]
    assert track(logs).status_code == 400
    assert emu.count("proj", "store") == 0 and emu.counts() == {}


def test_request_record_fields(emu: SlsEmulator, track) -> None:
    track([{"a": "1"}, {"a": "2"}], compress_type="lz4", __topic__="tt", __tags__={"k": "v"})
    rec = emu.requests[-1]
    assert rec["method"] == "POST" and rec["path"] == "/logstores/store/track"
    assert (rec["project"], rec["logstore"], rec["status"], rec["error_code"]) == ("proj", "store", 200, None)
    assert (rec["logs"], rec["topic"], rec["tags"], rec["fault"]) == (2, "tt", {"k": "v"}, None)
    assert rec["raw_bytes"] == len(
        json.dumps({"__logs__": [{"a": "1"}, {"a": "2"}], "__topic__": "tt", "__tags__": {"k": "v"}})
    )
    assert rec["body_bytes"] > 0 and len(rec["request_id"]) == 24


def test_project_with_other_endpoint_names(emu: SlsEmulator, track) -> None:
    assert track([{"a": "1"}], host=f"proj.sls.test:{emu.port}").status_code == 200
    assert track([{"a": "1"}], host="proj.localhost").status_code == 200
    assert emu.count("proj", "store") == 2
