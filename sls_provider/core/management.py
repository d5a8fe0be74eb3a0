"""Signed management calls (GetLogStore, UpdateLogStore) for the connection test and for switching
web tracking on.

Writing through web tracking is anonymous; reading a logstore's settings is not. Requests are signed
by the official SDK (``aliyun-log-python-sdk``, the ``aliyun`` extra) and sent over our own transport,
which knows how to reach IP and ``localhost`` endpoints (the SDK tries ``{project}.{ip}:{port}``).

These calls use ``requests``, while writes use urllib3 directly (:mod:`sls_provider.core.client`).
On purpose: a management call is one or two requests per connection test or switch, so requests'
per-call reading of proxy and CA settings from the environment costs nothing here, and it keeps this
module short; for writes that same per-call cost dominated the client's CPU. Both read the
environment the same way (the client uses requests' own helpers), so proxies and CA bundles behave
alike for both.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from sls_provider.core.client import API_VERSION, error_body
from sls_provider.core.endpoint import Target
from sls_provider.core.errors import SlsConfigError, SlsRequestError, SlsRetryableError, SlsServiceError


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
        try:
            response = requests.request(
                method,
                self.target.base_url + resource,
                data=data,
                headers=headers,
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.RequestException as err:
            raise SlsRetryableError(
                f"Could not reach SLS at {self.target.base_url}: {type(err).__name__}", ambiguous=True
            ) from err
        if response.status_code != 200:
            raise _error(response, self.target, method)
        return response.json() if response.content else {}

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


def _error(response: requests.Response, target: Target, method: str) -> SlsServiceError:
    code, message = error_body(response.content)
    kind = (
        SlsRetryableError if response.status_code == 429 or response.status_code >= 500 else SlsRequestError
    )
    return kind(
        f"SLS answered {response.status_code} {code or '-'} to {method} logstore {target.logstore!r} "
        f"of project {target.project!r}: {message or '(no message)'} "
        f"[request id {response.headers.get('x-log-requestid', '-')}]",
        status=response.status_code,
        error_code=code,
        error_message=message,
        request_id=response.headers.get("x-log-requestid"),
    )
