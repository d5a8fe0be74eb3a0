"""Profile ``SlsWebTrackingHook.put_dataframe`` on the data of bench_peers.py (not run by `make bench`).

    .venv/bin/python benchmarks/profile_provider.py                 # pyinstrument, calling thread
    .venv/bin/py-spy record --format raw -o /tmp/provider.txt --threads --gil \\
        -- .venv/bin/python benchmarks/profile_provider.py --plain   # py-spy, every thread
    .venv/bin/python benchmarks/profile_provider.py --collapsed /tmp/provider.txt   # summarise it

Starts the benchmark sink, generates the 500,000 rows, warms up, then runs ``put_dataframe``
``--repeat`` times (lz4, default chunk size and workers). ``--plain`` runs without a profiler (for
py-spy); ``--collapsed FILE`` prints the top functions of a py-spy raw (collapsed stacks) file by
self and by total samples, per thread kind (the calling thread vs the ``sls-send`` workers).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _measure as m  # noqa: E402
import bench_peers  # noqa: E402


def run(repeat: int, rows: int, profiler: str) -> None:
    with m.Sink() as sink:
        hook = bench_peers.provider_hook(sink.port)
        df = bench_peers.make_frame(rows)
        hook.put_dataframe(df.iloc[:2000], topic="bench", source="bench-host")

        def body() -> None:
            for _ in range(repeat):
                started = time.perf_counter()
                hook.put_dataframe(df, topic="bench", source="bench-host")
                print(f"{rows / (time.perf_counter() - started):,.0f} rows/s", file=sys.stderr)

        if profiler == "pyinstrument":
            from pyinstrument import Profiler

            prof = Profiler(interval=0.0005)
            prof.start()
            body()
            prof.stop()
            print(prof.output_text(unicode=False, color=False, show_all=False))
        else:
            body()


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; keep function + file name.
    name, _, where = frame.partition(" (")
    file = where.rsplit("/", 1)[-1].split(":")[0] if where else ""
    return f"{name} ({file})" if file else name


def summarise(path: Path, top: int) -> None:
    """Top functions of a py-spy collapsed-stacks file, by self and by total samples."""
    by_thread: dict[str, tuple[Counter[str], Counter[str], list[int]]] = {}
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0]
        if "sls-send" in thread:
            kind = "sls-send workers"
        elif "MainThread" in thread:
            if not any("put_dataframe" in f for f in frames):
                continue  # start-up, data generation, warm-up
            kind = "calling thread, inside put_dataframe"
        else:
            continue  # other threads (py-spy shows them unnamed): idle bookkeeping
        selfs, totals, total = by_thread.setdefault(kind, (Counter(), Counter(), [0]))
        total[0] += count
        names = [_frame_name(f) for f in frames[1:]]
        if names:
            selfs[names[-1]] += count
        for name in set(names):
            totals[name] += count
    for kind, (selfs, totals, total) in sorted(by_thread.items(), key=lambda kv: -kv[1][2][0]):
        print(f"\n## {kind}: {total[0]:,} samples")
        print("\nself:")
        for name, n in selfs.most_common(top):
            print(f"  {n / total[0]:6.1%}  {name}")
        print("\ntotal (inclusive):")
        for name, n in totals.most_common(top):
            print(f"  {n / total[0]:6.1%}  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--plain", action="store_true", help="no profiler (run under py-spy)")
    parser.add_argument("--collapsed", type=Path, help="summarise a py-spy --format raw file")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    if args.collapsed:
        summarise(args.collapsed, args.top)
        return 0
    run(args.repeat, args.rows, "none" if args.plain else "pyinstrument")
    return 0


if __name__ == "__main__":
    sys.exit(main())
