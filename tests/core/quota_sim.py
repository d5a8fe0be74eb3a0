"""An event simulation of exports sharing a write quota, on a fake clock: each export's sending
threads ask its :class:`SendController` for a start, the request reaches the emulator's
:class:`QuotaBook` after a network delay, and the answer comes back after another.

Used by the controller's tests, and to tune its constants (``python -m tests.core.quota_sim``
prints how often the benchmark's targets are met over many seeds).
"""

from __future__ import annotations

import heapq
import random
import statistics
from dataclasses import dataclass

from sls_provider.core.congestion import SendController
from sls_provider.emulator.errors import EmulatorError
from sls_provider.emulator.quota import QuotaBook, WriteQuota

MB = 1024 * 1024
#: raw (uncompressed) bytes of one request of the benchmark's shape (4096 rows of
#: ``bench_peers.make_frame``, about 907 kB; 319 kB with lz4): what the quota and the controller count
REQUEST = 907_000
#: raw MB/s of a shard in ``bench_quota.py``: its rows shrink 2.85x with lz4, so this is the 1 MB/s of
#: compressed bodies it had when the emulator counted those (same request-to-quota ratio, same runs)
SHARD_MB = 2.85


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Export:
    """One export: its controller, the sizes of its requests still to send, what happened."""

    controller: SendController
    todo: list[int]
    acked: int = 0
    refused: int = 0
    sent: int = 0
    finished: float | None = None
    started: float = 0.0
    pending: int = 0  # taken from todo, not yet acknowledged


@dataclass
class Outcome:
    exports: list[Export]
    span: float
    capacity: float  # quota bytes over the span

    @property
    def goodput(self) -> float:
        return sum(e.acked for e in self.exports) / self.capacity

    @property
    def refused(self) -> float:
        return sum(e.refused for e in self.exports) / max(sum(e.sent for e in self.exports), 1)

    @property
    def fairness(self) -> float:
        times = [(e.finished or self.span) - e.started for e in self.exports]
        return min(times) / max(times)


def simulate(
    clock: Clock,
    quotas: QuotaBook,
    exports: list[Export],
    *,
    workers: int = 4,
    delay: tuple[float, float] = (0.005, 0.03),
    seconds: float = 3600.0,
    seed: int = 0,
    stagger: float = 0.0,
) -> None:
    """Run ``exports`` (``workers`` threads each) until all are done or ``seconds`` pass."""
    rng = random.Random(seed)
    # (when, order, kind, export, size, when the request was let through)
    events: list[tuple[float, int, str, int, int, float]] = []
    order = 0

    def push(when: float, kind: str, index: int, size: int = 0, sent: float = 0.0) -> None:
        nonlocal order
        heapq.heappush(events, (when, order, kind, index, size, sent))
        order += 1

    begin = clock.now
    for i, export in enumerate(exports):
        export.started = begin + i * stagger
        for _ in range(workers):
            push(export.started + rng.uniform(0, 0.01), "ready", i)
    while events:
        when, _, kind, i, size, sent = heapq.heappop(events)
        if when > begin + seconds:
            break
        clock.now = when
        export = exports[i]
        if kind == "ready":  # a thread wants to send its request (a new one if size is 0)
            if not size:
                if not export.todo:
                    continue
                size = export.todo.pop(0)
                export.pending += 1
            wait = export.controller.reserve(size)
            if wait > 0:
                push(when + wait, "ready", i, size)  # asks again then
                continue
            push(when + rng.uniform(*delay), "arrive", i, size, when)
        elif kind == "arrive":
            export.sent += 1
            try:
                quotas.admit("p", "s", size)
            except EmulatorError:
                export.refused += 1
                push(when + 0.002, "refused", i, size, sent)
            else:
                export.acked += size
                push(when + rng.uniform(*delay), "acked", i, size, sent)
        elif kind == "refused":
            export.controller.on_throttle(sent)
            push(when, "ready", i, size)
        else:
            export.controller.on_ack(size, sent)
            export.pending -= 1
            if not export.todo and not export.pending:
                export.finished = when
            push(when, "ready", i)


def run(
    *,
    tasks: int = 4,
    requests: int = 74,
    size: int = REQUEST,
    shards: int = 2,
    mb: float = SHARD_MB,
    seed: int = 0,
    **options: object,
) -> Outcome:
    """``tasks`` exports of ``requests`` requests (the benchmark's 300k rows each) against ``shards``
    shards of ``mb`` MB/s, as ``bench_quota.py`` runs them."""
    rng = random.Random(seed)
    clock = Clock()
    quotas = QuotaBook(clock=clock, seed=seed)
    quotas.set_logstore("p", "s", shards, WriteQuota(mb_per_second=mb))
    exports = []
    for _ in range(tasks):
        todo = [int(rng.gauss(size, 0.03 * size)) for _ in range(requests)]
        todo[-1] //= 3  # the last request holds what is left
        exports.append(Export(SendController(clock=clock), todo))
    begin = clock.now
    simulate(clock, quotas, exports, seed=seed, **options)  # type: ignore[arg-type]
    span = max(e.finished or clock.now for e in exports) - begin
    return Outcome(exports, span, span * shards * mb * MB)


def main() -> None:
    scenarios = {
        "4 tasks": {},
        "4 tasks, slow network": {"delay": (0.02, 0.08)},
        "4 tasks, one starting each second": {"stagger": 1.0},
        "1 task": {"tasks": 1, "requests": 98},
    }
    for name, options in scenarios.items():
        outcomes = [run(seed=seed, **options) for seed in range(40)]  # type: ignore[arg-type]
        met = sum(o.goodput >= 0.85 and o.refused <= 0.2 and o.fairness >= 0.7 for o in outcomes)
        print(
            f"{name}: goodput {statistics.median(o.goodput for o in outcomes):.2f}, refused "
            f"{statistics.median(o.refused for o in outcomes):.1%}, fastest/slowest "
            f"{statistics.median(o.fairness for o in outcomes):.2f} (medians); 4-task targets met "
            f"in {met} of {len(outcomes)}"
        )


if __name__ == "__main__":
    main()
