"""``emu.requests``: a thread-safe, list-like record of every request the emulator handled."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, overload

Record = dict[str, Any]


class RequestLog:
    """Append-only under a lock; reads return snapshots so callers never see a half-updated list."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Record] = []

    def append(self, record: Record) -> None:
        with self._lock:
            self._items.append(record)

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self._items)

    def where(self, **match: Any) -> list[Record]:
        """Records whose fields equal ``match``, e.g. ``emu.requests.where(path=..., status=200)``."""
        return [r for r in self.snapshot() if all(r.get(k) == v for k, v in match.items())]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.snapshot())

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        with self._lock:
            return self._items[index]

    def __repr__(self) -> str:
        return f"RequestLog({len(self)} requests)"
