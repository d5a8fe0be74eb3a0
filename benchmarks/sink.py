"""A local HTTP sink for benchmarks: reads every request body, answers ``200`` at once, counts.

    .venv/bin/python benchmarks/sink.py [--port 0]

Prints ``PORT`` as its first line of stdout (flushed), then serves until SIGTERM or Ctrl-C.

It stands in for SLS so that a benchmark measures the client: one asyncio event loop with HTTP/1.1
keep-alive, many connections at once, no JSON parsing, no decompression, no storage on the request
path. Every POST (PutWebTracking ``/logstores/{logstore}/track``, PutLogs
``/logstores/{logstore}/shards/lb``, anything else) gets ``200`` with an empty body and an
``x-log-requestid`` header, which is what both official SDKs and this provider expect.

Control endpoints (GET, JSON answers), for the benchmark driver:

- ``/_sink/stats``: requests, body bytes, raw bytes (``x-log-bodyrawsize``) and a count per path,
  per ``Host`` and per ``x-log-compresstype`` since the last reset.
- ``/_sink/reset``: zero the counters; ``?keep=1`` also keeps the bodies of the following requests
  (in memory, as received) for ``/_sink/inspect``.
- ``/_sink/inspect``: for every kept PutWebTracking body: decompressed size and number of logs,
  in arrival order, plus each request's topic and tags. Decompression and JSON parsing happen here, after
  the timed run, never on the request path.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import zlib
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

import lz4.block

_ids = itertools.count(1)


class Stats:
    """Counters of the requests since the last reset (one event loop thread: no locks needed)."""

    def __init__(self) -> None:
        self.reset(keep=False)

    def reset(self, keep: bool) -> None:
        self.requests = 0
        self.body_bytes = 0
        self.raw_bytes = 0
        self.paths: Counter[str] = Counter()
        self.hosts: Counter[str] = Counter()
        self.compress: Counter[str] = Counter()
        self.keep = keep
        self.kept: list[tuple[str, str, int, bytes]] = []  # (path, compresstype, rawsize, body)
        self.sizes: list[tuple[int, int]] = []  # (body bytes, raw bytes) of every request

    def record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        kind = headers.get("x-log-compresstype", "none")
        try:
            raw = int(headers.get("x-log-bodyrawsize", len(body)))
        except ValueError:
            raw = len(body)
        self.requests += 1
        self.body_bytes += len(body)
        self.raw_bytes += raw
        self.paths[path] += 1
        self.hosts[headers.get("host", "")] += 1
        self.compress[kind] += 1
        self.sizes.append((len(body), raw))
        if self.keep:
            self.kept.append((path, kind, raw, body))

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "body_bytes": self.body_bytes,
            "raw_bytes": self.raw_bytes,
            "max_raw_bytes": max((raw for _, raw in self.sizes), default=0),
            "paths": dict(self.paths),
            "hosts": dict(self.hosts),
            "compress": dict(self.compress),
        }

    def inspect(self) -> dict[str, Any]:
        """Decompress and parse the kept PutWebTracking bodies (slow; call after the run)."""
        out = []
        for path, kind, raw, body in self.kept:
            if not path.endswith("/track"):
                out.append({"path": path, "raw_bytes": raw, "logs": None, "topic": None})
                continue
            if kind == "lz4":
                data = lz4.block.decompress(body, uncompressed_size=raw)
            elif kind == "deflate":
                data = zlib.decompress(body)
            else:
                data = body
            payload = json.loads(data)
            logs = payload.get("__logs__", [])
            out.append(
                {
                    "path": path,
                    "raw_bytes": len(data),
                    "logs": len(logs),
                    "topic": payload.get("__topic__", ""),
                    "tags": payload.get("__tags__", {}),
                    "envelope_bytes": len(data)
                    - sum(_compact_size(log) for log in logs)
                    - max(len(logs) - 1, 0),
                    "row_bytes": [_compact_size(log) for log in logs],
                }
            )
        return {"requests": out}


def _compact_size(log: dict[str, Any]) -> int:
    return len(json.dumps(log, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


STATS = Stats()


def _answer(status: str, body: bytes = b"", *, close: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        f"x-log-requestid: sink-{next(_ids):012d}\r\n"
        f"Server: sls-bench-sink\r\n"
        f"Content-Length: {len(body)}\r\n"
        + ("Content-Type: application/json\r\n" if body else "")
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    )
    return head.encode("latin-1") + body


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


def _control(path: str, query: str) -> bytes:
    params = parse_qs(query)
    if path == "/_sink/stats":
        return _answer("200 OK", json.dumps(STATS.summary()).encode())
    if path == "/_sink/reset":
        STATS.reset(keep=params.get("keep", ["0"])[0] == "1")
        return _answer("200 OK", b"{}")
    if path == "/_sink/inspect":
        return _answer("200 OK", json.dumps(STATS.inspect()).encode())
    return _answer("404 Not Found", b'{"errorCode":"NotFound","errorMessage":"no such sink endpoint"}')


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = (lines[0].split(" ", 2) + ["", ""])[:3]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await _read_body(reader, headers)
            parts = urlsplit(target)
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            if parts.path.startswith("/_sink/"):
                writer.write(_control(parts.path, parts.query))
            elif method == "POST":
                STATS.record(parts.path, headers, body)
                writer.write(_answer("200 OK", close=close))
            else:
                writer.write(_answer("200 OK", b"{}", close=close))
            await writer.drain()
            if close:
                return
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return
    finally:
        writer.close()


async def _main(host: str, port: int) -> None:
    server = await asyncio.start_server(_serve, host, port, limit=1 << 20, backlog=256)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark sink: reads bodies, answers 200.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed first)")
    args = parser.parse_args(argv)
    # SIGTERM keeps its default action (exit at once): nothing here needs cleaning up.
    try:
        asyncio.run(_main(args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
