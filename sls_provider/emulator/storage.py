"""Where logs live: what a store keeps, the ``Store`` interface, the in-memory store (the
default) and the SQLite store (``db_path``: logstores and logs survive restarts).

Every method is thread-safe; one lock serialises writers so arrival order is storage order. A
batch (the logs of one accepted request) shares topic, source, tags and arrival time across its
logs, so storing it once per request rather than once per log is what makes ingest fast.

The SQLite store keeps one row per accepted request holding its validated, uncompressed JSON
body: a single INSERT per request is what lets the emulator ingest well over 100,000 logs/s. Logs
are parsed again only when read. WAL + ``synchronous=NORMAL``: durable across process restarts,
fast to commit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

CountKey = tuple[str, str, str]  # (project, logstore, topic)


@dataclass
class LogstoreInfo:
    """A logstore as GetLogStore describes it (the fields the official SDKs read)."""

    project: str
    logstore: str
    web_tracking: bool
    create_time: int
    modify_time: int
    ttl: int = 30
    shard_count: int = 2

    def describe(self) -> dict[str, object]:
        return {
            "logstoreName": self.logstore,
            "ttl": self.ttl,
            "shardCount": self.shard_count,
            "enable_tracking": self.web_tracking,
            "autoSplit": True,
            "maxSplitShard": 64,
            "appendMeta": True,
            "telemetryType": "",
            "mode": "standard",
            "hot_ttl": -1,
            "createTime": self.create_time,
            "lastModifyTime": self.modify_time,
        }


@dataclass
class Batch:
    """The logs of one accepted request. ``load`` fetches the logs lazily (SQLite keeps bodies)."""

    topic: str
    source: str
    tags: dict[str, str]  # user tags plus __receive_time__ and __client_ip__
    time: int
    count: int
    load: Callable[[], list[dict[str, str]]] = field(repr=False)


class Store(Protocol):
    """What the emulator needs from a storage back end."""

    def put_logstore(self, project: str, logstore: str, web_tracking: bool) -> LogstoreInfo: ...
    def logstore(self, project: str, logstore: str) -> LogstoreInfo | None: ...
    def logstores(self, project: str | None = None) -> list[LogstoreInfo]: ...
    def has_project(self, project: str) -> bool: ...
    def append(self, project: str, logstore: str, batch: Batch, body: bytes) -> None: ...
    def batches(self, project: str, logstore: str, topic: str | None = None) -> list[Batch]: ...
    def counts(self) -> dict[CountKey, int]: ...
    def clear_logs(self) -> None: ...
    def close(self) -> None: ...


class MemoryStore:
    """Plain lists under a lock; batches keep the parsed logs, nothing is re-serialised."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logstores: dict[tuple[str, str], LogstoreInfo] = {}
        self._batches: dict[tuple[str, str], list[Batch]] = defaultdict(list)
        self._counts: dict[CountKey, int] = defaultdict(int)

    def put_logstore(self, project: str, logstore: str, web_tracking: bool) -> LogstoreInfo:
        now = int(time.time())
        with self._lock:
            info = self._logstores.get((project, logstore))
            if info is None:
                info = LogstoreInfo(project, logstore, web_tracking, now, now)
                self._logstores[(project, logstore)] = info
            elif info.web_tracking != web_tracking:
                info.web_tracking, info.modify_time = web_tracking, now
            return info

    def logstore(self, project: str, logstore: str) -> LogstoreInfo | None:
        with self._lock:
            return self._logstores.get((project, logstore))

    def logstores(self, project: str | None = None) -> list[LogstoreInfo]:
        with self._lock:
            return [i for i in self._logstores.values() if project is None or i.project == project]

    def has_project(self, project: str) -> bool:
        with self._lock:
            return any(p == project for p, _ in self._logstores)

    def append(self, project: str, logstore: str, batch: Batch, body: bytes = b"") -> None:
        """Keep the parsed logs (``batch.load``); ``body`` is only needed by stores that persist."""
        with self._lock:
            self._batches[(project, logstore)].append(batch)
            self._counts[(project, logstore, batch.topic)] += batch.count

    def batches(self, project: str, logstore: str, topic: str | None = None) -> list[Batch]:
        with self._lock:
            found = list(self._batches.get((project, logstore), ()))
        return found if topic is None else [b for b in found if b.topic == topic]

    def counts(self) -> dict[CountKey, int]:
        with self._lock:
            return {key: n for key, n in self._counts.items() if n}

    def clear_logs(self) -> None:
        with self._lock:
            self._batches.clear()
            self._counts.clear()

    def close(self) -> None:
        """Nothing to release."""


# -- SQLite -----------------------------------------------------------------------------------
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
