"""Write quotas: shards with token buckets on raw (uncompressed) bytes and on writes, and a project
quota.

SLS's limits ("data read and write", https://help.aliyun.com/zh/sls/product-overview/data-read-and-write,
English: https://www.alibabacloud.com/help/doc-detail/92571.htm) count **raw** data, the body before
compression (what ``x-log-bodyrawsize`` declares), never the compressed bytes on the wire:

- a shard: 5 MB/s when its logstore has an index, 10 MB/s when it has none, and 500 writes/s; soft
  limits (the service degrades; refusals are 403 ``ShardWriteQuotaExceed``);
- a project: 100 GB/min (403 ``WriteQuotaExceed``, "Inflow Quota Exceed") and 600,000 writes/min
  (403 ``WriteQuotaExceed``, "Write QPS Exceed"); hard limits, raised by ticket.

SLS spreads the writes of a logstore in load-balanced mode over its shards. Here each logstore with
a quota hands its writes to its shards in turn (round robin); a shard whose bucket is empty refuses
the write, a project over its own quota refuses it first. Buckets hold one second of burst (the
project's per-minute limits are enforced as their per-second rate: stricter than a minute's window,
and what lets a test see a refusal without waiting a minute). A refused write costs nothing and
stores nothing. ``soft`` models the service's best effort: that fraction of over-quota writes is
accepted anyway (the shard goes into debt, at most one second's worth, so sustained overload stays
bounded).

Pure accounting with an injected clock, so it is tested on its own.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sls_provider.emulator.errors import EmulatorError, ErrorCode
from sls_provider.emulator.protocol import MB

#: A shard's raw MB/s (MB is 1024 * 1024 bytes here, as in the service's limits): with an index...
SHARD_MB_PER_SECOND = 5.0
#: ...and without one.
SHARD_MB_PER_SECOND_NO_INDEX = 10.0
SHARD_WRITES_PER_SECOND = 500.0
#: A project's 100 GB/min of raw data and 600,000 writes/min, per second.
PROJECT_MB_PER_SECOND = 100 * 1024 / 60
PROJECT_WRITES_PER_SECOND = 600_000 / 60


@dataclass(frozen=True)
class WriteQuota:
    """A write quota: raw MB/s and writes/s (per shard, or for a whole project).

    :param mb_per_second: raw (uncompressed) body MB/s, fractions allowed for fast tests; ``None``:
        SLS's (a shard: 5 with an index, 10 without; a project: 100 GB/min).
    :param writes_per_second: write requests per second; ``None``: SLS's (500 a shard, 600,000/min
        a project).
    :param soft: fraction (0 to 1) of over-quota writes accepted anyway (best effort).
    """

    mb_per_second: float | None = None
    writes_per_second: float | None = None
    soft: float = 0.0

    def __post_init__(self) -> None:
        for name in ("mb_per_second", "writes_per_second"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"quota {name} must be positive, got {value!r}")
        if not 0.0 <= self.soft <= 1.0:
            raise ValueError(f"quota soft must be within [0, 1], got {self.soft}")

    @classmethod
    def given(cls, spec: WriteQuota | bool | None) -> WriteQuota | None:
        """The quota a caller asked for: ``True`` for SLS's, ``None``/``False`` for none."""
        if spec is True:
            return cls()
        return spec or None

    def filled(self, *, mb_per_second: float, writes_per_second: float) -> WriteQuota:
        """This quota with SLS's figures where it names none."""
        return replace(
            self,
            mb_per_second=self.mb_per_second or mb_per_second,
            writes_per_second=self.writes_per_second or writes_per_second,
        )


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
    """What one shard (or a project's quota) accepted and refused: writes, raw bytes (what the
    quota counts) and body bytes (what crossed the wire, compressed or not)."""

    accepted: int = 0
    refused: int = 0
    accepted_raw_bytes: int = 0
    refused_raw_bytes: int = 0
    accepted_body_bytes: int = 0
    refused_body_bytes: int = 0
    soft_accepted: int = 0  # over quota, accepted anyway (soft mode)


class _Limit:
    """A raw-bytes bucket and a writes bucket, with counters. ``quota`` is filled (no ``None``)."""

    def __init__(self, quota: WriteQuota, now: float) -> None:
        self.quota = quota
        self.bytes = _Bucket((quota.mb_per_second or 0.0) * MB, now)
        self.writes = _Bucket(quota.writes_per_second or 0.0, now)
        self.counters = ShardCounters()

    def short(self, raw_bytes: int, now: float) -> str | None:
        """Which bucket cannot take the write: ``"inflow"`` (bytes), ``"qps"`` (writes) or None."""
        self.bytes.refill(now)
        self.writes.refill(now)
        if not self.bytes.has(raw_bytes):
            return "inflow"
        return None if self.writes.has(1) else "qps"

    def accept(self, raw_bytes: int, body_bytes: int, *, soft: bool = False) -> None:
        self.bytes.spend(raw_bytes)
        self.writes.spend(1)
        self.counters.accepted += 1
        self.counters.accepted_raw_bytes += raw_bytes
        self.counters.accepted_body_bytes += body_bytes
        self.counters.soft_accepted += soft

    def refuse(self, raw_bytes: int, body_bytes: int) -> None:
        self.counters.refused += 1
        self.counters.refused_raw_bytes += raw_bytes
        self.counters.refused_body_bytes += body_bytes


def _refusal(kind: str, short: str, quota: WriteQuota, name: str) -> EmulatorError:
    """The service's 403: the project's messages are the documented ones (the throttling page's
    ``Project write quota exceed: inflow|qps: ...`` and the limits page's words)."""
    mb, writes = quota.mb_per_second or 0.0, quota.writes_per_second or 0.0
    if kind == "project":
        if short == "inflow":
            detail = f"inflow: {mb:g} MB/s of raw data (Inflow Quota Exceed)"
        else:
            detail = f"qps: {writes:g} writes/s (Write QPS Exceed)"
        return EmulatorError(
            403, ErrorCode.WRITE_QUOTA_EXCEED, f"Project write quota exceed: {detail}, project: {name}"
        )
    return EmulatorError(
        403,
        ErrorCode.SHARD_WRITE_QUOTA_EXCEED,
        f"Shard write quota exceed: {short}: {mb:g} MB/s of raw data "
        f"and {writes:g} writes/s per shard, {name}",
    )


@dataclass
class _Logstore:
    shards: list[_Limit]
    index: bool
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

    def set_logstore(
        self, project: str, logstore: str, shards: int, quota: WriteQuota | None, *, index: bool = True
    ) -> None:
        """Give a logstore ``shards`` shards, each with ``quota`` (``None``: no quota, the default).

        :param index: whether the logstore has an index: a quota naming no MB/s gets 5 with one, 10
            without.
        """
        if not isinstance(shards, int) or shards < 1:
            raise ValueError(f"shards must be a positive integer, got {shards!r}")
        with self._lock:
            if quota is None:
                self._logstores.pop((project, logstore), None)
                return
            now = self.clock()
            mb = SHARD_MB_PER_SECOND if index else SHARD_MB_PER_SECOND_NO_INDEX
            filled = quota.filled(mb_per_second=mb, writes_per_second=SHARD_WRITES_PER_SECOND)
            self._logstores[(project, logstore)] = _Logstore(
                [_Limit(filled, now) for _ in range(shards)], index
            )

    def set_project(self, project: str, quota: WriteQuota | None) -> None:
        """A quota over all the logstores of ``project`` (``None`` removes it); what it leaves
        unnamed is SLS's (100 GB/min, 600,000 writes/min)."""
        with self._lock:
            if quota is None:
                self._projects.pop(project, None)
            else:
                filled = quota.filled(
                    mb_per_second=PROJECT_MB_PER_SECOND, writes_per_second=PROJECT_WRITES_PER_SECOND
                )
                self._projects[project] = _Limit(filled, self.clock())

    def shard_count(self, project: str, logstore: str) -> int | None:
        with self._lock:
            store = self._logstores.get((project, logstore))
            return len(store.shards) if store else None

    def admit(self, project: str, logstore: str, raw_bytes: int, *, body_bytes: int | None = None) -> None:
        """Account for one write of ``raw_bytes`` uncompressed bytes (what ``x-log-bodyrawsize``
        declares; ``body_bytes`` on the wire, the same if not given), or raise the service's 403."""
        body = raw_bytes if body_bytes is None else body_bytes
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
                if (short := limit.short(raw_bytes, now)) is not None:
                    if limit.quota.soft and self._rng.random() < limit.quota.soft:
                        soft = True
                        continue
                    limit.refuse(raw_bytes, body)
                    raise _refusal(kind, short, limit.quota, name)
            for _, _, limit in limits:
                limit.accept(raw_bytes, body, soft=soft)

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
        """Every quota (SLS's figures filled in) and its counters, as the admin endpoint returns them."""
        with self._lock:
            return {
                "logstores": [
                    {
                        "project": p,
                        "logstore": s,
                        "index": store.index,
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
