"""The export's send controller on its own, with a fake clock: it backs off under a quota, recovers
when the quota frees up, and exports sharing a quota converge to it (and to fair shares)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sls_provider.core.congestion import SendController
from sls_provider.emulator.quota import QuotaBook, WriteQuota
from tests.core.quota_sim import MB, REQUEST, SHARD_MB, Clock, Export, run, simulate

SIZE = REQUEST
QUOTA = 2 * SHARD_MB * MB  # the benchmark's two shards, raw bytes/s


def setup(shards: int = 2, mb: float = SHARD_MB) -> tuple[Clock, QuotaBook]:
    clock = Clock()
    quotas = QuotaBook(clock=clock)
    quotas.set_logstore("p", "s", shards, WriteQuota(mb_per_second=mb))
    return clock, quotas


def endless(clock: Clock) -> Export:
    """An export with more to send than any test's time allows."""
    return Export(SendController(clock=clock), [SIZE] * 100_000)


def sleeper(clock: Clock) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        clock.now += seconds

    return sleep


def test_unthrottled_it_does_not_pace_at_all() -> None:
    clock = Clock()
    control = SendController(clock=clock)
    for _ in range(1000):
        assert control.reserve(SIZE) == 0.0
        control.on_ack(SIZE, clock.now)
        clock.now += 0.001
    assert control.rate is None and control.throttled == 0


def test_it_backs_off_to_the_quota_with_few_refusals() -> None:
    outcome = run(tasks=1, requests=98)  # the benchmark's single task: 400k rows
    (export,) = outcome.exports
    assert export.controller.rate is not None and export.controller.throttled > 0
    assert outcome.goodput > 0.9  # close to the quota...
    assert outcome.refused < 0.1  # ...with few refusals
    assert 0.5 * QUOTA < export.controller.rate < 2.0 * QUOTA


def test_it_recovers_when_the_quota_grows() -> None:
    clock, quotas = setup(mb=0.5 * SHARD_MB)
    export = endless(clock)
    simulate(clock, quotas, [export], seconds=20.0)
    assert export.controller.rate is not None and export.controller.rate < QUOTA
    quotas.set_logstore("p", "s", 2, WriteQuota(mb_per_second=4.0 * SHARD_MB))  # 8 times as much now
    simulate(clock, quotas, [export], seconds=15.0)
    before = export.acked
    simulate(clock, quotas, [export], seconds=10.0)
    assert (export.acked - before) / 10.0 > 0.6 * 4 * QUOTA  # found the room within seconds


def test_independent_exports_converge_to_fair_shares_of_the_quota() -> None:
    """The benchmark's 4 tasks, over 10 network draws: the targets of bench_quota.py are met in
    most (the first version met them in under half of such runs), and each is near them."""
    outcomes = [run(tasks=4, seed=seed) for seed in range(10)]
    met = [o.goodput >= 0.85 and o.refused <= 0.2 and o.fairness >= 0.7 for o in outcomes]
    assert sum(met) >= 8, [(round(o.goodput, 2), round(o.refused, 3), round(o.fairness, 2)) for o in outcomes]
    for outcome in outcomes:
        assert sum(len(e.todo) + e.pending for e in outcome.exports) == 0  # every export finished
        assert outcome.goodput > 0.8 and outcome.refused < 0.25 and outcome.fairness > 0.5


def test_exports_sharing_a_quota_settle_at_equal_rates() -> None:
    clock, quotas = setup()
    exports = [endless(clock) for _ in range(4)]
    simulate(clock, quotas, exports, seconds=20.0)  # settle
    before = [e.acked for e in exports]
    simulate(clock, quotas, exports, seconds=60.0)
    rates = [(e.acked - b) / 60.0 for e, b in zip(exports, before, strict=True)]
    assert sum(rates) > 0.85 * QUOTA
    assert min(rates) / max(rates) > 0.7


def test_a_waiting_request_starts_by_the_rate_of_when_it_starts() -> None:
    """Nothing is booked ahead: a cut slows the requests already waiting, a rise speeds them up."""
    clock = Clock()
    control = SendController(clock=clock)
    assert control.reserve(SIZE) == 0.0
    control.on_throttle(clock.now)  # first refusal: one request a second
    assert control.reserve(SIZE) == pytest.approx(1.0)
    control.rate = SIZE * 4.0  # grown meanwhile (as acknowledgements would): a quarter second
    assert control.reserve(SIZE) == pytest.approx(0.25)
    control.rate = SIZE / 2.0  # cut meanwhile: two seconds
    assert control.reserve(SIZE) == pytest.approx(2.0)
    clock.now += 2.0
    assert control.reserve(SIZE) == 0.0  # started: the next one waits its turn after this one
    assert control.reserve(SIZE) == pytest.approx(2.0)


def test_retry_after_pauses_every_thread_and_caps_stay_upper_bounds() -> None:
    clock = Clock()
    capped = SendController(clock=clock, max_requests_per_second=10, max_bytes_per_second=SIZE * 5)
    assert [capped.acquire(SIZE, sleeper(clock)) - 1000.0 for _ in range(3)] == pytest.approx([0, 0.2, 0.4])
    clock = Clock()
    capped = SendController(clock=clock, max_requests_per_second=10)
    assert [capped.acquire(SIZE, sleeper(clock)) - 1000.0 for _ in range(3)] == pytest.approx([0, 0.1, 0.2])
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
        sent_at = control.acquire(SIZE, sleeper(clock))
        clock.now += 0.01
        control.on_throttle(sent_at)
    assert control.reserve(SIZE) <= 2.0 + 1e-6


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="stall_timeout"):
        SendController(stall_timeout=0)
    with pytest.raises(ValueError, match="max_bytes_per_second"):
        SendController(max_bytes_per_second=float("inf"))
