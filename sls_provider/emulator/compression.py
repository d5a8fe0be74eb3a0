"""Undo ``x-log-compresstype`` and check ``x-log-bodyrawsize``, without trusting either.

The declared raw size is checked against the limit *before* anything is decompressed, and
the decompressors are bounded by it, so a small hostile body cannot make us allocate much.
"""

from __future__ import annotations

import zlib

import lz4.block

from sls_provider.emulator.limits import MAX_RAW_BYTES
from sls_provider.emulator.messages import SlsError

COMPRESS_TYPES = ("lz4", "deflate")


def _uncompress_error(message: str) -> SlsError:
    return SlsError(400, "PostBodyUncompressError", message)


def _raw_size(header: str | None) -> int:
    if header is None or not header.strip():
        raise SlsError(400, "MissingBodyRawSize", "x-log-bodyrawsize is required for a compressed body.")
    try:
        size = int(header.strip())
    except ValueError:
        raise _uncompress_error(f"x-log-bodyrawsize is not an integer: {header[:40]!r}.") from None
    if size < 0:
        raise _uncompress_error("x-log-bodyrawsize is negative.")
    if size > MAX_RAW_BYTES:
        raise SlsError(
            400,
            "PostBodyTooLarge",
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
            raise SlsError(400, "PostBodyTooLarge", f"Body of {len(body)} bytes is over {MAX_RAW_BYTES}.")
        return body
    if kind not in COMPRESS_TYPES:
        raise SlsError(400, "InvalidCompressType", f"Unsupported x-log-compresstype {compress_type!r}.")
    size = _raw_size(raw_size_header)
    raw = _lz4(body, size) if kind == "lz4" else _inflate(body, size)
    if len(raw) != size:
        raise _uncompress_error(f"Decompressed {len(raw)} bytes but x-log-bodyrawsize says {size}.")
    return raw
