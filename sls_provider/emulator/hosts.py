"""Find the project in a Host header, the way SLS routes ``{project}.{endpoint}``.

The first DNS label is the project, unless the host is a bare IP address or ``localhost``
(with or without a port): those name no project at all, which the emulator refuses with
``400 InvalidHost`` rather than guessing.
"""

from __future__ import annotations

import ipaddress


def _split_port(host: str) -> str | None:
    """Strip ``:port``; ``None`` for IPv6 literals, which can never carry a project."""
    if host.startswith("[") or host.count(":") > 1:
        return None
    return host.rsplit(":", 1)[0] if ":" in host else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def project_from_host(host: str | None) -> str | None:
    """``proj.127.0.0.1:9090`` -> ``proj``; ``127.0.0.1:9090``, ``localhost`` -> ``None``."""
    if not host:
        return None
    name = _split_port(host.strip().lower())
    if name is None:
        return None
    name = name.rstrip(".")
    if not name or name == "localhost" or _is_ip(name) or "." not in name:
        # A single label (``emulator``) cannot be told apart from an endpoint without a project.
        return None
    return name.split(".", 1)[0] or None
