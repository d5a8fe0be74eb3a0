"""Hostile input over raw sockets: the server answers clearly or closes, and keeps working."""

from __future__ import annotations

import json
import socket

import pytest

from sls_provider.emulator import SlsEmulator


def raw_exchange(
    emu: SlsEmulator, head: bytes, body: bytes = b"", *, close_after_send: bool = False
) -> bytes:
    """Send bytes as-is and return whatever comes back before the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as sock:
        sock.sendall(head + body)
        if close_after_send:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and not close_after_send:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def head(emu: SlsEmulator, length: int | str, extra: str = "") -> bytes:
    return (
        f"POST /logstores/store/track HTTP/1.1\r\nHost: proj.127.0.0.1:{emu.port}\r\n"
        f"x-log-apiversion: 0.6.0\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode()


def still_serving(emu: SlsEmulator, track) -> None:
    before = emu.count("proj", "store")
    assert track([{"after": "ok"}]).status_code == 200
    assert emu.count("proj", "store") == before + 1


def test_truncated_upload_is_closed_cleanly(emu: SlsEmulator, track) -> None:
    answer = raw_exchange(emu, head(emu, 1000), b'{"__logs__": [{"a": ', close_after_send=True)
    assert answer == b""
    assert emu.count("proj", "store") == 0
    still_serving(emu, track)


def test_huge_content_length_is_refused_without_reading(emu: SlsEmulator, track) -> None:
    answer = raw_exchange(emu, head(emu, 10**12), b"{}", close_after_send=True)
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"PostBodyTooLarge" in answer and b"x-log-requestid" in answer
    assert emu.requests[-1]["error_code"] == "PostBodyTooLarge"
    still_serving(emu, track)


@pytest.mark.parametrize("length", ["-5", "abc"])
def test_bad_content_length(emu: SlsEmulator, track, length: str) -> None:
    answer = raw_exchange(emu, head(emu, length), close_after_send=True)
    assert answer.startswith(b"HTTP/1.1 400") and b"PostBodyInvalid" in answer
    still_serving(emu, track)


def test_chunked_upload_refused(emu: SlsEmulator, track) -> None:
    request = (
        f"POST /logstores/store/track HTTP/1.1\r\nHost: proj.127.0.0.1:{emu.port}\r\n"
        "x-log-apiversion: 0.6.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ).encode()
    answer = raw_exchange(emu, request, close_after_send=True)
    assert answer.startswith(b"HTTP/1.1 411")
    still_serving(emu, track)


def test_garbage_request_line(emu: SlsEmulator, track) -> None:
    answer = raw_exchange(emu, b"\x16\x03\x01 this is not http\r\n\r\n", close_after_send=True)
    assert answer == b"" or answer.startswith(b"HTTP/1.")
    still_serving(emu, track)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "PostBodyInvalid"),
        (b'{"__logs__": ' + b"[" * 50_000, "PostBodyInvalid"),
        (b'{"__logs__": [{"a": "' + b"9" * 5000 + b'"}], "n": ' + b"9" * 5000 + b"}", "PostBodyInvalid"),
        (bytes(range(256)) * 10, "InvalidEncoding"),
        (b"", "PostBodyInvalid"),
        (b"null", "PostBodyInvalid"),
    ],
)
def test_bad_bodies(emu: SlsEmulator, track, expect_error, body: bytes, code: str) -> None:
    expect_error(track(body), 400, code)
    still_serving(emu, track)


@pytest.mark.parametrize("kind", ["lz4", "deflate"])
def test_garbage_compressed_bodies(emu: SlsEmulator, track, expect_error, kind: str) -> None:
    raw = json.dumps({"__logs__": [{"a": "b"}]}).encode()
    for size in (len(raw) - 1, len(raw) + 1, 0):
        expect_error(track(raw, compress_type=kind, raw_size=size), 400, "PostBodyUncompressError")
    garbage = track(
        b"\x00garbage" * 100,
        headers={"x-log-compresstype": kind, "x-log-bodyrawsize": "100"},
    )
    expect_error(garbage, 400, "PostBodyUncompressError")
    still_serving(emu, track)


def test_deflate_bomb_is_bounded(emu: SlsEmulator, track, expect_error) -> None:
    import zlib

    bomb = zlib.compress(b"\x00" * (40 * 1024 * 1024), 9)  # 40 MB of zeros in ~40 kB
    resp = track(bomb, headers={"x-log-compresstype": "deflate", "x-log-bodyrawsize": "1000"})
    expect_error(resp, 400, "PostBodyUncompressError")
    still_serving(emu, track)


def test_stored_logs_survive_bad_requests(emu: SlsEmulator, track) -> None:
    assert track([{"keep": "me"}]).status_code == 200
    for bad in (b"{", b'{"__logs__": [{"a": 1}]}', b"\xff"):
        assert track(bad).status_code == 400
    assert [log["keep"] for log in emu.get_logs("proj", "store")] == ["me"]


def test_large_valid_body_near_the_limit(emu: SlsEmulator, track) -> None:
    logs = [{"v": "x" * 700} for _ in range(4096)]  # ~3.0 MB raw, 4096 logs: both limits just met
    assert track(logs, compress_type="lz4").status_code == 200
    assert emu.count("proj", "store") == 4096
