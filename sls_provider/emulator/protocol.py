"""The PutWebTracking wire protocol, with no server in it: the service limits, the request value,
finding the project in a Host header, undoing ``x-log-compresstype`` and validating the JSON body.

Kept free of ``http.server`` and of state so each rule can be exercised without a socket.

Undocumented choices of the service, made here:
- a log value that is not a string (number, bool, null, object, list) -> 400 ``PostBodyInvalid``
  (the body is well-formed JSON but not of the documented shape);
- ``__topic__``/``__source__`` longer than 128 bytes or not strings -> 400 ``PostBodyInvalid``;
- an empty ``__logs__`` list is accepted and stores nothing;
- a bare IP address, ``localhost`` or a single label in Host names no project: 400 ``InvalidHost``
  rather than a guess.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import zlib
from dataclasses import dataclass
from typing import Any

import lz4.block

from sls_provider.emulator.errors import EmulatorError, ErrorCode

# -- limits (docs/protocol.md, "Limits") -----------------------------------------------------
MB = 1024 * 1024
MAX_RAW_BYTES = 3 * MB  # uncompressed body, envelope included (the SDKs count MB as 1024*1024)
MAX_LOGS = 4096
MAX_META_BYTES = 128  # __topic__ and __source__
MAX_KEY_BYTES = 128
MAX_VALUE_BYTES = 1 * MB
# Compressed bodies of incompressible data can be slightly larger than the raw limit (lz4 worst
# case is raw + raw/255 + 16), so the declared Content-Length gets a margin on top of 3 MB.
MAX_CONTENT_LENGTH = MAX_RAW_BYTES + 64 * 1024
# After refusing an oversized upload we read and discard this much so the client sees the answer
# instead of a connection reset; beyond it we just close.
MAX_DRAIN_BYTES = 64 * MB
API_VERSION = "0.6.0"
GETLOGS_DEFAULT_LINES = 100
GETLOGS_MAX_LINES = 1000


# -- the request -----------------------------------------------------------------------------
def new_request_id() -> str:
    """An ``x-log-requestid``: 24 upper-case hex characters, like the service's."""
    return os.urandom(12).hex().upper()


@dataclass(frozen=True)
class HttpRequest:
    """One parsed HTTP request (body already read in full)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client_ip: str
    client_port: int = 0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# -- hosts: SLS routes ``{project}.{endpoint}`` ------------------------------------------------
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


# -- compression: the declared raw size is checked against the limit *before* anything is -----
# decompressed, and the decompressors are bounded by it, so a small hostile body cannot make us
# allocate much.
COMPRESS_TYPES = ("lz4", "deflate")


def _uncompress_error(message: str) -> EmulatorError:
    return EmulatorError(400, ErrorCode.POST_BODY_UNCOMPRESS_ERROR, message)


def _raw_size(header: str | None) -> int:
    if header is None or not header.strip():
        raise EmulatorError(
            400, ErrorCode.MISSING_BODY_RAW_SIZE, "x-log-bodyrawsize is required for a compressed body."
        )
    try:
        size = int(header.strip())
    except ValueError:
        raise _uncompress_error(f"x-log-bodyrawsize is not an integer: {header[:40]!r}.") from None
    if size < 0:
        raise _uncompress_error("x-log-bodyrawsize is negative.")
    if size > MAX_RAW_BYTES:
        raise EmulatorError(
            400,
            ErrorCode.POST_BODY_TOO_LARGE,
            f"Raw body of {size} bytes is over the {MAX_RAW_BYTES}-byte (3 MB) limit.",
        )
    return size


def _inflate(body: bytes, size: int) -> bytes:
    """zlib-wrapped deflate, producing at most ``size + 1`` bytes so a bomb stays harmless."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(body, size + 1)
    except zlib.error as exc:
        raise _uncompress_error(f"deflate (zlib) body cannot be decompressed: {exc}.") from None
    if not inflater.eof or inflater.unconsumed_tail:
        raise _uncompress_error("deflate body is truncated or larger than x-log-bodyrawsize.")
    return raw


def _lz4(body: bytes, size: int) -> bytes:
    """LZ4 *block* format, no size prefix; ``uncompressed_size`` caps the output buffer."""
    if size == 0:
        raise _uncompress_error("x-log-bodyrawsize is 0 for an lz4 body.")
    try:
        return lz4.block.decompress(body, uncompressed_size=size)
    except (lz4.block.LZ4BlockError, ValueError) as exc:
        raise _uncompress_error(f"lz4 block body cannot be decompressed: {exc}.") from None


def decode_body(body: bytes, compress_type: str | None, raw_size_header: str | None) -> bytes:
    """Return the uncompressed JSON bytes of a /track body, or raise an SLS error.

    Uncompressed bodies need no raw size (browsers send none); if one is sent it is ignored.
    """
    kind = (compress_type or "").strip().lower()
    if not kind:
        if len(body) > MAX_RAW_BYTES:
            raise EmulatorError.too_large(f"Body of {len(body)} bytes is over {MAX_RAW_BYTES}.")
        return body
    if kind not in COMPRESS_TYPES:
        raise EmulatorError(
            400, ErrorCode.INVALID_COMPRESS_TYPE, f"Unsupported x-log-compresstype {compress_type!r}."
        )
    size = _raw_size(raw_size_header)
    raw = _lz4(body, size) if kind == "lz4" else _inflate(body, size)
    if len(raw) != size:
        raise _uncompress_error(f"Decompressed {len(raw)} bytes but x-log-bodyrawsize says {size}.")
    return raw


# -- payload: the JSON body, validated completely before anything is stored ------------------
RESERVED_KEYS = frozenset(
    {"__topic__", "__source__", "__partition_time__", "_extract_others_", "__extract_others__"}
)
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# JSON can smuggle a lone surrogate in as an escape (valid JSON, invalid UTF-8). Only when the raw
# body has such an escape do we pay for encoding every value to find it.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# A str of at most this many characters cannot exceed MAX_VALUE_BYTES in UTF-8 (4 bytes a char).
_SAFE_VALUE_CHARS = MAX_VALUE_BYTES // 4


@dataclass(frozen=True)
class Payload:
    """A validated /track body. ``topic``/``source`` are ``None`` when the body left them out."""

    topic: str | None
    source: str | None
    tags: dict[str, str]
    logs: list[dict[str, str]]


def _invalid(message: str) -> EmulatorError:
    return EmulatorError.bad_body(message)


def _check_utf8(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise EmulatorError(
            400, ErrorCode.INVALID_ENCODING, f"{where} is not valid UTF-8 (lone surrogate)."
        ) from None


def _meta(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key} must be a string, got {type(value).__name__}.")
    _check_utf8(value, key)
    if len(value.encode("utf-8")) > MAX_META_BYTES:
        raise _invalid(f"{key} is longer than {MAX_META_BYTES} bytes.")
    return value


def _tags(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"__tags__ must be an object of strings, got {type(value).__name__}.")
    for key, tag in value.items():
        if not key or not isinstance(tag, str):
            raise _invalid(f"__tags__[{key!r}] must be a non-empty key with a string value.")
        _check_utf8(key, "a __tags__ key")
        _check_utf8(tag, f"__tags__[{key!r}]")
    return value


def _check_key(key: str, index: int) -> None:
    if key in RESERVED_KEYS:
        raise EmulatorError(400, ErrorCode.INVALID_KEY, f"Log #{index}: key {key!r} is reserved.")
    if not _KEY.fullmatch(key):
        raise EmulatorError(
            400,
            ErrorCode.INVALID_KEY,
            f"Log #{index}: key {key[:140]!r} must be 1-128 characters of [A-Za-z0-9_],"
            " not starting with a digit.",
        )


def _check_logs(logs: list[Any], surrogates_possible: bool) -> None:
    """One plain loop: measured faster than set/map tricks per log (ingest speed lives here)."""
    good_keys: set[str] = set()  # keys repeat across logs: check each distinct key once
    for index, log in enumerate(logs):
        if type(log) is not dict:
            raise _invalid(f"Log #{index} must be an object, got {type(log).__name__}.")
        for key, value in log.items():
            if key not in good_keys:
                _check_key(key, index)
                good_keys.add(key)
            if type(value) is not str:
                raise _invalid(
                    f"Log #{index}: value of {key!r} must be a string, got {type(value).__name__}."
                )
            if surrogates_possible:
                _check_utf8(value, f"Log #{index}: value of {key!r}")
            if len(value) > _SAFE_VALUE_CHARS and len(value.encode("utf-8", "replace")) > MAX_VALUE_BYTES:
                raise EmulatorError.too_large(f"Log #{index}: value of {key!r} is over 1 MB.")


def parse_payload(raw: bytes) -> Payload:
    """Validate ``raw`` (uncompressed body bytes) as a PutWebTracking body."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EmulatorError(
            400, ErrorCode.INVALID_ENCODING, f"Body is not valid UTF-8 (byte {exc.start})."
        ) from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise _invalid("Body JSON is nested too deeply.") from None
    except ValueError as exc:
        raise _invalid(f"Body is not valid JSON: {exc}.") from None
    if not isinstance(doc, dict):
        raise _invalid(f"Body must be a JSON object, got {type(doc).__name__}.")
    logs = doc.get("__logs__")
    if not isinstance(logs, list):
        raise _invalid("Body must have __logs__: a list of objects.")
    if len(logs) > MAX_LOGS:
        raise EmulatorError.too_large(f"{len(logs)} logs in one request; the limit is {MAX_LOGS}.")
    payload = Payload(_meta(doc, "__topic__"), _meta(doc, "__source__"), _tags(doc.get("__tags__")), logs)
    _check_logs(logs, _SURROGATE_ESCAPE.search(raw) is not None)
    return payload
