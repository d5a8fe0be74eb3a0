"""A small SQLite ``web_events`` table for the partitioned DAG (``dags/example_sls_partitioned.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

EVENT_TYPES = ("page_view", "click", "purchase")


def build(path: Path, rows: int, *, first_id: int = 1, gap_every: int = 7) -> list[int]:
    """Create ``web_events`` with ``rows`` rows and return their ids. Every ``gap_every``-th id is
    skipped, so the keys are not dense (ranges must not assume they are)."""
    ids = []
    key = first_id
    while len(ids) < rows:
        if (key - first_id) % gap_every != gap_every - 1:
            ids.append(key)
        key += 1
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE web_events (id INTEGER PRIMARY KEY, event_type TEXT, user_id INTEGER, "
            "page TEXT, revenue NUMERIC)"
        )
        db.executemany(
            "INSERT INTO web_events VALUES (?, ?, ?, ?, ?)",
            [
                (i, EVENT_TYPES[i % 3], i % 97, f"/p/{i % 13}", round(i * 0.25, 2) if i % 3 == 2 else None)
                for i in ids
            ],
        )
    db.close()
    return ids
