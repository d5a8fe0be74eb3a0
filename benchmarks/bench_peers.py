"""This provider against every other way to ship DataFrame rows to SLS, on the same data and sink.

    .venv/bin/python benchmarks/bench_peers.py [--rounds 5] [--rows 500000] [--peer-rows 100000]

Data: ``--rows`` rows of mixed types (a datetime, three ints, two floats, four short strings; about
220 bytes a row as JSON), generated from a fixed seed. Senders, all against one sink process
(``benchmarks/sink.py``) that reads each body and answers 200:

- ``provider``: ``SlsWebTrackingHook.put_dataframe`` (lz4, default chunk size and workers).
- ``put_webtracking``: the official generated SDK ``alibabacloud-sls20201230``, 4096 rows a call.
- ``put_logs``: ``aliyun-log-python-sdk`` ``LogClient.put_logs`` (protobuf + lz4), 4096 rows a call.
- ``script``: a careful script: ``to_dict("records")`` + ``json.dumps`` + lz4 + ``requests``.
- ``floor``: the one-core CPU floor: polars ``write_ndjson`` of the frame cast to strings + one lz4
  call; no HTTP, no packing, no per-request work.
- ``floor1``: the same floor with polars held to one thread (``POLARS_MAX_THREADS=1`` in its process):
  ``floor`` is "one-core" in its code, one NDJSON write and one lz4 call, but polars spreads the cast
  and the write over its own pool (about 1.4 cores busy here); this is what one core does with that
  work. Reported beside the target, which stays on ``floor``.
- ``floor2``: the two-core floor, the frontier: the same work on two threads, each on half the frame
  (polars and lz4 release the GIL, so this is what two cores can do at best).

Each (sender, round) runs in its own fresh subprocess, which generates the data, warms up on 2,000
rows, then is timed; the order of senders rotates every round. Peers that are slow send the first
``--peer-rows`` rows; every figure is a rate. Peak RSS is the subprocess's own high-water mark
(``VmHWM`` from ``/proc/self/status``, reset with ``/proc/self/clear_refs`` just before the timed
run), shown as the growth over the RSS it had then (the frame is already in memory) and as total.
CPU time (user + system of the sender's process, every thread) is reported beside wall time: on a
shared machine it moves less than wall time when other work competes for the two cores.

Prints markdown tables and writes ``benchmarks/results/peers.json``. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _measure as m  # noqa: E402

SENDERS = ("provider", "put_webtracking", "put_logs", "script", "floor", "floor1", "floor2")
SLOW = ("put_webtracking", "put_logs", "script")
BATCH = 4096
MAX_BYTES = 3 * 1024 * 1024
PROJECT, LOGSTORE, TOPIC, SOURCE = "proj", "store", "bench", "bench-host"
WARMUP_ROWS = 2_000
TARGETS = {"vs_put_webtracking": 20.0, "vs_floor": 1.25, "fill": 0.98}


# -- data ---------------------------------------------------------------------------------------------


def make_frame(rows: int, seed: int = 20240501) -> pd.DataFrame:
    """Mixed types as a warehouse extract has them: about 220 bytes a row as JSON, all values strings."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-05-01T00:00:00", "us")
    offsets = rng.integers(0, 30 * 86_400 * 1_000_000, rows)
    pick = lambda choices: np.asarray(choices, dtype=object)[rng.integers(0, len(choices), rows)]  # noqa: E731
    return pd.DataFrame(
        {
            "event_time": pd.Series(start + offsets.astype("timedelta64[us]")),
            "user_id": rng.integers(1_000_000, 10_000_000, rows),
            "order_id": rng.integers(10**11, 10**12, rows),
            "status": pick([200, 200, 200, 201, 304, 404, 500]).astype(np.int64),
            "amount": np.round(rng.uniform(0, 1000, rows), 2),
            "latency_ms": np.round(rng.gamma(2.0, 40.0, rows), 3),
            "country": pd.Series(pick(["CN", "SG", "DE", "US", "JP", "BR", "IN", "FR"]), dtype="str"),
            "device": pd.Series(pick(["mobile", "desktop", "tablet"]), dtype="str"),
            "action": pd.Series(pick(["view", "click", "add_to_cart", "checkout", "purchase"]), dtype="str"),
            "page": pd.Series(
                [f"/product/{n}" for n in rng.integers(1, 100_000, rows).tolist()], dtype="str"
            ),
        }
    )


def _text(value: Any) -> str:
    """What a careful per-row sender writes for one value (the string SLS stores)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float:
        return repr(value)
    if kind is pd.Timestamp:
        return value.isoformat()
    return str(value)


def row_logs(batch: pd.DataFrame) -> list[dict[str, str]]:
    """``to_dict("records")`` with every value as a string: the per-row path every peer takes."""
    return [{k: _text(v) for k, v in rec.items()} for rec in batch.to_dict("records")]


# -- senders (each runs in a child process) -----------------------------------------------------------


def _patch_dns() -> None:
    """Resolve ``*.sls.test`` to 127.0.0.1: the official SDKs connect to ``{project}.{endpoint}``."""
    real = socket.getaddrinfo

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and (host == "sls.test" or host.endswith(".sls.test")):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = fake


def provider_hook(port: int) -> Any:
    """``SlsWebTrackingHook`` on the ``sls_default`` connection, pointed at the sink (lz4)."""
    os.environ["AIRFLOW_CONN_SLS_DEFAULT"] = json.dumps(
        {
            "conn_type": "sls",
            "host": f"http://127.0.0.1:{port}",
            "extra": {"project": PROJECT, "logstore": LOGSTORE, "compress_type": "lz4"},
        }
    )
    from sls_provider.hooks.web_tracking import SlsWebTrackingHook

    return SlsWebTrackingHook()


def sender_provider(port: int) -> Callable[[pd.DataFrame], None]:
    hook = provider_hook(port)

    def send(df: pd.DataFrame) -> None:
        summary = hook.put_dataframe(df, topic=TOPIC, source=SOURCE)
        assert summary.rows == len(df), summary

    return send


def sender_put_webtracking(port: int) -> Callable[[pd.DataFrame], None]:
    _patch_dns()
    from alibabacloud_sls20201230 import models
    from alibabacloud_sls20201230.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    config = open_api_models.Config(
        endpoint=f"sls.test:{port}", protocol="http", access_key_id="ak", access_key_secret="sk"
    )
    client = Client(config)

    def send(df: pd.DataFrame) -> None:
        for start in range(0, len(df), BATCH):
            logs = row_logs(df.iloc[start : start + BATCH])
            request = models.PutWebtrackingRequest(logs=logs, topic=TOPIC, source=SOURCE)
            response = client.put_webtracking(PROJECT, LOGSTORE, request)
            assert response.status_code == 200, response

    return send


def sender_put_logs(port: int) -> Callable[[pd.DataFrame], None]:
    _patch_dns()
    from aliyun.log import LogClient, LogItem, PutLogsRequest

    client = LogClient(f"sls.test:{port}", "ak", "sk")

    def send(df: pd.DataFrame) -> None:
        for start in range(0, len(df), BATCH):
            now = int(time.time())
            logs = row_logs(df.iloc[start : start + BATCH])
            items = [LogItem(timestamp=now, contents=list(log.items())) for log in logs]
            request = PutLogsRequest(
                PROJECT, LOGSTORE, TOPIC, SOURCE, items, compress=True, compress_type="lz4"
            )
            client.put_logs(request)

    return send


def sender_script(port: int) -> Callable[[pd.DataFrame], None]:
    import lz4.block
    import requests

    session = requests.Session()
    url = f"http://127.0.0.1:{port}/logstores/{LOGSTORE}/track"
    host = f"{PROJECT}.127.0.0.1:{port}"

    def send(df: pd.DataFrame) -> None:
        for start in range(0, len(df), BATCH):
            logs = row_logs(df.iloc[start : start + BATCH])
            body = json.dumps(
                {"__topic__": TOPIC, "__source__": SOURCE, "__logs__": logs},
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            headers = {
                "Host": host,
                "x-log-apiversion": "0.6.0",
                "x-log-compresstype": "lz4",
                "x-log-bodyrawsize": str(len(body)),
                "Content-Type": "application/json",
            }
            payload = lz4.block.compress(body, store_size=False)
            resp = session.post(url, data=payload, headers=headers, timeout=60)
            resp.raise_for_status()

    return send


def sender_floor(port: int) -> Callable[[pd.DataFrame], None]:
    import lz4.block
    import polars as pl

    def send(df: pd.DataFrame) -> None:
        frame = pl.from_pandas(df).select(pl.all().cast(pl.String))
        buffer = io.BytesIO()
        frame.write_ndjson(buffer)
        lz4.block.compress(buffer.getvalue(), store_size=False)

    return send


def sender_floor1(port: int) -> Callable[[pd.DataFrame], None]:
    """``floor`` in a process whose polars pool has one thread (run_child sets POLARS_MAX_THREADS)."""
    import polars as pl

    assert pl.thread_pool_size() == 1, "floor1 runs with POLARS_MAX_THREADS=1"
    return sender_floor(port)


def sender_floor2(port: int) -> Callable[[pd.DataFrame], None]:
    from concurrent.futures import ThreadPoolExecutor

    one = sender_floor(port)
    pool = ThreadPoolExecutor(max_workers=2)

    def send(df: pd.DataFrame) -> None:
        half = len(df) // 2
        list(pool.map(one, [df.iloc[:half], df.iloc[half:]]))

    return send


def child(name: str, port: int, rows: int) -> dict[str, Any]:
    """One timed run of one sender in this (fresh) process; the result goes to stdout as JSON."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    send = globals()[f"sender_{name}"](port)
    df = make_frame(rows)
    send(df.iloc[:WARMUP_ROWS])
    m.sink_call(port, "reset?keep=1" if name == "provider" else "reset")
    gc.collect()
    hwm_reset = m.reset_peak()
    base = m.rss()
    cpu_before = m.cpu_seconds()
    started = time.perf_counter()
    send(df)
    seconds = time.perf_counter() - started
    cpu = m.cpu_seconds() - cpu_before
    peak = m.peak_rss()
    stats = m.sink_call(port, "stats")
    return {
        "sender": name,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "cpu_seconds": cpu,
        "rows_per_cpu_s": rows / cpu if cpu > 0 else float("nan"),
        "rss_base": base,
        "rss_peak": peak,
        "rss_growth": peak - base,
        "hwm_reset": hwm_reset,
        "requests": stats["requests"],
        "sent_bytes": stats["body_bytes"],
        "raw_bytes": stats["raw_bytes"],
        "max_raw_bytes": stats["max_raw_bytes"],
        "paths": stats["paths"],
    }


# -- the driver ---------------------------------------------------------------------------------------


def run_child(name: str, port: int, rows: int) -> dict[str, Any]:
    # polars reads its pool size once, when first imported: floor1's must be set before its process starts.
    env = dict(os.environ, POLARS_MAX_THREADS="1") if name == "floor1" else None
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, "--port", str(port), "--rows", str(rows)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{name} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def json_bytes_per_row(df: pd.DataFrame) -> float:
    """Average bytes of one row as compact JSON with string values (as the provider encodes it)."""
    from sls_provider.core.encode import encode_frame

    encoded = encode_frame(df, list(df.columns))
    return (len(encoded.data) - len(encoded)) / len(encoded)


def min_requests(row_bytes: list[int], budget: int, max_logs: int = BATCH) -> int:
    """Fewest requests in-order packing allows (greedy is optimal for in-order cutting)."""
    count, size, logs = 0, 0, 0
    for n in row_bytes:
        extra = n + (1 if logs else 0)
        if logs and (logs == max_logs or size + extra > budget):
            count, size, logs = count + 1, 0, 0
            extra = n
        size += extra
        logs += 1
    return count + (1 if logs else 0)


def fill_report(port: int) -> dict[str, Any]:
    """How full the provider's requests of its last round were, from the bodies the sink kept."""
    kept = m.sink_call(port, "inspect")["requests"]
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for req in kept:
        by_topic.setdefault(req["topic"], []).append(req)
    report: dict[str, Any] = {"topics": {}}
    worst = 1.0
    for topic, reqs in by_topic.items():
        # Concurrent sends arrive out of order: put them back in packing order by their sls_seq tag.
        reqs.sort(key=lambda r: int(r["tags"].get("sls_seq", 0)))
        fills = [max(r["logs"] / BATCH, r["raw_bytes"] / MAX_BYTES) for r in reqs]
        rows = [n for r in reqs for n in r["row_bytes"]]
        envelope = max(r["envelope_bytes"] for r in reqs)
        fewest = min_requests(rows, MAX_BYTES - envelope)
        full = fills[:-1]  # the last request of a topic holds what is left
        worst = min([worst, *full])
        report["topics"][topic] = {
            "requests": len(reqs),
            "min_requests": fewest,
            "logs": len(rows),
            "min_fill_but_last": min(full) if full else None,
            "median_fill": m.median(fills),
            "max_raw_bytes": max(r["raw_bytes"] for r in reqs),
            "envelope_bytes": envelope,
        }
    report["worst_fill"] = worst
    report["minimal"] = all(t["requests"] == t["min_requests"] for t in report["topics"].values())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--peer-rows", type=int, default=100_000, help="rows per round for the slow peers")
    parser.add_argument("--only", nargs="*", choices=SENDERS, default=list(SENDERS))
    parser.add_argument("--child", choices=SENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.port, args.rows)), flush=True)
        return 0

    frame = make_frame(args.rows)
    per_row = json_bytes_per_row(frame)
    del frame
    senders = list(args.only)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in senders}
    fill = None
    load_before = os.getloadavg()
    started = time.perf_counter()
    with m.Sink() as sink:
        for r in range(args.rounds):
            order = senders[r % len(senders) :] + senders[: r % len(senders)]
            for name in order:
                rows = min(args.peer_rows, args.rows) if name in SLOW else args.rows
                res = run_child(name, sink.port, rows)
                results[name].append(res)
                print(f"  round {r + 1} {name:16s} {res['rows_per_s']:>12,.0f} rows/s", file=sys.stderr)
                if name == "provider" and r == args.rounds - 1:
                    # The sink kept this run's bodies (the child reset it with keep=1): inspect them
                    # before the next child resets it.
                    fill = fill_report(sink.port)
    wall = time.perf_counter() - started

    summary = {}
    for name, runs in results.items():
        rate = m.median([x["rows_per_s"] for x in runs])
        summary[name] = {
            "rows_per_round": runs[0]["rows"],
            "rounds": len(runs),
            "rows_per_s": rate,
            "json_mb_per_s": rate * per_row / 1e6,
            "rows_per_cpu_s": m.median([x["rows_per_cpu_s"] for x in runs]),
            "rows_per_s_all": [round(x["rows_per_s"]) for x in runs],
            "rss_growth_mb": max(x["rss_growth"] for x in runs) / 1e6,
            "rss_peak_mb": max(x["rss_peak"] for x in runs) / 1e6,
            "requests": runs[0]["requests"],
            "sent_mb": runs[0]["sent_bytes"] / 1e6,
            "raw_mb": runs[0]["raw_bytes"] / 1e6,
            "max_raw_bytes": runs[0]["max_raw_bytes"],
        }
    ratios, cpu_ratios = {}, {}
    if "provider" in summary:
        for name in senders:
            if name != "provider":
                ratios[name] = summary["provider"]["rows_per_s"] / summary[name]["rows_per_s"]
                cpu_ratios[name] = summary["provider"]["rows_per_cpu_s"] / summary[name]["rows_per_cpu_s"]
    targets = {}
    if "put_webtracking" in ratios:
        ok = ratios["put_webtracking"] >= TARGETS["vs_put_webtracking"]
        targets[f"provider >= {TARGETS['vs_put_webtracking']:g}x put_webtracking"] = ok
    if "floor" in ratios:
        ok = ratios["floor"] >= TARGETS["vs_floor"]
        targets[f"provider >= {TARGETS['vs_floor']:g}x the one-core CPU floor"] = ok
    if fill is not None:
        targets["full requests >= 98% of the byte or count limit"] = fill["worst_fill"] >= TARGETS["fill"]
        targets["requests per topic = in-order minimum"] = fill["minimal"]

    labels = {
        "provider": "this provider, `put_dataframe` (lz4)",
        "put_webtracking": "`alibabacloud-sls20201230` `put_webtracking`, 4096/call",
        "put_logs": "`aliyun-log-python-sdk` `put_logs` (protobuf+lz4), 4096/call",
        "script": "script: `to_dict` + `json.dumps` + lz4 + `requests`",
        "floor": "one-core CPU floor: polars `write_ndjson` + one lz4 call",
        "floor1": "the floor with polars on one thread (`POLARS_MAX_THREADS=1`)",
        "floor2": "two-core floor: the same on 2 threads, half the frame each",
    }
    rows = []
    for name, s in summary.items():
        rows.append(
            [
                labels[name],
                f"{s['rows_per_round']:,} x {s['rounds']}",
                f"{s['rows_per_s']:,.0f}",
                f"{s['json_mb_per_s']:,.1f}",
                f"{s['rows_per_cpu_s']:,.0f}",
                f"{s['rss_growth_mb']:,.0f} / {s['rss_peak_mb']:,.0f}",
                f"{s['requests']:,}" if not name.startswith("floor") else "-",
                f"{s['sent_mb']:,.1f}" if not name.startswith("floor") else "-",
            ]
        )
    print()
    print(
        m.table(
            [
                "sender",
                "rows x rounds",
                "rows/s (median)",
                "MB/s of JSON",
                "rows per CPU-second",
                "peak RSS growth / total MB",
                "requests",
                "MB sent",
            ],
            rows,
        )
    )
    if ratios:
        print()
        print(
            m.table(
                ["provider ÷", "rows/s ratio", "rows per CPU-second ratio"],
                [[labels[n], f"{r:,.2f}x", f"{cpu_ratios[n]:,.2f}x"] for n, r in ratios.items()],
            )
        )
    if fill is not None:
        print()
        print(
            m.table(
                ["topic", "logs", "requests", "in-order minimum", "min fill (all but last)", "largest body"],
                [
                    [
                        t,
                        f"{v['logs']:,}",
                        str(v["requests"]),
                        str(v["min_requests"]),
                        f"{v['min_fill_but_last']:.2%}" if v["min_fill_but_last"] is not None else "-",
                        f"{v['max_raw_bytes']:,} B",
                    ]
                    for t, v in fill["topics"].items()
                ],
            )
        )
    print()
    print(m.table(["target", "result"], [[t, "PASS" if ok else "FAIL"] for t, ok in targets.items()]))
    load_after = os.getloadavg()
    print(
        f"\n{per_row:.0f} bytes of JSON a row; wall time {wall:,.0f} s; load average (1 min) "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    path = m.write_json(
        "peers.json",
        {
            "benchmark": "bench_peers",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": m.machine(),
            "versions": m.versions(
                "polars",
                "pandas",
                "lz4",
                "urllib3",
                "requests",
                "alibabacloud-sls20201230",
                "aliyun-log-python-sdk",
            ),
            "rows": args.rows,
            "peer_rows": args.peer_rows,
            "json_bytes_per_row": per_row,
            "loadavg_before_after": [load_before[0], load_after[0]],
            "rss_method": "VmHWM of the sender's own subprocess, reset via /proc/self/clear_refs before the "
            "timed run; growth = peak - RSS at that moment",
            "senders": summary,
            "runs": results,
            "ratios": ratios,
            "cpu_ratios": cpu_ratios,
            "fill": fill,
            "targets": targets,
        },
        default_run=m.is_default(parser, args),
    )
    print(f"results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
