"""Error classification (docs/protocol.md's response table): 429, 5xx and the 403 quota codes are retried;
400, 401, 403 others, 404 and 499 are final. Answers come from real HTTP against the emulator
(faults injected with ``emu.faults``), plus hand-built responses for what the emulator never sends."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import requests
import urllib3

from sls_provider.core.answers import Answer, classify
from sls_provider.core.client import WebTrackingClient
from sls_provider.core.endpoint import Target, resolve_target
from sls_provider.core.errors import SlsRequestError, SlsRetryableError, SlsServiceError
from sls_provider.core.pack import Request
from sls_provider.emulator import SlsEmulator
from sls_provider.testing import EmulatorFactory
from tests.conftest import FAST_RETRY

PROJECT, LOGSTORE = "proj", "store"
BODY = json.dumps({"__topic__": "t", "__source__": "s", "__tags__": {}, "__logs__": [{"k": "v"}]}).encode()


@pytest.fixture
def emu(sls_emulator_factory: EmulatorFactory) -> SlsEmulator:
    return sls_emulator_factory(logstores=[(PROJECT, LOGSTORE)])


@pytest.fixture
def target(emu: SlsEmulator) -> Target:
    return resolve_target(emu.endpoint, PROJECT, LOGSTORE)


def post(
    target: Target, body: bytes = BODY, logstore: str | None = None, project: str | None = None
) -> requests.Response:
    url = target.track_url if logstore is None else f"{target.base_url}/logstores/{logstore}/track"
    host = target.host_header if project is None else f"{project}.{target.netloc}"
    return requests.post(url, data=body, headers={"Host": host, "x-log-apiversion": "0.6.0"}, timeout=10)


def check_message(error: SlsServiceError, response: requests.Response, status: int, code: str) -> None:
    message = str(error)
    request_id = response.headers["x-log-requestid"]
    assert request_id
    assert str(status) in message
    assert code in message
    assert request_id in message
    assert repr(PROJECT) in message and repr(LOGSTORE) in message
    assert "'orders'" in message  # topic
    assert "#7" in message  # request number within the export
    assert error.status == status
    assert error.error_code == code
    assert error.request_id == request_id
    assert error.error_message == response.json()["errorMessage"]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "TooManyRequests"),
        (500, "InternalServerError"),
        (502, "BadGateway"),
        (503, "ServerBusy"),
        (504, "GatewayTimeout"),
        (403, "WriteQuotaExceed"),
        (403, "ShardWriteQuotaExceed"),
        (403, "ExceedQuota"),
    ],
)
def test_transient_answers_are_retryable(emu: SlsEmulator, target: Target, status: int, code: str) -> None:
    emu.faults.fail_next(status=status, error_code=code)
    response = post(target)
    assert response.status_code == status
    error = classify(answer(response), target, "orders", 7)
    assert isinstance(error, SlsRetryableError)
    assert error.retryable
    check_message(error, response, status, code)
    assert "Web tracking may be off" not in str(error)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "PostBodyInvalid"),
        (400, "InvalidKey"),
        (400, "PostBodyTooLarge"),
        (401, "Unauthorized"),
        (403, "Unauthorized"),
        (403, "SignatureNotMatch"),
        (404, "ProjectNotExist"),
        (404, "LogStoreNotExist"),
        (499, "PostBodyInvalid"),
    ],
)
def test_other_answers_are_final(emu: SlsEmulator, target: Target, status: int, code: str) -> None:
    emu.faults.fail_next(status=status, error_code=code)
    response = post(target)
    assert response.status_code == status
    error = classify(answer(response), target, "orders", 7)
    assert isinstance(error, SlsRequestError)
    assert not error.retryable
    check_message(error, response, status, code)
    assert ("Web tracking may be off" in str(error)) == (status in (401, 403))


def test_web_tracking_off_is_final_and_says_so(emu: SlsEmulator, target: Target) -> None:
    emu.set_web_tracking(PROJECT, LOGSTORE, False)
    response = post(target)
    assert response.status_code == 403
    error = classify(answer(response), target, "orders", 7)
    assert isinstance(error, SlsRequestError)
    check_message(error, response, 403, "Unauthorized")
    assert "Web tracking may be off" in str(error)


def test_real_bad_body_is_final(emu: SlsEmulator, target: Target) -> None:
    response = post(target, body=b"{not json")
    error = classify(answer(response), target, "orders", 7)
    assert isinstance(error, SlsRequestError)
    check_message(error, response, 400, "PostBodyInvalid")


def test_real_missing_logstore_and_project_are_final(emu: SlsEmulator, target: Target) -> None:
    response = post(target, logstore="nope")
    error = classify(answer(response), target, "orders", 7)
    assert isinstance(error, SlsRequestError)
    assert (error.status, error.error_code) == (404, "LogStoreNotExist")
    response = post(target, project="other-proj")
    error = classify(answer(response), target, "orders", 7)
    assert isinstance(error, SlsRequestError)
    assert (error.status, error.error_code) == (404, "ProjectNotExist")


def test_retry_after_is_read(emu: SlsEmulator, target: Target) -> None:
    emu.faults.fail_next(status=429, error_code="TooManyRequests", retry_after=3)
    error = classify(answer(post(target)), target, "orders", 7)
    assert error.retry_after == 3.0


def hand_made(status: int, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, urllib3.HTTPHeaderDict(headers or {}), body)


def answer(response: requests.Response) -> Answer:
    return Answer(response.status_code, response.headers, response.content)


def test_non_json_answer_from_a_proxy() -> None:
    target = resolve_target("sls.example.com", PROJECT, LOGSTORE)
    error = classify(hand_made(502, b"<html>Bad Gateway</html>"), target, "orders", 7)
    assert isinstance(error, SlsRetryableError)
    assert error.error_code is None and error.request_id is None
    assert "502" in str(error) and "Bad Gateway" in str(error)
    assert repr(PROJECT) in str(error) and repr(LOGSTORE) in str(error)


def test_empty_answer() -> None:
    target = resolve_target("sls.example.com", PROJECT, LOGSTORE)
    error = classify(hand_made(400, b"", {"x-log-requestid": "ABC123"}), target, "orders", 7)
    assert isinstance(error, SlsRequestError)
    assert "400" in str(error) and "ABC123" in str(error)
    assert error.request_id == "ABC123"


def test_403_without_a_code_is_final() -> None:
    target = resolve_target("sls.example.com", PROJECT, LOGSTORE)
    error = classify(hand_made(403, b"forbidden"), target, "orders", 7)
    assert isinstance(error, SlsRequestError)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("-5", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("", None)],
)
def test_retry_after_forms(header: str, expected: float | None) -> None:
    target = resolve_target("sls.example.com", PROJECT, LOGSTORE)
    response = hand_made(
        429, b'{"errorCode":"TooManyRequests","errorMessage":"slow down"}', {"Retry-After": header}
    )
    assert classify(response, target, "orders", 7).retry_after == expected


# -- the client acts on the classification --------------------------------------------------


def request_of(logs: int = 1) -> Request:
    body = json.dumps(
        {
            "__topic__": "orders",
            "__source__": "s",
            "__tags__": {},
            "__logs__": [{"n": str(i)} for i in range(logs)],
        }
    ).encode()
    return Request(seq=7, topic="orders", body=body, logs=logs)


FAST = replace(FAST_RETRY, attempts=4, deadline=10)


@pytest.mark.parametrize("compress_type", ["lz4", "deflate", "none"])
def test_transient_errors_are_retried_until_stored(
    emu: SlsEmulator, target: Target, compress_type: str
) -> None:
    emu.faults.fail_next(2, status=403, error_code="WriteQuotaExceed")
    retried: list[SlsServiceError] = []
    client = WebTrackingClient(target, compress_type=compress_type, retry=FAST)
    try:
        sent = client.send(request_of(3), on_retry=retried.append)
    finally:
        client.close()
    assert sent.request_id
    assert [e.error_code for e in retried] == ["WriteQuotaExceed", "WriteQuotaExceed"]
    assert emu.count(PROJECT, LOGSTORE, "orders") == 3


def test_final_errors_are_not_retried(emu: SlsEmulator, target: Target) -> None:
    emu.faults.fail_next(3, status=400, error_code="InvalidKey")
    client = WebTrackingClient(target, retry=FAST)
    try:
        with pytest.raises(SlsRequestError) as info:
            client.send(request_of())
    finally:
        client.close()
    assert info.value.error_code == "InvalidKey"
    assert emu.faults.injected["fail_next"] == 1  # one try only


def test_retries_run_out_with_the_last_error(emu: SlsEmulator, target: Target) -> None:
    emu.faults.fail_next(10, status=503, error_code="ServerBusy")
    client = WebTrackingClient(target, retry=FAST)
    try:
        with pytest.raises(SlsRetryableError) as info:
            client.send(request_of())
    finally:
        client.close()
    assert info.value.status == 503
    assert emu.faults.injected["fail_next"] == FAST.attempts
    assert emu.count(PROJECT, LOGSTORE) == 0
