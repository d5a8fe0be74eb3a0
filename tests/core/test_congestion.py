"""The export's send controller on its own, with a fake clock: it backs off under a quota, recovers
when the quota frees up, and exports sharing a quota converge to it (and to fair shares)."""

from __future__ import annotations

import pytest

from sls_provider.core.congestion import SendController
from sls_provider.emulator.errors import EmulatorError
from sls_provider.emulator.quota import QuotaBook, WriteQuota

MB = 1024 * 1024
SIZE = 300_000  # bytes a request


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def simulate(
    controllers: list[SendController],
    clock: Clock,
    quotas: QuotaBook,
    seconds: float,
    *,
    rtt: float = 0.03,
    workers: int = 4,
) -> list[dict[str, float]]:
    """Each controller's ``workers`` send back to back as paced, against ``quotas``; per controller:
    acknowledged bytes, refused and sent requests. A small event loop on the fake clock."""
    import heapq

    stats = [{"acked": 0.0, "refused": 0, "sent": 0} for _ in controllers]
    events: list[tuple[float, int, int]] = []  # (time a worker is free, order, controller)
    order = 0
    for i in range(len(controllers)):
        for _ in range(workers):
            events.append((clock.now, order, i))
            order += 1
    heapq.heapify(events)
    end = clock.now + seconds
    while events:
        when, _, i = heapq.heappop(events)
        if when > end:
            break
        clock.now = when
        control = controllers[i]
        start = when + control.reserve(SIZE)
        clock.now = start + rtt
        stats[i]["sent"] += 1
        try:
            quotas.admit("p", "s", SIZE)
        except EmulatorError:
            stats[i]["refused"] += 1
            control.on_throttle(start)
        else:
            stats[i]["acked"] += SIZE
            control.on_ack(SIZE, start)
        heapq.heappush(events, (clock.now, order, i))
        order += 1
    return stats


def setup(shards: int = 2, mb: float = 1.0) -> tuple[Clock, QuotaBook]:
    clock = Clock()
    quotas = QuotaBook(clock=clock)
    quotas.set_logstore("p", "s", shards, WriteQuota(mb_per_second=mb))
    return clock, quotas


def test_unthrottled_it_does_not_pace_at_all() -> None:
    clock = Clock()
    control = SendController(clock=clock)
    for _ in range(1000):
        assert control.reserve(SIZE) == 0.0
        control.on_ack(SIZE, clock.now)
        clock.now += 0.001
    assert control.rate is None and control.throttled == 0


def test_it_backs_off_to_the_quota_with_few_refusals() -> None:
    clock, quotas = setup()
    control = SendController(clock=clock)
    stats = simulate([control], clock, quotas, 30.0)[0]
    quota = 2 * MB
    assert control.rate is not None and control.throttled > 0
    assert stats["acked"] / 30.0 > 0.85 * quota  # close to the quota...
    assert stats["refused"] / stats["sent"] < 0.15  # ...with few refusals
    assert 0.5 * quota < control.rate < 2.0 * quota


def test_it_recovers_when_the_quota_grows() -> None:
    clock, quotas = setup(mb=0.5)
    control = SendController(clock=clock)
    simulate([control], clock, quotas, 20.0)
    assert control.rate is not None and control.rate < 2 * MB
    quotas.set_logstore("p", "s", 2, WriteQuota(mb_per_second=4.0))  # 8 MB/s now
    simulate([control], clock, quotas, 15.0)
    stats = simulate([control], clock, quotas, 10.0)[0]
    assert stats["acked"] / 10.0 > 0.6 * 8 * MB  # found the room within seconds


def test_independent_exports_converge_to_fair_shares_of_the_quota() -> None:
    clock, quotas = setup()
    controls = [SendController(clock=clock) for _ in range(4)]
    simulate(controls, clock, quotas, 20.0)  # settle
    stats = simulate(controls, clock, quotas, 60.0)
    rates = [s["acked"] / 60.0 for s in stats]
    assert sum(rates) > 0.8 * 2 * MB
    assert min(rates) / max(rates) > 0.5
    assert sum(s["refused"] for s in stats) / sum(s["sent"] for s in stats) < 0.3


def test_retry_after_pauses_every_thread_and_caps_stay_upper_bounds() -> None:
    clock = Clock()
    capped = SendController(clock=clock, max_requests_per_second=10, max_bytes_per_second=SIZE * 5)
    assert [capped.reserve(SIZE) for _ in range(3)] == pytest.approx([0.0, 0.2, 0.4])  # 5 a second
    capped = SendController(clock=clock, max_requests_per_second=10)
    assert [capped.reserve(SIZE) for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])  # 10 a second
    control = SendController(clock=clock)
    control.reserve(SIZE)
    control.on_throttle(clock.now, retry_after=3.0)
    assert [control.reserve(SIZE) >= 3.0 for _ in range(4)] == [True] * 4


def test_stalled_only_after_stall_timeout_without_any_acknowledgement() -> None:
    clock = Clock()
    control = SendController(clock=clock, stall_timeout=60)
    control.on_ack(SIZE, clock.now)
    clock.now += 59
    control.on_throttle(clock.now)
    assert not control.stalled()
    clock.now += 1
    assert control.stalled()
    control.on_ack(SIZE, clock.now)
    assert not control.stalled()


def test_pacing_never_falls_below_one_request_every_few_seconds() -> None:
    clock = Clock()
    control = SendController(clock=clock)
    for _ in range(100):  # refused forever
        clock.now += control.reserve(SIZE)
        clock.now += 0.01
        control.on_throttle(clock.now - 0.01)
    assert control.reserve(SIZE) <= 2.0 + 1e-6


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="stall_timeout"):
        SendController(stall_timeout=0)
    with pytest.raises(ValueError, match="max_bytes_per_second"):
        SendController(max_bytes_per_second=float("inf"))
