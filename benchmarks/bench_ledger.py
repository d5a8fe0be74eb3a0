"""Write cost of the resume ledger: largest single write and bytes written, by export size.

    .venv/bin/python benchmarks/bench_ledger.py [--requests 30000 100000] [--in-flight 8]

Drives :class:`sls_provider.core.ledger.Ledger` as the exporter does, with synthetic requests and a
store that records every write (JSON size, as Airflow measures it against
``[state_store] max_value_storage_bytes``): each request is announced with ``sending()`` before it
goes out, ``--in-flight`` requests (``2 * max_workers``) are on the wire at once, they complete in a
random order (fixed seed), and each completion is followed by ``record()`` and ``flush()``, one batch
per completion, the most writes the exporter makes. Then a second try opens the ledger (reads) and
the export's end deletes it.

For comparison, the one-key layout of 0.1.0 (every acknowledged CRC in one value, rewritten after
each batch) is sized from the same acknowledgements, without storing it.

Prints a markdown table. Exits 1 if a write reaches 64 KB (Airflow's default limit) or the bytes
written per request grow with the export (more than 1.5 times those of the smallest size).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

from sls_provider.core.ledger import Ledger
from sls_provider.core.pack import Request

LIMIT = 64 * 1024


class RecordingStore:
    """A dict with the writes, reads and deletes counted, sizes as JSON."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.writes = self.written = self.largest = self.reads = self.deletes = 0

    def get(self, key: str) -> Any:
        self.reads += 1
        return json.loads(json.dumps(self.data[key])) if key in self.data else None

    def set(self, key: str, value: Any) -> None:
        size = len(json.dumps(value))
        self.writes += 1
        self.written += size
        self.largest = max(self.largest, size)
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.deletes += 1
        self.data.pop(key, None)


class OldLayoutSize:
    """Sizes of the 0.1.0 value, ``{"export_id", "fingerprint", "prefix", "beyond"}``, after each
    batch: the contiguous prefix of CRCs as one string, the rest by number."""

    def __init__(self, export_id: str, fingerprint: str) -> None:
        self.base = len(json.dumps({"export_id": export_id, "fingerprint": fingerprint, "prefix": ""}))
        self.prefix = 0
        self.beyond: dict[str, str] = {}
        self.written = self.largest = 0

    def record(self, seq: int) -> None:
        if seq == self.prefix:
            self.prefix += 1
            while str(self.prefix) in self.beyond:
                del self.beyond[str(self.prefix)]
                self.prefix += 1
        else:
            self.beyond[str(seq)] = "00000000"

    def flush(self) -> None:
        size = self.base + 8 * self.prefix + len(', "beyond": ') + len(json.dumps(self.beyond))
        self.written += size
        self.largest = max(self.largest, size)


def drive(n: int, in_flight: int, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    store = RecordingStore()
    export_id, fingerprint = "3f2a9c0e1b7d4a65", "0123456789abcdef"
    ledger = Ledger(export_id, fingerprint, store=store, key="sls_export_ledger")
    old = OldLayoutSize(export_id, fingerprint)
    ledger.flush()
    wire: list[Request] = []
    started = time.perf_counter()

    def complete_one() -> None:
        request = wire.pop(rng.randrange(len(wire)))
        ledger.record(request)
        ledger.flush()
        old.record(request.seq)
        old.flush()

    for seq in range(n):
        request = Request(seq=seq, topic="", body=b"%d:%d" % (seq, seed), logs=4096)
        ledger.sending(request)
        wire.append(request)
        while len(wire) >= in_flight:
            complete_one()
    while wire:
        complete_one()
    seconds = time.perf_counter() - started
    writes, written, largest = store.writes, store.written, store.largest
    keys = len(store.data)
    store.reads = 0
    resumed = Ledger(export_id, fingerprint, store=store, key="sls_export_ledger")
    assert len(resumed) == n, (len(resumed), n)
    reads = store.reads
    resumed.discard()
    assert not store.data, sorted(store.data)[:5]
    return {
        "requests": n,
        "writes": writes,
        "largest_write": largest,
        "bytes_written": written,
        "bytes_per_request": written / n,
        "keys": keys,
        "reads_on_resume": reads,
        "deletes_at_end": store.deletes,
        "seconds": seconds,
        "old_largest_write": old.largest,
        "old_bytes_written": old.written,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, nargs="+", default=[30_000, 100_000])
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args()
    rows = [drive(n, args.in_flight) for n in args.requests]
    print(f"Resume ledger writes, {args.in_flight} requests in flight, one flush per completion:\n")
    print(
        "| requests | writes | largest write | bytes written | per request | keys | reads on resume "
        "| 0.1.0 largest write | 0.1.0 bytes written |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['requests']:,} | {r['writes']:,} | {r['largest_write']:,} B | "
            f"{r['bytes_written'] / 1e6:,.1f} MB | {r['bytes_per_request']:,.0f} B | {r['keys']:,} | "
            f"{r['reads_on_resume']:,} | {r['old_largest_write'] / 1e3:,.0f} KB | "
            f"{r['old_bytes_written'] / 1e9:,.2f} GB |"
        )
    failed = [r["requests"] for r in rows if r["largest_write"] >= LIMIT]
    smallest = min(rows, key=lambda r: r["requests"])["bytes_per_request"]
    grown = [r["requests"] for r in rows if r["bytes_per_request"] > 1.5 * smallest]
    if failed or grown:
        print(f"\nFAILED: writes of 64 KB or more at {failed}; bytes per request grow at {grown}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
