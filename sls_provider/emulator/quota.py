"""Write quotas: shards with token buckets on compressed bytes and on writes, and a project quota.

SLS gives each shard about 5 MB/s and 500 writes/s, and spreads the writes of a logstore in
load-balanced mode over its shards. Here each logstore with a quota hands its writes to its shards
in turn (round robin); a shard whose bucket is empty refuses the write (403
``ShardWriteQuotaExceed``), a project over its own quota refuses it first (403
``WriteQuotaExceed``). Buckets hold one second of burst. A refused write costs nothing and stores
nothing. ``soft`` models the service's best effort: that fraction of over-quota writes is accepted
anyway (the shard goes into debt, at most one second's worth, so sustained overload stays bounded).

Pure accounting with an injected clock, so it is tested on its own.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sls_provider.emulator.errors import EmulatorError, ErrorCode
from sls_provider.emulator.protocol import MB

#: SLS's per-shard write quota (MB is 1024 * 1024 bytes here, as in the service's limits).
SHARD_MB_PER_SECOND = 5.0
SHARD_WRITES_PER_SECOND = 500.0


@dataclass(frozen=True)
class WriteQuota:
    """A write quota: compressed MB/s and writes/s (per shard, or for a whole project).

    :param mb_per_second: compressed body MB/s (fractions allowed, for fast tests).
    :param writes_per_second: write requests per second.
    :param soft: fraction (0 to 1) of over-quota writes accepted anyway (best effort).
    """

    mb_per_second: float = SHARD_MB_PER_SECOND
    writes_per_second: float = SHARD_WRITES_PER_SECOND
    soft: float = 0.0

    def __post_init__(self) -> None:
        if not self.mb_per_second > 0 or not self.writes_per_second > 0:
            raise ValueError("quota mb_per_second and writes_per_second must be positive")
        if not 0.0 <= self.soft <= 1.0:
            raise ValueError(f"quota soft must be within [0, 1], got {self.soft}")


class _Bucket:
    """One second of burst; ``take`` spends or reports a shortfall."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = self.tokens = rate
        self.stamp = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.rate, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now

    def has(self, cost: float) -> bool:
        # A write larger than the whole burst is allowed on a full bucket (and leaves it in debt).
        return self.tokens >= min(cost, self.rate) * (1 - 1e-9)

    def spend(self, cost: float) -> None:
        self.tokens = max(-self.rate, self.tokens - cost)


@dataclass
class ShardCounters:
    """What one shard (or a project's quota) accepted and refused."""

    accepted: int = 0
    refused: int = 0
    accepted_bytes: int = 0
    refused_bytes: int = 0
    soft_accepted: int = 0  # over quota, accepted anyway (soft mode)


class _Limit:
    """A bytes bucket and a writes bucket, with counters."""

    def __init__(self, quota: WriteQuota, now: float) -> None:
        self.quota = quota
        self.bytes = _Bucket(quota.mb_per_second * MB, now)
        self.writes = _Bucket(quota.writes_per_second, now)
        self.counters = ShardCounters()

    def over(self, nbytes: int, now: float) -> bool:
        self.bytes.refill(now)
        self.writes.refill(now)
        return not (self.bytes.has(nbytes) and self.writes.has(1))

    def accept(self, nbytes: int, *, soft: bool = False) -> None:
        self.bytes.spend(nbytes)
        self.writes.spend(1)
        self.counters.accepted += 1
        self.counters.accepted_bytes += nbytes
        self.counters.soft_accepted += soft

    def refuse(self, nbytes: int) -> None:
        self.counters.refused += 1
        self.counters.refused_bytes += nbytes


def _refusal(kind: str, quota: WriteQuota, name: str) -> EmulatorError:
    if kind == "project":
        return EmulatorError(
            403,
            ErrorCode.WRITE_QUOTA_EXCEED,
            f"Project write quota exceed: inflow {quota.mb_per_second:g} MB/s, "
            f"writes {quota.writes_per_second:g}/s, project: {name}",
        )
    return EmulatorError(
        403,
        ErrorCode.SHARD_WRITE_QUOTA_EXCEED,
        f"Shard write quota exceed: {quota.mb_per_second:g} MB/s, {quota.writes_per_second:g} "
        f"writes/s per shard, {name}",
    )


@dataclass
class _Logstore:
    shards: list[_Limit]
    next: int = 0


@dataclass
class QuotaBook:
    """Every quota of an emulator; ``admit`` is called once per valid write, before storing it.

    :param clock: seconds, monotonic (injected by tests).
    :param seed: seeds the soft mode's choices, so runs repeat.
    """

    clock: Callable[[], float] = time.monotonic
    seed: int = 0
    _logstores: dict[tuple[str, str], _Logstore] = field(default_factory=dict)
    _projects: dict[str, _Limit] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def set_logstore(self, project: str, logstore: str, shards: int, quota: WriteQuota | None) -> None:
        """Give a logstore ``shards`` shards, each with ``quota`` (``None``: no quota, the default)."""
        if not isinstance(shards, int) or shards < 1:
            raise ValueError(f"shards must be a positive integer, got {shards!r}")
        with self._lock:
            if quota is None:
                self._logstores.pop((project, logstore), None)
                return
            now = self.clock()
            self._logstores[(project, logstore)] = _Logstore([_Limit(quota, now) for _ in range(shards)])

    def set_project(self, project: str, quota: WriteQuota | None) -> None:
        """A quota over all the logstores of ``project`` (``None`` removes it)."""
        with self._lock:
            if quota is None:
                self._projects.pop(project, None)
            else:
                self._projects[project] = _Limit(quota, self.clock())

    def shard_count(self, project: str, logstore: str) -> int | None:
        with self._lock:
            store = self._logstores.get((project, logstore))
            return len(store.shards) if store else None

    def admit(self, project: str, logstore: str, nbytes: int) -> None:
        """Account for one write of ``nbytes`` compressed bytes, or raise the service's 403."""
        with self._lock:
            now = self.clock()
            limits: list[tuple[str, str, _Limit]] = []
            if (limit := self._projects.get(project)) is not None:
                limits.append(("project", project, limit))
            store = self._logstores.get((project, logstore))
            if store is not None:
                shard = store.next % len(store.shards)
                store.next += 1  # round robin: the next write goes to the next shard, refused or not
                limits.append(("shard", f"logstore: {logstore}, shard: {shard}", store.shards[shard]))
            soft = False
            for kind, name, limit in limits:
                if limit.over(nbytes, now):
                    if limit.quota.soft and self._rng.random() < limit.quota.soft:
                        soft = True
                        continue
                    limit.refuse(nbytes)
                    raise _refusal(kind, limit.quota, name)
            for _, _, limit in limits:
                limit.accept(nbytes, soft=soft)

    def counters(self, project: str, logstore: str) -> list[ShardCounters]:
        """Per shard, in shard order (empty if the logstore has no quota). Copies."""
        with self._lock:
            store = self._logstores.get((project, logstore))
            return [ShardCounters(**vars(s.counters)) for s in store.shards] if store else []

    def project_counters(self, project: str) -> ShardCounters | None:
        with self._lock:
            limit = self._projects.get(project)
            return ShardCounters(**vars(limit.counters)) if limit else None

    def snapshot(self) -> dict[str, object]:
        """Every quota and its counters, as the admin endpoint returns them."""
        with self._lock:
            return {
                "logstores": [
                    {
                        "project": p,
                        "logstore": s,
                        "shards": [
                            {"shard": i, **vars(limit.counters)} for i, limit in enumerate(store.shards)
                        ],
                        "quota": vars(store.shards[0].quota),
                    }
                    for (p, s), store in sorted(self._logstores.items())
                ],
                "projects": [
                    {"project": p, "quota": vars(limit.quota), **vars(limit.counters)}
                    for p, limit in sorted(self._projects.items())
                ],
            }

    def reset_counters(self) -> None:
        with self._lock:
            for store in self._logstores.values():
                for limit in store.shards:
                    limit.counters = ShardCounters()
            for limit in self._projects.values():
                limit.counters = ShardCounters()
