"""The token bucket, on a fake clock: exact, and independent of the machine's speed."""

from __future__ import annotations

import pytest

from sls_provider.core.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_requests_per_second_allows_one_second_burst_then_paces() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_second=10, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        limiter.acquire(100)
    assert clock.slept == []  # the first second's worth goes at once
    for _ in range(20):
        limiter.acquire(100)
    assert clock.now - 100.0 == pytest.approx(2.0)  # then 10 a second
    assert limiter.waited == pytest.approx(2.0)


def test_bytes_per_second_paces_by_size() -> None:
    clock = FakeClock()
    limiter = RateLimiter(bytes_per_second=1000, clock=clock, sleep=clock.sleep)
    limiter.acquire(1000)
    limiter.acquire(500)
    assert clock.now - 100.0 == pytest.approx(0.5)
    limiter.acquire(5000)  # larger than the bucket: waits for a full bucket, then is in debt
    assert clock.now - 100.0 == pytest.approx(1.5)
    limiter.acquire(1)
    assert clock.now - 100.0 == pytest.approx(5.501)


def test_both_limits_apply_the_stricter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_second=100, bytes_per_second=1000, clock=clock, sleep=clock.sleep)
    for _ in range(11):
        limiter.acquire(100)  # bytes bind: 1000 B/s at 100 B a request = 10 requests/s
    assert clock.now - 100.0 == pytest.approx(0.1)


def test_idle_time_does_not_bank_more_than_one_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_second=5, clock=clock, sleep=clock.sleep)
    clock.now += 60
    for _ in range(6):
        limiter.acquire(1)
    assert clock.slept == [pytest.approx(0.2)]


@pytest.mark.parametrize("kwargs", [{"requests_per_second": 0}, {"bytes_per_second": -1}])
def test_non_positive_limits_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        RateLimiter(**kwargs)
