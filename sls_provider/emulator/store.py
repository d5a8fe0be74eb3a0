"""Where logs live: the ``Store`` interface and the in-memory store (the default).

Every method is thread-safe; one lock serialises writers so arrival order is storage order.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Protocol

from sls_provider.emulator.model import Batch, LogstoreInfo

CountKey = tuple[str, str, str]  # (project, logstore, topic)


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
