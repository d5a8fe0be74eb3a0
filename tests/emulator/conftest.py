"""Fixtures for the emulator tests: a fresh in-memory emulator per test and a /track poster.

Every emulator binds port 0 and keeps files under tmp_path, so the tests run under ``-n 2``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import lz4.block
import pytest
import requests

from sls_provider.emulator import SlsEmulator
from sls_provider.testing import EmulatorFactory

Track = Callable[..., requests.Response]


@pytest.fixture
def emu(sls_emulator_factory: EmulatorFactory) -> SlsEmulator:
    """``proj/store`` with web tracking on; no auto-creation (unknown logstores are 404s)."""
    return sls_emulator_factory(logstores=[("proj", "store")])


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def body_of(logs: list[dict[str, Any]], **envelope: Any) -> bytes:
    return json.dumps({"__logs__": logs, **envelope}).encode()


def compress(raw: bytes, kind: str | None) -> bytes:
    if kind == "lz4":
        return lz4.block.compress(raw, store_size=False)
    if kind == "deflate":
        return zlib.compress(raw)
    return raw


@pytest.fixture
def track(emu: SlsEmulator, session: requests.Session) -> Track:
    """POST a /track request. ``body`` may be bytes, or logs to wrap; ``compress`` is lz4/deflate."""

    def post(
        body: bytes | list[dict[str, Any]] | None = None,
        *,
        project: str = "proj",
        logstore: str = "store",
        compress_type: str | None = None,
        raw_size: int | str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        api_version: str | None = "0.6.0",
        host: str | None = None,
        **envelope: Any,
    ) -> requests.Response:
        raw = body if isinstance(body, bytes) else body_of(body or [{"k": "v"}], **envelope)
        data = compress(raw, compress_type)
        all_headers = {"Host": host if host is not None else f"{project}.127.0.0.1:{emu.port}"}
        if api_version is not None:
            all_headers["x-log-apiversion"] = api_version
        if compress_type:
            all_headers["x-log-compresstype"] = compress_type
            all_headers["x-log-bodyrawsize"] = str(len(raw) if raw_size is None else raw_size)
        elif raw_size is not None:
            all_headers["x-log-bodyrawsize"] = str(raw_size)
        all_headers.update(headers or {})
        url = f"{emu.endpoint}/logstores/{logstore}/track"
        return session.post(url, data=data, headers=all_headers, params=params, timeout=10)

    return post


def assert_error(resp: requests.Response, status: int, code: str) -> None:
    """An SLS-style error: status, JSON errorCode/errorMessage, request id, CORS."""
    assert resp.status_code == status, resp.text
    answer = resp.json()
    assert answer["errorCode"] == code, answer
    assert answer["errorMessage"]
    assert len(resp.headers["x-log-requestid"]) == 24
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


@pytest.fixture
def expect_error() -> Callable[[requests.Response, int, str], None]:
    return assert_error
