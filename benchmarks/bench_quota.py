"""Exports against a logstore whose write quota binds: 1 task, then 4 task processes at once.

    .venv/bin/python benchmarks/bench_quota.py [--rows 400000] [--task-rows 300000] [--shards 2]
                                               [--mb-per-shard 2.85] [--only single|many]

The emulator runs in its own process (``sls-emulator --shards 2 --shard-mb-per-second 2.85``): each
shard a token bucket of 2.85 MB/s of raw (uncompressed) bodies with one second of burst, as SLS
counts its quota, writes handed to the shards in turn, 403 ``ShardWriteQuotaExceed`` when the
shard's bucket is empty. 2.85 is how much lz4 shrinks these rows, so the runs take as long as they
did when the emulator counted 1 MB/s of compressed bodies (a real shard takes 5 MB/s raw with an
index: the quota is scaled down to make runs of a minute or two). Each task is its own process
running ``SlsWebTrackingHook.put_dataframe`` with the provider's defaults: nothing tells it the
quota. Rows are ``bench_peers.make_frame``'s shape (about 220 bytes a row as JSON).

Reported per scenario: goodput ÷ quota (raw bytes the shards accepted, over the quota's bytes for
the time from the first task's start to the last task's end), the fraction of writes refused, and
each task's time. Every row must be stored exactly once (requests are told apart by their
``sls_export``/``sls_seq`` tags). Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
MB = 1024 * 1024
PROJECT, LOGSTORE = "proj", "store"
TARGETS = {
    "single": {"goodput": 0.9, "refused": 0.10},
    "many": {"goodput": 0.85, "refused": 0.20, "fairness": 0.7},
}


def task(endpoint: str, rows: int, seed: int) -> None:
    """One task process: export ``rows`` rows, print its summary as JSON."""
    sys.path.insert(0, str(HERE))
    from bench_peers import make_frame

    os.environ["AIRFLOW_CONN_SLS_DEFAULT"] = json.dumps(
        {"conn_type": "sls", "host": endpoint, "extra": {"project": PROJECT, "logstore": LOGSTORE}}
    )
    from sls_provider.hooks.web_tracking import SlsWebTrackingHook

    frame = make_frame(rows, seed=seed)
    hook = SlsWebTrackingHook()
    print("ready", flush=True)
    sys.stdin.readline()  # every task starts at once
    started = time.time()  # wall clock: comparable between the task processes
    summary = hook.put_dataframe(frame, topic="bench")
    ended = time.time()
    print(json.dumps({"started": started, "ended": ended, "seconds": ended - started, **summary.to_dict()}))


def start_emulator(shards: int, mb: float) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "sls_provider.emulator.cli",
        "--port",
        "0",
        "--quiet",
        "--logstore",
        f"{PROJECT}/{LOGSTORE}",
        "--shards",
        str(shards),
        "--shard-mb-per-second",
        str(mb),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split()[4]


def scenario(name: str, tasks: int, rows: int, shards: int, mb: float) -> dict[str, Any]:
    emulator, endpoint = start_emulator(shards, mb)
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--task", endpoint, str(rows), str(20240501 + i)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(tasks)
        ]
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=1800)
            if proc.returncode:
                raise SystemExit(f"{name}: a task failed (exit {proc.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
        # From the first task's start to the last one's end (not counting process start and exit).
        span = max(r["ended"] for r in results) - min(r["started"] for r in results)
        quotas = requests.get(f"{endpoint}/_emulator/quotas", timeout=60).json()["logstores"][0]["shards"]
        records = requests.get(f"{endpoint}/_emulator/requests", timeout=300).json()
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    accepted = sum(s["accepted"] for s in quotas)
    refused = sum(s["refused"] for s in quotas)
    stored = Counter(
        (r["tags"].get("sls_export"), r["tags"].get("sls_seq")) for r in records if r["status"] == 200
    )
    logs = sum(r["logs"] for r in records if r["status"] == 200)
    times = [r["seconds"] for r in results]
    return {
        "scenario": name,
        "tasks": tasks,
        "rows": tasks * rows,
        "stored_rows": logs,
        "duplicate_requests": sum(n - 1 for n in stored.values()),
        "goodput": sum(s["accepted_raw_bytes"] for s in quotas) / (span * shards * mb * MB),
        "refused": refused / max(accepted + refused, 1),
        "fairness": min(times) / max(times),
        "times": times,
        "throttled": [r["throttled"] for r in results],
        "raw_mb_per_second": [r["raw_bytes"] / 1e6 / r["seconds"] for r in results],
        "sent_mb_per_second": [r["sent_bytes"] / 1e6 / r["seconds"] for r in results],
    }


def check(result: dict[str, Any]) -> list[str]:
    missed = []
    if result["stored_rows"] != result["rows"] or result["duplicate_requests"]:
        missed.append(f"{result['scenario']}: stored {result['stored_rows']:,} of {result['rows']:,} rows")
    target = TARGETS[result["scenario"]]
    if result["goodput"] < target["goodput"]:
        missed.append(f"{result['scenario']}: goodput {result['goodput']:.2f} < {target['goodput']}")
    if result["refused"] > target["refused"]:
        missed.append(f"{result['scenario']}: refused {result['refused']:.1%} > {target['refused']:.0%}")
    if "fairness" in target and result["fairness"] < target["fairness"]:
        missed.append(f"{result['scenario']}: fairness {result['fairness']:.2f} < {target['fairness']}")
    return missed


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--task":
        task(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=400_000, help="rows of the single task")
    parser.add_argument("--task-rows", type=int, default=300_000, help="rows of each of the 4 tasks")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument(
        "--mb-per-shard", type=float, default=2.85, help="raw MB/s (2^20 bytes) a shard takes"
    )
    parser.add_argument("--only", choices=("single", "many"))
    args = parser.parse_args()
    results = []
    if args.only in (None, "single"):
        results.append(scenario("single", 1, args.rows, args.shards, args.mb_per_shard))
    if args.only in (None, "many"):
        results.append(scenario("many", args.tasks, args.task_rows, args.shards, args.mb_per_shard))
    print(f"\nquota: {args.shards} shards x {args.mb_per_shard:g} MB/s (MB = 2^20 bytes, raw)\n")
    columns = ("scenario", "tasks x rows", "stored once", "goodput ÷ quota", "refused", "task times (s)")
    print("| " + " | ".join((*columns, "fastest ÷ slowest")) + " |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        once = "yes" if r["stored_rows"] == r["rows"] and not r["duplicate_requests"] else "NO"
        times = ", ".join(f"{t:.1f}" for t in r["times"])
        print(
            f"| {r['scenario']} | {r['tasks']} x {r['rows'] // r['tasks']:,} | {once} | {r['goodput']:.2f} "
            f"| {r['refused']:.1%} | {times} | {r['fairness']:.2f} |"
        )
    missed = [m for r in results for m in check(r)]
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
