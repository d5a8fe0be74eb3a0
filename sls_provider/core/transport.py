"""The HTTP transport both clients share: keep-alive connections (urllib3) with the environment's
proxy and CA settings, and one exchange under a hard deadline.

urllib3 directly rather than requests: requests re-reads the proxy settings from the environment on
every call, which was over half of the client's CPU per request (docs/performance.md). The
environment is read once per pool instead, with requests' own helpers, so proxies and CA bundles
behave as they would with requests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import certifi
import requests
import urllib3

from sls_provider.core.endpoint import Target
from sls_provider.core.trydeadline import Try, watch_pool

__all__ = ["API_VERSION", "Exchange", "connection_pool", "exchange"]

#: The ``x-log-apiversion`` of every call.
API_VERSION = "0.6.0"


def connection_pool(target: Target, timeout: float, verify: bool | str, size: int) -> urllib3.PoolManager:
    """Keep-alive connections to ``target``. The environment is read once, here, the way requests
    reads it on every call: ``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` (host names, IPs,
    CIDR ranges) for the proxy, ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` for the CA bundle."""
    options: dict = {
        "num_pools": 1,
        "maxsize": size,
        "retries": False,  # send() retries, knowing which errors are safe to repeat
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
    }
    if target.scheme == "https":
        if verify is False:
            options["cert_reqs"] = "CERT_NONE"
        else:
            ca = verify if isinstance(verify, str) else _environ_ca_bundle()
            options["ca_cert_dir" if os.path.isdir(ca) else "ca_certs"] = ca
    proxies = requests.utils.get_environ_proxies(target.base_url)
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy:
        return watch_pool(urllib3.PoolManager(**options))
    proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
    user, password = requests.utils.get_auth_from_url(proxy)
    if user:
        # urllib3 ignores credentials in the proxy URL: send them as requests does.
        options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}")
        proxy = urllib3.util.parse_url(proxy)._replace(auth=None).url
    return watch_pool(urllib3.ProxyManager(proxy, **options))


def _environ_ca_bundle() -> str:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange: the answer (read whole), or the transport error, and the try that bounded it
    (whether it expired, and whether the request started going out)."""

    response: urllib3.BaseHTTPResponse | None
    error: urllib3.exceptions.HTTPError | None
    attempt: Try


def exchange(
    pool: urllib3.PoolManager,
    method: str,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
    stop: Any = None,
    redirect: bool = True,
) -> Exchange:
    """``method url`` under a hard deadline (a ``time.monotonic()`` value; brought forward when
    ``stop`` is set): the socket is shut down at the deadline whatever the peer does
    (:mod:`~sls_provider.core.trydeadline`). Transport errors are returned, not raised, so each
    client words them for what it was doing."""
    with Try(deadline, stop) as attempt:
        try:
            response = pool.urlopen(
                method, url, body=body, headers=headers, preload_content=True, redirect=redirect
            )
        except urllib3.exceptions.HTTPError as err:
            return Exchange(None, err, attempt)
    return Exchange(response, None, attempt)
