"""Body compression in the exact formats SLS expects (docs/protocol.md, "Compression").

``lz4`` is the LZ4 *block* format without a size prefix (the raw size travels in
``x-log-bodyrawsize``), not the frame format; ``deflate`` is zlib-wrapped (RFC 1950), not raw
deflate or gzip. Both release the GIL, so sender threads compress beside the encoding thread.
"""

from __future__ import annotations

import zlib

import lz4.block

from sls_provider.core.errors import SlsConfigError

COMPRESS_TYPES = ("lz4", "deflate", "none")


def check_compress_type(kind: object) -> str:
    """A compression name, validated and in lower case. "Not given" is the caller's to resolve (the
    hook's default is ``lz4``, not ``none``), so ``None`` and ``""`` are refused here like any
    other value that is not a name."""
    if not isinstance(kind, str) or kind.lower() not in COMPRESS_TYPES:
        raise SlsConfigError(f"compress_type must be one of {COMPRESS_TYPES}, got {kind!r}")
    return kind.lower()


def compress(body: bytes, kind: str) -> bytes:
    """Compress ``body`` as ``kind`` (``"none"`` returns it unchanged)."""
    if kind == "lz4":
        return lz4.block.compress(body, store_size=False)
    if kind == "deflate":
        return zlib.compress(body, 6)
    if kind == "none":
        return body
    # An unknown name would otherwise send the body uncompressed under a wrong x-log-compresstype.
    raise SlsConfigError(f"compress_type must be one of {COMPRESS_TYPES}, got {kind!r}")
