"""Ingest throughput of the SLS emulator: lz4 bodies of 4096 logs x 9 fields, SQLite on disk.

    .venv/bin/python benchmarks/bench_emulator.py [--requests 120] [--threads 2] [--target 100000]

Prints logs/s and exits 1 when under ``--target``. The body is built and compressed once, so
the figure measures the emulator (transport, decompression, validation, storage), not a client.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import lz4.block
import requests

from sls_provider.emulator import SlsEmulator

LOGS_PER_REQUEST = 4096


def build_body() -> tuple[bytes, int]:
    """One realistic request: 9 string fields per log, lz4 block, no size prefix."""
    logs = [
        {
            "event_id": f"evt-{i:08d}",
            "user_id": str(100000 + i % 977),
            "event_time": f"2024-05-01T12:{i % 60:02d}:{i % 59:02d}Z",
            "action": ("click", "view", "buy")[i % 3],
            "amount": f"{(i * 37) % 10000 / 100:.2f}",
            "country": ("CN", "SG", "DE", "US")[i % 4],
            "device": "mobile" if i % 2 else "desktop",
            "session": f"s-{i // 16:06d}",
            "message": f"user did something interesting number {i}",
        }
        for i in range(LOGS_PER_REQUEST)
    ]
    raw = json.dumps({"__topic__": "bench", "__source__": "bench", "__logs__": logs}).encode()
    return lz4.block.compress(raw, store_size=False), len(raw)


def send(url: str, headers: dict[str, str], body: bytes, count: int, failures: list[str]) -> None:
    with requests.Session() as session:
        for _ in range(count):
            resp = session.post(url, data=body, headers=headers, timeout=60)
            if resp.status_code != 200:
                failures.append(f"{resp.status_code} {resp.text[:200]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=120, help="requests in total")
    parser.add_argument("--threads", type=int, default=2, help="client threads (keep-alive sessions)")
    parser.add_argument("--target", type=float, default=100_000, help="minimum logs/s")
    args = parser.parse_args(argv)
    body, raw_size = build_body()
    per_thread = max(1, args.requests // args.threads)
    total_logs = per_thread * args.threads * LOGS_PER_REQUEST
    with tempfile.TemporaryDirectory() as tmp, SlsEmulator(db_path=str(Path(tmp) / "bench.db")) as emu:
        emu.create_logstore("bench", "store")
        url = f"{emu.endpoint}/logstores/store/track"
        headers = {
            "Host": f"bench.127.0.0.1:{emu.port}",
            "x-log-apiversion": "0.6.0",
            "x-log-compresstype": "lz4",
            "x-log-bodyrawsize": str(raw_size),
        }
        failures: list[str] = []
        send(url, headers, body, 1, failures)  # warm up: connection, schema, page cache
        emu.clear()
        threads = [
            threading.Thread(target=send, args=(url, headers, body, per_thread, failures))
            for _ in range(args.threads)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        stored = emu.count("bench", "store")
        emu.close()
    rate = total_logs / elapsed
    print(
        f"{total_logs} logs in {elapsed:.2f}s = {rate:,.0f} logs/s "
        f"({args.threads} threads, {len(body)} B lz4 / {raw_size} B raw per request, SQLite on disk)"
    )
    if failures or stored != total_logs:
        print(
            f"FAILED: {len(failures)} errors, stored {stored} of {total_logs}: {failures[:3]}",
            file=sys.stderr,
        )
        return 1
    if rate < args.target:
        print(f"FAILED: under the target of {args.target:,.0f} logs/s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
