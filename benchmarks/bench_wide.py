"""Encoding wide frames with and without missing values: the time must grow with the number of cells,
whatever the null pattern (a rescan of the chunk per column holding a null made it quadratic).

    .venv/bin/python benchmarks/bench_wide.py [--rounds 1] [--only 20000x200-nulls ...]

Each shape is ``rows x columns`` of float64 from a fixed seed, without NaN and with a fraction of the
cells NaN at random; ``encode_frame`` is timed on it (best of ``--rounds``) after a warm-up on a small
frame. Prints a markdown table (seconds, and nanoseconds per cell).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sls_provider.core.encode import encode_frame  # noqa: E402

# (name, rows, columns, fraction of cells NaN)
SHAPES = [
    ("20000x200", 20_000, 200, 0.0),
    ("20000x200-nulls", 20_000, 200, 0.1),
    ("20000x400", 20_000, 400, 0.0),
    ("20000x400-nulls", 20_000, 400, 0.1),
    ("300x10000", 300, 10_000, 0.0),
    ("300x10000-half-nan", 300, 10_000, 0.5),
]


def make_frame(rows: int, columns: int, nulls: float, seed: int = 20240501) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = np.round(rng.uniform(0, 1000, (rows, columns)), 3)
    values[rng.random((rows, columns)) < nulls] = np.nan
    return pd.DataFrame(values, columns=[f"c{i}" for i in range(columns)])


def time_encode(frame: pd.DataFrame, rounds: int) -> float:
    keys = list(frame.columns)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        encode_frame(frame, keys)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="shape names to run (default: all)")
    args = parser.parse_args()
    encode_frame(make_frame(100, 50, 0.1), [f"c{i}" for i in range(50)])  # warm-up
    print("| shape | cells | NaN | seconds | ns/cell |")
    print("|---|---:|---:|---:|---:|")
    for name, rows, columns, nulls in SHAPES:
        if args.only and name not in args.only:
            continue
        frame = make_frame(rows, columns, nulls)
        seconds = time_encode(frame, args.rounds)
        cells = rows * columns
        per_cell = seconds / cells * 1e9
        print(f"| {name} | {cells:,} | {nulls:.0%} | {seconds:.2f} | {per_cell:.0f} |", flush=True)


if __name__ == "__main__":
    main()
