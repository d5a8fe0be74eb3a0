"""Profile ``SlsWebTrackingHook.put_dataframe`` on the data of bench_peers.py (not run by `make bench`).

    .venv/bin/python benchmarks/profile_provider.py                 # pyinstrument, calling thread
    .venv/bin/py-spy record --format raw -o /tmp/provider.txt --threads --gil \\
        -- .venv/bin/python benchmarks/profile_provider.py --plain   # py-spy, every thread
    .venv/bin/python benchmarks/profile_provider.py --collapsed /tmp/provider.txt   # summarise it
    .venv/bin/python benchmarks/profile_provider.py --thread-cpu    # CPU per kind of thread, no profiler

Starts the benchmark sink, generates the 500,000 rows, warms up, then runs ``put_dataframe``
``--repeat`` times (lz4, default chunk size and workers). ``--plain`` runs without a profiler (for
py-spy); ``--collapsed FILE`` prints the top functions of a py-spy raw (collapsed stacks) file by
self and by total samples, per thread kind (the calling thread vs the ``sls-send`` workers).
``--thread-cpu`` runs without a profiler and prints, per export, the CPU seconds of each kind of
thread (read with ``time.thread_time()`` as each thread ends; what is left of the process's CPU time
is polars' own pool), then what one request costs a sending thread: ``WebTrackingClient.send``
against lz4 alone and bare urllib3 on the same bodies. ``--steps`` runs the provider, ``floor`` and
``floor2`` alternately in one process (wall and process CPU, medians of ``--repeat``), then the process
CPU of each step of the provider's encoding and of the floor's, each alone on the same data (best of
5); run it with ``POLARS_MAX_THREADS=1`` to keep polars' work on one thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
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


def thread_cpu(repeat: int, rows: int) -> None:
    """CPU seconds per export by kind of thread, then the cost of one request on a sending thread."""
    spent: Counter[str] = Counter()
    lock = threading.Lock()
    run_thread = threading.Thread.run

    def timed_run(thread: threading.Thread) -> None:
        try:
            run_thread(thread)
        finally:
            with lock:  # "sls-send_3" -> "sls-send"
                spent[thread.name.rsplit("_", 1)[0]] += time.thread_time()

    threading.Thread.run = timed_run  # type: ignore[method-assign]
    with m.Sink() as sink:
        hook = bench_peers.provider_hook(sink.port)
        df = bench_peers.make_frame(rows)
        hook.put_dataframe(df.iloc[:2000], topic="bench", source="bench-host")
        spent.clear()
        process, main_thread, wall = time.process_time(), time.thread_time(), time.perf_counter()
        for _ in range(repeat):
            hook.put_dataframe(df, topic="bench", source="bench-host")
        wall, main_thread = time.perf_counter() - wall, time.thread_time() - main_thread
        process = time.process_time() - process
        time.sleep(0.5)  # the last export's threads end
        threading.Thread.run = run_thread  # type: ignore[method-assign]
        print(
            f"per export of {rows:,} rows: wall {wall / repeat:.3f} s, process CPU {process / repeat:.3f} s"
        )
        print(f"  {'calling thread':24s} {main_thread / repeat:.3f}")
        for name, seconds in spent.most_common():
            print(f"  {name:24s} {seconds / repeat:.3f}")
        other = process - main_thread - sum(spent.values())
        print(f"  {'polars pool (the rest)':24s} {other / repeat:.3f}")
        request_cost(hook, sink.port, df.iloc[:100_000])


def request_cost(hook: object, port: int, df: object) -> None:
    """Milliseconds of one thread per request: the client's send, lz4 alone, bare urllib3."""
    import lz4.block
    import urllib3

    from sls_provider.core.congestion import SendController
    from sls_provider.core.encode import encode_frame
    from sls_provider.core.pack import Packer

    packer = Packer(source="bench-host", export_id="0" * 16)
    encoded = encode_frame(df, list(df.columns))  # type: ignore[attr-defined]
    requests = [*packer.add("bench", encoded), *packer.finish()]
    client = hook.client  # type: ignore[attr-defined]
    pool = urllib3.PoolManager()
    url = f"http://127.0.0.1:{port}/logstores/{bench_peers.LOGSTORE}/track"
    bodies = [lz4.block.compress(r.body, store_size=False) for r in requests]

    def bare() -> None:
        for body, request in zip(bodies, requests, strict=True):
            headers = {"x-log-compresstype": "lz4", "x-log-bodyrawsize": str(len(request.body))}
            pool.request("POST", url, body=body, headers=headers)

    def client_send() -> None:
        controller = SendController(
            max_requests_per_second=None, max_bytes_per_second=None, stall_timeout=300
        )
        for request in requests:
            client.send(request, controller=controller)

    steps = {
        "WebTrackingClient.send": client_send,
        "lz4 alone": lambda: [lz4.block.compress(r.body, store_size=False) for r in requests],
        "bare urllib3": bare,
    }
    print(f"one request ({len(requests)} requests of {len(requests[0].body):,} bytes, medians of 5):")
    for name, step in steps.items():
        times = []
        for _ in range(5):
            started = time.thread_time()
            step()
            times.append((time.thread_time() - started) / len(requests))
        print(f"  {name:24s} {statistics.median(times) * 1000:.2f} ms")


def steps(repeat: int, rows: int) -> None:
    """Side by side in one process, then the CPU of each encoding step alone (see the docstring)."""
    import io

    import lz4.block
    import polars as pl

    from sls_provider.core import encode
    from sls_provider.hooks.web_tracking import DEFAULT_CHUNKSIZE

    def cpu_of(step: object, times: int = 5) -> float:
        best = float("inf")
        for _ in range(times):
            started = time.process_time()
            step()  # type: ignore[operator]
            best = min(best, time.process_time() - started)
        return best

    with m.Sink() as sink:
        senders = {
            name: getattr(bench_peers, f"sender_{name}")(sink.port)
            for name in ("provider", "floor", "floor2")
        }
        df = bench_peers.make_frame(rows)
        for send in senders.values():
            send(df.iloc[:2000])
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in senders}
        for _ in range(repeat):
            for name, send in senders.items():
                cpu, wall = time.process_time(), time.perf_counter()
                send(df)
                runs[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    print(f"side by side, {rows:,} rows, medians of {repeat}:")
    for name, results in runs.items():
        wall = statistics.median(r[0] for r in results)
        cpu = statistics.median(r[1] for r in results)
        print(f"  {name:10s} wall {wall:.3f} s  process CPU {cpu:.3f} s  ({cpu / wall:.2f} cores busy)")

    keys = list(df.columns)
    chunks = [df.iloc[i : i + DEFAULT_CHUNKSIZE] for i in range(0, rows, DEFAULT_CHUNKSIZE)]

    def plans() -> list:
        return [encode._texts([encode._plan(c.iloc[:, i], k) for i, k in enumerate(keys)]) for c in chunks]

    texts = plans()

    def ndjson_blocks() -> list[list[bytes]]:
        out = []
        for text in texts:
            blocks = encode._Blocks()
            text.write_ndjson(blocks)
            out.append(blocks.blocks)
        return out

    blocks = ndjson_blocks()
    joined = [bytearray().join(b) for b in blocks]

    def floor_text() -> pl.DataFrame:
        return pl.from_pandas(df).select(pl.all().cast(pl.String))

    def floor_ndjson() -> bytes:
        buffer = io.BytesIO()
        floor_text().write_ndjson(buffer)
        return buffer.getvalue()

    floor_bytes = floor_ndjson()
    costs = {
        "provider: spell the values (chunks)": plans,
        "provider: write NDJSON (chunks)": ndjson_blocks,
        "provider: join the blocks": lambda: [bytearray().join(b) for b in blocks],
        "provider: row ends, commas": lambda: [encode.from_ndjson(bytearray(j)) for j in joined],
        "  (of which the copy)": lambda: [bytearray(j) for j in joined],
        "provider: lz4 of every chunk": lambda: [lz4.block.compress(j, store_size=False) for j in joined],
        "floor: cast to strings": floor_text,
        "floor: cast + write NDJSON": floor_ndjson,
        "floor: lz4 of its NDJSON": lambda: lz4.block.compress(floor_bytes, store_size=False),
    }
    for i, key in enumerate(keys):
        column = [encode._plan(c.iloc[:, i], key) for c in chunks]
        costs[f"provider: {key} ({df[key].dtype}) spelled"] = lambda column=column: [
            encode._texts([p]) for p in column
        ]
        costs[f"floor: {key} cast"] = lambda key=key: pl.from_pandas(df[[key]]).select(
            pl.all().cast(pl.String)
        )
    print(f"process CPU of each step alone, best of 5 (polars pool: {pl.thread_pool_size()} threads):")
    for name, step in costs.items():
        print(f"  {name:45s} {cpu_of(step):.3f} s")


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
    parser.add_argument("--thread-cpu", action="store_true", help="CPU per kind of thread, no profiler")
    parser.add_argument(
        "--steps", action="store_true", help="side by side with the floors, then each step's CPU"
    )
    args = parser.parse_args(argv)
    if args.steps:
        steps(args.repeat, args.rows)
        return 0
    if args.thread_cpu:
        thread_cpu(args.repeat, args.rows)
        return 0
    if args.collapsed:
        summarise(args.collapsed, args.top)
        return 0
    run(args.repeat, args.rows, "none" if args.plain else "pyinstrument")
    return 0


if __name__ == "__main__":
    sys.exit(main())
