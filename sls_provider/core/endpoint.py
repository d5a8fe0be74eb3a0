"""Where a PutWebTracking request goes: URL and Host header for a project, logstore and endpoint.

The project travels in the host name (``{project}.{endpoint}``). For an endpoint that is an IP
address or ``localhost`` (a private gateway, the local emulator) that name does not resolve, so,
like the official SDKs, we connect to the endpoint itself and send ``Host: {project}.{endpoint}``
(docs/protocol.md, "Endpoint and Host").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from sls_provider.core.errors import SlsConfigError

__all__ = ["Target", "resolve_target"]

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,126}[a-z0-9]\Z")
_LOGSTORE = re.compile(r"[a-z0-9][a-z0-9_-]{1,126}[a-z0-9]\Z")


@dataclass(frozen=True)
class Target:
    """A resolved logstore address. ``host_header`` is ``None`` when the URL's host says it all."""

    scheme: str
    netloc: str  # what we connect to: host[:port]
    project: str
    logstore: str
    host_header: str | None

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    @property
    def track_url(self) -> str:
        return f"{self.base_url}/logstores/{quote(self.logstore)}/track"

    @property
    def namespace(self) -> str:
        """``sls://{project}.{endpoint}``, the lineage namespace of the logstore."""
        return f"sls://{self.host_header or self.netloc}"


def _is_literal_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve_target(endpoint: str, project: str, logstore: str, port: int | None = None) -> Target:
    """Build the :class:`Target` for ``endpoint`` (``cn-hangzhou.log.aliyuncs.com``,
    ``https://...``, ``http://127.0.0.1:9090``; https when no scheme is given).

    :raises SlsConfigError: for a missing or malformed endpoint, project or logstore.
    """
    if not endpoint or not endpoint.strip():
        raise SlsConfigError(
            "The SLS connection has no endpoint: set its host, e.g. cn-hangzhou.log.aliyuncs.com"
        )
    text = endpoint.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise SlsConfigError(f"The SLS endpoint must use http or https, got {parts.scheme!r}")
    if parts.username or parts.password:
        raise SlsConfigError(
            "The SLS endpoint must not carry credentials; use the connection's login/password"
        )
    if parts.path not in ("", "/") or parts.query:
        raise SlsConfigError(f"The SLS endpoint is a host name only, without a path: {parts.netloc!r}")
    try:
        url_port = parts.port
    except ValueError as err:
        raise SlsConfigError(f"The SLS endpoint has a bad port: {parts.netloc!r}") from err
    host = parts.hostname
    if not host:
        raise SlsConfigError(f"The SLS endpoint has no host name: {endpoint!r}")
    if port is not None and url_port is not None and port != url_port:
        raise SlsConfigError(f"The SLS endpoint names port {url_port} and the connection port {port}")
    port = url_port if url_port is not None else port
    if port is not None and not 0 < port < 65536:
        raise SlsConfigError(f"The SLS endpoint port must be 1-65535, got {port}")
    if not project or not _NAME.match(project):
        raise SlsConfigError(
            f"The SLS project must be 3-128 characters of lower-case letters, digits and '-', got {project!r}"
        )
    if not logstore or not _LOGSTORE.match(logstore):
        raise SlsConfigError(
            f"The SLS logstore must be 3-128 characters of lower-case letters, digits, '_' and '-', "
            f"got {logstore!r}"
        )
    shown_host = f"[{host}]" if ":" in host else host
    hostport = f"{shown_host}:{port}" if port is not None else shown_host
    if _is_literal_host(host):
        return Target(parts.scheme, hostport, project, logstore, host_header=f"{project}.{hostport}")
    return Target(parts.scheme, f"{project}.{hostport}", project, logstore, host_header=None)
