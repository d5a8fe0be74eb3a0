"""Who waits for whom during ``put_dataframe``: a per-thread timeline (not run by `make bench`).

    .venv/bin/python benchmarks/timeline_provider.py [--rows 500000] [--runs 3] [--ms 5]

Runs ``SlsWebTrackingHook.put_dataframe`` on the data of bench_peers.py into the benchmark sink,
with the provider's steps wrapped to record when each starts and ends, on which thread:
``E`` encoding a chunk, ``P`` packing it, ``C`` compressing a request, ``H`` its HTTP exchange,
``w`` the calling thread waiting for a free send slot. Prints the last run as one line per thread
(``--ms`` milliseconds a character) and the wall time spent in each step, summed over threads.

A step that takes far longer here than alone (``benchmarks/profile_provider.py``) is waiting: for
the GIL, for a core, or for the sink. This view showed the encoder's many small polars calls each
waiting for the GIL while the sending threads ran Python, which one polars query per chunk fixed.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _measure as m  # noqa: E402
import bench_peers  # noqa: E402

Event = tuple[str, str, float, float]  # thread name, step letter, start, end


def instrument(events: list[Event]) -> None:
    """Wrap the provider's steps so each call appends an event (the wrappers stay for the process)."""
    import sls_provider.core.client as client
    import sls_provider.core.export as export
    import sls_provider.core.pack as pack
    import sls_provider.core.sender as sender

    def timed(owner: Any, name: str, letter: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                events.append((threading.current_thread().name, letter, started, time.perf_counter()))

        setattr(owner, name, wrapper)

    timed(export, "encode_frame", "E")
    timed(client, "compress", "C")
    timed(client.WebTrackingClient, "post_once", "H")
    timed(sender.Sender, "_collect", "w")
    add = pack.Packer.add

    def packed(self: Any, topic: str, rows: Any) -> Iterator[Any]:
        # Packing is a generator: time the cutting of the whole chunk, not the consumer's work.
        started = time.perf_counter()
        requests = list(add(self, topic, rows))
        events.append((threading.current_thread().name, "P", started, time.perf_counter()))
        return iter(requests)

    pack.Packer.add = packed  # type: ignore[method-assign]


def draw(events: list[Event], started: float, seconds: float, ms: float) -> str:
    width = int(seconds * 1000 / ms) + 1
    lines = [f"wall {seconds * 1000:.0f} ms, {ms:g} ms a character"]
    for thread in sorted({e[0] for e in events}):
        cells = [" "] * width
        for name, letter, begin, end in events:
            if name == thread:
                first, last = int((begin - started) * 1000 / ms), int((end - started) * 1000 / ms)
                for i in range(first, min(last, width - 1) + 1):
                    cells[i] = letter
        lines.append(f"{thread[:14]:14s} |{''.join(cells)}|")
    totals: dict[str, float] = {}
    for _, letter, begin, end in events:
        totals[letter] = totals.get(letter, 0.0) + end - begin
    lines.append(
        "wall ms in each step, all threads: " + ", ".join(f"{k} {v * 1000:.0f}" for k, v in totals.items())
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3, help="the last one is drawn")
    parser.add_argument("--ms", type=float, default=5.0)
    args = parser.parse_args(argv)
    events: list[Event] = []
    instrument(events)
    with m.Sink() as sink:
        hook = bench_peers.provider_hook(sink.port)
        df = bench_peers.make_frame(args.rows)
        hook.put_dataframe(df.iloc[:2000], topic="bench", source="bench-host")
        started, seconds = 0.0, 0.0
        for _ in range(args.runs):
            events.clear()
            gc.collect()
            started = time.perf_counter()
            hook.put_dataframe(df, topic="bench", source="bench-host")
            seconds = time.perf_counter() - started
        print(draw(events, started, seconds, args.ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
