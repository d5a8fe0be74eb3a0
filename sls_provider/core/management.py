"""Signed management calls (GetLogStore, UpdateLogStore) for the connection test and for switching
web tracking on.

Writing through web tracking is anonymous; reading a logstore's settings is not. Requests are signed
by the official SDK (``aliyun-log-python-sdk``, the ``aliyun`` extra) and sent over our own transport,
which knows how to reach IP and ``localhost`` endpoints (the SDK tries ``{project}.{ip}:{port}``).

The transport is the web-tracking client's: same proxy and CA settings, and a call is abandoned
after twice the timeout whatever the peer does. Answers are quoted only when they are SLS errors,
with the AccessKey and token masked (a proxy's error page can echo the signed request's headers).
"""

from __future__ import annotations

import json
import time
from typing import Any

from sls_provider.core.answers import Answer, error_body, is_retryable, what_came_back
from sls_provider.core.endpoint import Target
from sls_provider.core.errors import SlsConfigError, SlsRequestError, SlsRetryableError, SlsServiceError
from sls_provider.core.reasons import describe_answer, transport_reason
from sls_provider.core.transport import API_VERSION, connection_pool, exchange


def _signer(access_key_id: str, access_key_secret: str, security_token: str | None) -> Any:
    try:
        from aliyun.log.auth import make_auth
        from aliyun.log.credentials import StaticCredentialsProvider
    except ImportError as err:
        raise SlsConfigError(
            "Signed SLS calls need the official SDK: pip install 'airflow-provider-sls[aliyun]'"
        ) from err
    return make_auth(StaticCredentialsProvider(access_key_id, access_key_secret, security_token or ""))


class ManagementClient:
    """GetLogStore / UpdateLogStore for one logstore.

    :param target: the logstore's address.
    :param access_key_id: AccessKey ID, or ``None`` for unsigned calls (answered only by the emulator
        and by gateways that do not check signatures).
    :param access_key_secret: AccessKey secret.
    :param security_token: STS token, with a temporary AccessKey.
    """

    def __init__(
        self,
        target: Target,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        security_token: str | None = None,
        *,
        timeout: float = 10.0,
        verify: bool | str = True,
    ) -> None:
        self.target = target
        self.signed = bool(access_key_id and access_key_secret)
        self._auth = (
            _signer(access_key_id or "", access_key_secret or "", security_token) if self.signed else None
        )
        self.timeout = timeout
        self.verify = verify
        #: masked wherever an answer is quoted
        self._secrets = (access_key_secret, security_token, access_key_id)
        self._http = connection_pool(target, timeout, verify, 1)

    def __repr__(self) -> str:
        return f"ManagementClient({self.target.base_url!r}, signed={self.signed})"

    def _call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resource = f"/logstores/{self.target.logstore}"
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"x-log-apiversion": API_VERSION, "x-log-bodyrawsize": str(len(data))}
        if body is not None:
            headers["Content-Type"] = "application/json"
        headers["Host"] = self.target.host_header or self.target.netloc
        if self._auth is not None:
            self._auth.sign_request(method, resource, {}, headers, data)
        url = self.target.base_url + resource
        done = exchange(
            self._http,
            method,
            url,
            body=data,
            headers=headers,
            deadline=time.monotonic() + 2 * self.timeout,
            redirect=False,
        )
        self._http.clear()  # calls are rare: keep no idle connection (and socket) open
        if done.error is not None or done.attempt.expired:
            reason = (
                f"no complete answer within {2 * self.timeout:g} s (twice the timeout)"
                if done.attempt.expired or done.error is None
                else transport_reason(done.error, host=self.target.netloc, timeout=self.timeout)
            )
            raise SlsRetryableError(
                f"Could not reach SLS at {self.target.base_url}: {reason}", ambiguous=True
            ) from done.error
        response = done.response
        assert response is not None
        answer = Answer(response.status, response.headers, response.data)
        if answer.status != 200:
            raise _error(answer, self.target, method, self._secrets)
        if not answer.body:
            return {}
        try:
            spec = json.loads(answer.body)
        except ValueError:
            spec = None
        if not isinstance(spec, dict):
            raise SlsRequestError(
                f"Got {describe_answer(answer.status, answer.headers, answer.body)} to {method} "
                f"logstore {self.target.logstore!r} at {self.target.base_url}: not an SLS answer "
                "(a proxy, a captive portal, or the wrong endpoint?)",
                status=answer.status,
            )
        return spec

    def get_logstore(self) -> dict[str, Any]:
        """The logstore's settings (``enable_tracking`` among them)."""
        return self._call("GET")

    def set_web_tracking(self, enabled: bool = True) -> None:
        """Switch web tracking on or off, keeping the logstore's other settings (UpdateLogStore
        takes the whole definition, so it is read first)."""
        spec = self.get_logstore()
        spec["enable_tracking"] = enabled
        spec.setdefault("logstoreName", self.target.logstore)
        self._call("PUT", spec)


def _error(answer: Answer, target: Target, method: str, secrets: tuple[str | None, ...]) -> SlsServiceError:
    code, message = error_body(answer.body, secrets)
    status = answer.status
    request_id = answer.headers.get("x-log-requestid")
    kind = SlsRetryableError if is_retryable(status, code) else SlsRequestError
    return kind(
        f"{what_came_back(answer, secrets)} to {method} logstore {target.logstore!r} "
        f"of project {target.project!r} [request id {request_id or '-'}]",
        status=status,
        error_code=code,
        error_message=message,
        request_id=request_id,
    )
