"""What went wrong on the wire, in words safe to show. It holds pure functions of text only (no
state, no I/O): ``mask`` (secrets out of a text), ``sls_error_body`` (an SLS error's code and
message, or nothing), ``status_words``/``describe_answer``/``first_bytes`` (an answer named without
quoting it), ``transport_reason``/``refused_certificate`` (a urllib3 error in words) and
``one_line`` (a query or a message on one line, cut to a length).

An answer's body is quoted only when it is a recognised SLS error (JSON with ``errorCode`` /
``errorMessage``): anything else may come from a proxy or a captive portal, and such pages echo
request headers (a security token among them) back. Those are named by status and content type.
Every quoted text also has the caller's known secrets masked, in case a hostile peer dressed an
echo up as an SLS error.
"""

from __future__ import annotations

import http
import http.client
import json
import socket
import ssl
from collections.abc import Iterable, Mapping

import urllib3

MASK = "***"


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` on one line (runs of whitespace as one space), at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if limit is None or len(line) <= limit else line[: limit - 3] + "..."


def mask(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def sls_error_body(body: bytes) -> tuple[str | None, str | None] | None:
    """``(errorCode, errorMessage)`` if ``body`` is an SLS error answer, else ``None``."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    code, message = payload.get("errorCode"), payload.get("errorMessage")
    if not isinstance(code, str) and not isinstance(message, str):
        return None
    return (code if isinstance(code, str) else None), (message if isinstance(message, str) else None)


def status_words(status: int) -> str:
    """``502 Bad Gateway``; the number alone for a status without a standard phrase."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def describe_answer(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """What came back, without quoting it: status, content type, size."""
    kind = headers.get("Content-Type") or "no content type"
    return f"{status_words(status)}, {kind}, {len(body)} bytes of body"


def first_bytes(body: bytes, secrets: Iterable[str | None], limit: int = 64) -> str:
    """The start of ``body`` as printable text (control characters escaped), secrets masked."""
    text = body[:limit].decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return mask(text, secrets) + ("..." if len(body) > limit else "")


def _causes(err: BaseException) -> Iterable[BaseException]:
    """``err`` and what it wraps: urllib3's ``reason`` / ``original_error``, then ``__cause__`` /
    ``__context__`` (requests wraps urllib3, which wraps the socket error)."""
    seen: set[int] = set()
    todo: list[BaseException] = [err]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for name in ("reason", "original_error"):
            inner = getattr(current, name, None)
            if isinstance(inner, BaseException):
                todo.append(inner)
        for inner in (current.__cause__, current.__context__, *current.args):
            if isinstance(inner, BaseException):
                todo.append(inner)


def refused_certificate(err: BaseException) -> bool:
    """The TLS handshake rejected the server's certificate: nothing was sent."""
    return any(isinstance(cause, ssl.SSLCertVerificationError) for cause in _causes(err))


def transport_reason(err: BaseException, *, host: str, timeout: float) -> str:
    """Why no answer came, in plain words: refused, DNS, timeout, TLS, reset, closed."""
    causes = list(_causes(err))
    via = " (through the proxy)" if any(isinstance(c, urllib3.exceptions.ProxyError) for c in causes) else ""

    def first(*kinds: type[BaseException]) -> BaseException | None:
        return next((c for c in causes if isinstance(c, kinds)), None)

    # Most specific first: urllib3's NewConnectionError is a kind of ConnectTimeoutError, so a
    # refused connection would otherwise read as a timeout.
    if isinstance(cert := first(ssl.SSLCertVerificationError), ssl.SSLCertVerificationError):
        return (
            f"TLS error: the certificate of {host} was not accepted: {cert.verify_message} "
            f"({cert.reason}){via}"
        )
    if tls := first(ssl.SSLError):
        reason = str(getattr(tls, "reason", None) or tls).lower().replace("_", " ")
        return f"TLS error talking to {host}: {reason}{via}"
    if first(urllib3.exceptions.SSLError):
        return f"TLS error talking to {host}{via}"
    if first(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return f"the host name of {host} could not be resolved (DNS failure){via}"
    if first(ConnectionRefusedError):
        return f"connection refused: nothing is listening at {host}{via}"
    if first(ConnectionResetError):
        return f"the connection to {host} was reset by the peer{via}"
    if first(http.client.RemoteDisconnected):
        return f"{host} closed the connection without answering{via}"
    if first(http.client.IncompleteRead):
        return f"{host} closed the connection in the middle of its answer{via}"
    if first(urllib3.exceptions.ReadTimeoutError):
        return f"no answer within {timeout:g} s from {host}{via}"
    if first(urllib3.exceptions.ConnectTimeoutError, TimeoutError):
        return f"timed out after {timeout:g} s while connecting to {host}{via}"
    if isinstance(failed := first(OSError), OSError) and failed.strerror:
        return f"{failed.strerror[:1].lower()}{failed.strerror[1:]} ({host}){via}"
    if via:
        return f"the proxy refused or failed the connection to {host}"
    return f"{type(err).__name__} talking to {host}"
