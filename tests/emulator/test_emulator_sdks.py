"""The official SDKs against the emulator: generated PutWebTracking, and the classic SDK's management."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from sls_provider.emulator import SlsEmulator


@pytest.fixture
def sls_test_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Resolve ``*.sls.test`` to 127.0.0.1: the generated SDK connects to ``{project}.{endpoint}``."""
    real = socket.getaddrinfo

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and (host == "sls.test" or host.endswith(".sls.test")):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield


def test_generated_sdk_put_webtracking(emu: SlsEmulator, sls_test_dns: None) -> None:
    sls_models = pytest.importorskip("alibabacloud_sls20201230.models")
    from alibabacloud_sls20201230.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    config = open_api_models.Config(
        endpoint=f"sls.test:{emu.port}", protocol="http", access_key_id="ak", access_key_secret="sk"
    )
    request = sls_models.PutWebtrackingRequest(
        logs=[{"a": "1"}, {"a": "2"}], topic="sdk", source="src", tags={"t": "v"}
    )
    response = Client(config).put_webtracking("proj", "store", request)
    assert response.status_code == 200
    logs = emu.get_logs("proj", "store")
    assert [log["a"] for log in logs] == ["1", "2"]
    assert logs[0]["__topic__"] == "sdk" and logs[0]["__source__"] == "src" and logs[0]["__tag__:t"] == "v"
    record = emu.requests[-1]
    assert record["project"] == "proj" and record["logs"] == 2


def test_classic_sdk_management(emu: SlsEmulator, sls_test_dns: None) -> None:
    # aliyun-log-python-sdk only connects to a bare IP when the endpoint has no port; with one it
    # connects to {project}.{ip}:{port} (unresolvable) and sends Host without the port. A name works.
    log_sdk = pytest.importorskip("aliyun.log")
    client = log_sdk.LogClient(f"sls.test:{emu.port}", "ak", "sk")
    assert client.get_logstore("proj", "store").get_enable_tracking() is True
    client.update_logstore("proj", "store", enable_tracking=False)
    assert client.get_logstore("proj", "store").get_enable_tracking() is False
    with pytest.raises(log_sdk.LogException) as missing:
        client.get_logstore("proj", "nope")
    assert missing.value.get_error_code() == "LogStoreNotExist"
