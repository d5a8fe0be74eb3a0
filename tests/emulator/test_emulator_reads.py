"""GetLogs, GetLogStore, UpdateLogStore, ListLogStores, CORS and the admin counters over HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from sls_provider.emulator import SlsEmulator


@pytest.fixture
def host(emu: SlsEmulator) -> dict[str, str]:
    return {"Host": f"proj.127.0.0.1:{emu.port}"}


def get_logs(emu: SlsEmulator, host: dict[str, str], **params: str) -> requests.Response:
    return requests.get(
        f"{emu.endpoint}/logstores/store", params={"type": "log", **params}, headers=host, timeout=5
    )


def test_get_logs_shape_paging_and_headers(emu: SlsEmulator, track, host) -> None:
    assert track([{"i": str(i)} for i in range(150)], __topic__="a").status_code == 200
    resp = get_logs(emu, host)
    assert resp.status_code == 200
    assert resp.headers["x-log-count"] == "100" and resp.headers["x-log-progress"] == "Complete"
    rows = resp.json()
    assert len(rows) == 100 and rows[0]["i"] == "0" and rows[0]["__topic__"] == "a"
    assert [r["i"] for r in get_logs(emu, host, offset="140", line="20").json()] == [
        str(i) for i in range(140, 150)
    ]
    assert get_logs(emu, host, reverse="true", line="2").json()[0]["i"] == "149"
    assert len(get_logs(emu, host, line="5000").json()) == 150  # capped at 1000, not refused
    assert len(emu.get_logs("proj", "store")) == 150  # Python API: unlimited


def test_get_logs_query_and_time(emu: SlsEmulator, track, host, expect_error) -> None:
    track([{"k": "x", "n": "1"}, {"k": "y", "n": "2"}], __topic__="a")
    track([{"k": "x", "n": "3"}], __topic__="b", __tags__={"env": "prod"})
    assert [r["n"] for r in get_logs(emu, host, query="__topic__: a").json()] == ["1", "2"]
    assert [r["n"] for r in get_logs(emu, host, query="k: x").json()] == ["1", "3"]
    assert [r["n"] for r in get_logs(emu, host, query='k: "x" and __topic__: b').json()] == ["3"]
    assert [r["n"] for r in get_logs(emu, host, query="__tag__:env: prod").json()] == ["3"]
    assert [r["n"] for r in get_logs(emu, host, query="k: y*").json()] == ["2"]
    assert [r["n"] for r in get_logs(emu, host, topic="b").json()] == ["3"]
    assert len(get_logs(emu, host, query="*").json()) == 3
    now = int(time.time())
    assert len(get_logs(emu, host, **{"from": str(now - 60), "to": str(now + 60)}).json()) == 3
    assert get_logs(emu, host, **{"from": str(now + 60)}).json() == []
    expect_error(get_logs(emu, host, query="* | select count(*)"), 400, "ParameterInvalid")
    assert [r["n"] for r in emu.get_logs("proj", "store", query="k: x", topic="b")] == ["3"]


def test_get_logs_errors(emu: SlsEmulator, expect_error) -> None:
    url = f"{emu.endpoint}/logstores/store?type=log"
    expect_error(
        requests.get(url, headers={"Host": f"nope.127.0.0.1:{emu.port}"}, timeout=5), 404, "ProjectNotExist"
    )
    url2 = f"{emu.endpoint}/logstores/other?type=log"
    expect_error(
        requests.get(url2, headers={"Host": f"proj.127.0.0.1:{emu.port}"}, timeout=5), 404, "LogStoreNotExist"
    )
    expect_error(requests.get(url, timeout=5), 400, "InvalidHost")


def test_get_logstore_and_update(emu: SlsEmulator, host, expect_error) -> None:
    url = f"{emu.endpoint}/logstores/store"
    auth = {**host, "Authorization": "LOG ak:signature-not-checked"}
    info = requests.get(url, headers=auth, timeout=5).json()
    assert info["logstoreName"] == "store" and info["enable_tracking"] is True
    assert {"ttl", "shardCount", "createTime", "lastModifyTime"} <= info.keys()
    assert requests.put(
        url, json={"logstoreName": "store", "enable_tracking": False}, headers=auth, timeout=5
    ).ok
    assert requests.get(url, headers=host, timeout=5).json()["enable_tracking"] is False
    missing = requests.put(f"{url}x", json={"enable_tracking": True}, headers=host, timeout=5)
    expect_error(missing, 404, "LogStoreNotExist")
    listing = requests.get(f"{emu.endpoint}/logstores", headers=host, timeout=5).json()
    assert listing["logstores"] == ["store"]


def test_cors(emu: SlsEmulator, host) -> None:
    pre = requests.options(
        f"{emu.endpoint}/logstores/store/track",
        headers={
            **host,
            "Origin": "http://app.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-log-apiversion, content-type",
        },
        timeout=5,
    )
    assert pre.status_code in (200, 204)
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    allowed = pre.headers["Access-Control-Allow-Headers"].lower()
    for name in ("x-log-apiversion", "x-log-bodyrawsize", "x-log-compresstype", "content-type"):
        assert name in allowed
    assert emu.requests[-1]["fault"] is None


def test_admin_counts_and_create(emu: SlsEmulator, track) -> None:
    admin = f"{emu.endpoint}/_emulator"
    made = requests.post(
        f"{admin}/logstores", json={"project": "p2", "logstore": "s2", "web_tracking": True}, timeout=5
    )
    assert made.status_code == 200
    track([{"a": "1"}, {"a": "2"}], __topic__="x")
    track([{"a": "1"}], project="p2", logstore="s2")
    assert requests.get(f"{admin}/counts", timeout=5).json() == [
        {"project": "p2", "logstore": "s2", "topic": "", "count": 1},
        {"project": "proj", "logstore": "store", "topic": "x", "count": 2},
    ]
    assert emu.counts() == {("proj", "store", "x"): 2, ("p2", "s2", ""): 1}
    assert emu.count("proj", "store", topic="x") == 2 and emu.count("proj", "store", topic="y") == 0
    assert len(requests.get(f"{admin}/requests", timeout=5).json()) >= 3
    assert requests.get(f"{admin}/nothing", timeout=5).status_code == 404


def test_keep_alive_reuses_connection(emu: SlsEmulator, track, session: requests.Session) -> None:
    for _ in range(5):
        assert track([{"a": "1"}]).status_code == 200
    assert len({r["client_port"] for r in emu.requests}) == 1  # one connection served them all
