"""The fixtures the provider gives its users' tests (the ``pytest11`` plugin in sls_provider/testing.py)."""

from __future__ import annotations

import pandas as pd
import pytest
import requests

from sls_provider.emulator import SlsEmulator, WriteQuota
from sls_provider.hooks.web_tracking import SlsWebTrackingHook
from sls_provider.testing import TEST_LOGSTORE, TEST_PROJECT, EmulatorFactory, connection_json


def test_plugin_fixtures_point_the_default_connection_at_an_emulator(
    sls_default_connection: SlsEmulator,
) -> None:
    summary = SlsWebTrackingHook().put_dataframe(pd.DataFrame({"n": [1, 2, 3]}), topic="t")
    assert summary.rows == 3
    assert sls_default_connection.count(TEST_PROJECT, TEST_LOGSTORE) == 3


def test_the_emulator_fixture_creates_logstores_on_first_write(sls_emulator: SlsEmulator) -> None:
    from sls_provider.core.client import WebTrackingClient
    from sls_provider.core.endpoint import resolve_target
    from sls_provider.core.export import Exporter, ExportOptions
    from sls_provider.sources.frames import frames_from_records

    client = WebTrackingClient(resolve_target(sls_emulator.endpoint, "any-project", "any-store"))
    Exporter(client, ExportOptions()).run(frames_from_records([{"a": "1"}], 10))
    assert sls_emulator.count("any-project", "any-store") == 1


def test_the_factory_builds_emulators_as_asked_and_closes_them(
    sls_emulator_factory: EmulatorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = sls_emulator_factory(logstores=[("proj", "store")], quota=WriteQuota(writes_per_second=2))
    other = sls_emulator_factory(logstores=[("proj", "store")])
    assert strict.port != other.port
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLS_DEFAULT", connection_json(strict.endpoint, project="proj", logstore="store")
    )
    summary = SlsWebTrackingHook().put_dataframe(pd.DataFrame({"n": [1, 2, 3]}), topic="t")
    assert summary.rows == 3 and strict.count("proj", "store") == 3 and other.count("proj", "store") == 0
    assert sum(shard.accepted for shard in strict.shard_counters("proj", "store")) == 1
    # No auto-creation unless asked: an unknown logstore is the service's 404.
    resp = requests.post(
        f"{other.endpoint}/logstores/nope/track",
        headers={"Host": f"proj.127.0.0.1:{other.port}", "x-log-apiversion": "0.6.0"},
        json={"__logs__": [{"a": "1"}]},
        timeout=5,
    )
    assert (resp.status_code, resp.json()["errorCode"]) == (404, "LogStoreNotExist")


def test_connection_json_is_an_airflow_connection() -> None:
    from airflow.models.connection import Connection

    conn = Connection.from_json(connection_json("http://127.0.0.1:1", topic="t"), conn_id="x")
    assert (conn.conn_type, conn.host) == ("sls", "http://127.0.0.1:1")
    assert conn.extra_dejson == {"project": TEST_PROJECT, "logstore": TEST_LOGSTORE, "topic": "t"}
