"""SQLite store (``db_path``): logstores and logs survive restarts.

One row per accepted request holding its validated, uncompressed JSON body: a single INSERT
per request is what lets the emulator ingest well over 100,000 logs/s. Logs are parsed again
only when read. WAL + ``synchronous=NORMAL``: durable across process restarts, fast to commit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from functools import partial

from sls_provider.emulator.model import Batch, LogstoreInfo
from sls_provider.emulator.store import CountKey

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logstores (
    project TEXT NOT NULL, logstore TEXT NOT NULL, web_tracking INTEGER NOT NULL,
    create_time INTEGER NOT NULL, modify_time INTEGER NOT NULL, PRIMARY KEY (project, logstore));
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, logstore TEXT NOT NULL,
    topic TEXT NOT NULL, source TEXT NOT NULL, tags TEXT NOT NULL, time INTEGER NOT NULL,
    count INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS batches_by_store ON batches (project, logstore, seq);
"""


class SqliteStore:
    """One connection shared by all handler threads, guarded by one lock (SQLite has one writer)."""

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @staticmethod
    def _info(row: tuple[str, str, int, int, int]) -> LogstoreInfo:
        return LogstoreInfo(row[0], row[1], bool(row[2]), row[3], row[4])

    def put_logstore(self, project: str, logstore: str, web_tracking: bool) -> LogstoreInfo:
        now = int(time.time())
        with self._lock:
            self._db.execute(
                "INSERT INTO logstores VALUES (?, ?, ?, ?, ?) ON CONFLICT (project, logstore) DO UPDATE"
                " SET web_tracking = excluded.web_tracking, modify_time = excluded.modify_time"
                " WHERE web_tracking != excluded.web_tracking",
                (project, logstore, int(web_tracking), now, now),
            )
        info = self.logstore(project, logstore)
        assert info is not None
        return info

    def logstore(self, project: str, logstore: str) -> LogstoreInfo | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM logstores WHERE project = ? AND logstore = ?", (project, logstore)
            ).fetchone()
        return None if row is None else self._info(row)

    def logstores(self, project: str | None = None) -> list[LogstoreInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM logstores WHERE ? IS NULL OR project = ? ORDER BY project, logstore",
                (project, project),
            ).fetchall()
        return [self._info(r) for r in rows]

    def has_project(self, project: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM logstores WHERE project = ?", (project,)).fetchone()
                is not None
            )

    def append(self, project: str, logstore: str, batch: Batch, body: bytes = b"") -> None:
        """Store ``body`` (the validated JSON); ``batch.load`` is not called, nothing is re-encoded."""
        with self._lock:
            self._db.execute(
                "INSERT INTO batches (project, logstore, topic, source, tags, time, count, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    project,
                    logstore,
                    batch.topic,
                    batch.source,
                    json.dumps(batch.tags),
                    batch.time,
                    batch.count,
                    body,
                ),
            )

    def _load(self, seq: int) -> list[dict[str, str]]:
        with self._lock:
            (body,) = self._db.execute("SELECT body FROM batches WHERE seq = ?", (seq,)).fetchone()
        logs: list[dict[str, str]] = json.loads(body)["__logs__"]
        return logs

    def batches(self, project: str, logstore: str, topic: str | None = None) -> list[Batch]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, source, tags, time, count FROM batches"
                " WHERE project = ? AND logstore = ? AND (? IS NULL OR topic = ?) ORDER BY seq",
                (project, logstore, topic, topic),
            ).fetchall()
        return [
            Batch(t, s, json.loads(tags), when, n, partial(self._load, seq))
            for seq, t, s, tags, when, n in rows
        ]

    def counts(self) -> dict[CountKey, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT project, logstore, topic, SUM(count) FROM batches GROUP BY project, logstore, topic"
            ).fetchall()
        return {(p, s, t): n for p, s, t, n in rows if n}

    def clear_logs(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM batches")

    def close(self) -> None:
        with self._lock:
            self._db.close()
