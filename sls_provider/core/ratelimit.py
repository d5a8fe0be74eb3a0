"""A token bucket shared by one export's sending threads, to stay under a logstore's write quota.

SLS throttles each shard at about 500 writes/s and 5 MB/s; many mapped tasks writing to one logstore
add up. Each task can cap its own requests/s and bytes/s (compressed bytes, what the quota counts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class _Bucket:
    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = rate  # a burst of at most one second's worth
        self.tokens = rate
        self.stamp = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` may be spent; a cost above the capacity waits for a full bucket and
        then leaves it in debt, so one big request is allowed but paid for."""
        need = min(cost, self.capacity)
        # The tolerance keeps float rounding from asking for waits too short to move the clock.
        return 0.0 if self.tokens >= need * (1 - 1e-9) else (need - self.tokens) / self.rate


class RateLimiter:
    """Blocks callers so that at most ``requests_per_second`` requests and ``bytes_per_second``
    bytes go out on average. Thread-safe.

    :param requests_per_second: requests per second, or ``None`` for no limit.
    :param bytes_per_second: bytes per second, or ``None`` for no limit.
    """

    def __init__(
        self,
        requests_per_second: float | None = None,
        bytes_per_second: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, value in (
            ("requests_per_second", requests_per_second),
            ("bytes_per_second", bytes_per_second),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self._clock, self._sleep = clock, sleep
        now = clock()
        self._requests = _Bucket(requests_per_second, now) if requests_per_second else None
        self._bytes = _Bucket(bytes_per_second, now) if bytes_per_second else None
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting, for the summary

    def acquire(self, nbytes: int) -> None:
        """Wait until one request of ``nbytes`` may be sent, then account for it."""
        while True:
            with self._lock:
                now = self._clock()
                buckets = [(b, c) for b, c in ((self._requests, 1.0), (self._bytes, float(nbytes))) if b]
                for bucket, _ in buckets:
                    bucket.refill(now)
                delay = max((bucket.wait_for(cost) for bucket, cost in buckets), default=0.0)
                if delay <= 0:
                    for bucket, cost in buckets:
                        bucket.tokens -= cost
                    return
                self.waited += delay
            self._sleep(delay)
