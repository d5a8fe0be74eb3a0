"""Compression in the exact formats SLS expects (docs/protocol.md): lz4 = LZ4 block format without a size
prefix; deflate = zlib-wrapped (RFC 1950); none = the body as is."""

from __future__ import annotations

import json
import os
import zlib

import lz4.block
import lz4.frame
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sls_provider.core.compress import check_compress_type, compress
from sls_provider.core.errors import SlsConfigError, SlsError


def decompress(data: bytes, kind: str, raw_size: int) -> bytes:
    """What SLS does with a body: the libraries' own decoders of the formats it expects."""
    if kind == "lz4":
        return lz4.block.decompress(data, uncompressed_size=raw_size)
    if kind == "deflate":
        return zlib.decompress(data)
    return data


BODY = json.dumps(
    {"__topic__": "t", "__source__": "s", "__tags__": {}, "__logs__": [{"k": f"值 {i}"} for i in range(500)]},
    ensure_ascii=False,
).encode("utf-8")
BODIES = [BODY, b"", b"x", os.urandom(5000), b"a" * 100_000]


@pytest.mark.parametrize("body", BODIES, ids=["json", "empty", "one byte", "random", "repetitive"])
def test_lz4_is_the_block_format_without_size_prefix(body: bytes) -> None:
    data = compress(body, "lz4")
    assert lz4.block.decompress(data, uncompressed_size=len(body)) == body
    assert data == lz4.block.compress(body, store_size=False)
    assert not data.startswith(len(body).to_bytes(4, "little")) or len(body) == 0
    assert not data.startswith(b"\x04\x22\x4d\x18")  # the LZ4 frame magic number


def test_lz4_is_not_the_frame_format() -> None:
    data = compress(BODY, "lz4")
    with pytest.raises(RuntimeError):
        lz4.frame.decompress(data)


@pytest.mark.parametrize("body", BODIES, ids=["json", "empty", "one byte", "random", "repetitive"])
def test_deflate_is_zlib_wrapped(body: bytes) -> None:
    data = compress(body, "deflate")
    assert zlib.decompress(data) == body
    assert data[0] == 0x78  # zlib header: deflate, 32 KiB window
    assert (data[0] * 256 + data[1]) % 31 == 0  # zlib header check bits
    assert not data.startswith(b"\x1f\x8b")  # not gzip


def test_deflate_is_not_raw_deflate() -> None:
    data = compress(BODY, "deflate")
    with pytest.raises(zlib.error):
        zlib.decompress(data, wbits=-15)


def test_compression_shrinks_a_typical_body() -> None:
    assert len(compress(BODY, "lz4")) < len(BODY) / 2
    assert len(compress(BODY, "deflate")) < len(BODY) / 2


@pytest.mark.parametrize("body", BODIES, ids=["json", "empty", "one byte", "random", "repetitive"])
def test_none_passes_the_body_through(body: bytes) -> None:
    assert compress(body, "none") == body
    assert decompress(body, "none", len(body)) == body


@pytest.mark.parametrize("kind", ["lz4", "deflate", "none"])
@pytest.mark.parametrize("body", BODIES, ids=["json", "empty", "one byte", "random", "repetitive"])
def test_decompress_inverts_compress(kind: str, body: bytes) -> None:
    assert decompress(compress(body, kind), kind, len(body)) == body


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from(["lz4", "deflate", "none"]))
def test_round_trip_any_bytes(body: bytes, kind: str) -> None:
    assert decompress(compress(body, kind), kind, len(body)) == body


@pytest.mark.parametrize(
    ("given_kind", "expected"),
    [
        ("lz4", "lz4"),
        ("LZ4", "lz4"),
        ("deflate", "deflate"),
        ("Deflate", "deflate"),
        ("none", "none"),
        ("NONE", "none"),
    ],
)
def test_check_compress_type_normalises(given_kind: str, expected: str) -> None:
    assert check_compress_type(given_kind) == expected


@pytest.mark.parametrize("kind", ["gzip", "zstd", "snappy", "lz4-frame", "zlib", "raw", None, "", False, 0])
def test_unknown_compression_is_a_clear_error(kind: object) -> None:
    """``None`` and ``""`` are "not given", which the hook resolves to its default (lz4) before it
    checks: here they are not a name (they once meant ``none``, which no caller wanted)."""
    with pytest.raises(SlsConfigError) as info:
        check_compress_type(kind)
    message = str(info.value)
    assert repr(kind) in message
    for valid in ("lz4", "deflate", "none"):
        assert valid in message
    with pytest.raises(SlsConfigError):
        compress(BODY, kind)  # never the body unchanged under a wrong x-log-compresstype


def test_config_error_is_a_provider_error() -> None:
    with pytest.raises(SlsError):
        check_compress_type("brotli")
