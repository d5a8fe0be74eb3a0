"""How fast one export sends, learnt from the service's answers, the way TCP learns a window.

A logstore accepts 5 MB/s (10 without an index) and 500 writes/s per shard, and a project 100
GB/min and 600,000 writes/min; over that, writes are refused (403 ``ShardWriteQuotaExceed`` /
``WriteQuotaExceed``, 429). SLS counts **raw** bytes, the body before compression, so the bytes
here are raw too (the request's ``x-log-bodyrawsize``): compression saves network, not quota.
Nothing tells an export the quota, nor how many other exports share it, so each export paces its
requests at a byte rate it adapts:

- Until the first refusal nothing is paced (a quota that is not binding costs nothing).
- The first refusal starts pacing at one request a second, whatever the export got through before
  (so exports that start together start equal, however the quota's burst fell among them), then
  slow start: each acknowledgement adds its size, until the next refusal.
- A refusal of a request sent after the last cut, at least a second (the quota's burst) after it,
  cuts the rate to ``BETA`` times the lower of the paced rate and the acknowledged one: the
  multiplicative decrease, at most once per round, as TCP does once per window.
- Acknowledgements grow the rate additively: ``PROBE`` mean request sizes a second, times the
  export's seconds per request to the power ``EQUALISE`` (a slower export grows faster, so exports
  sharing a quota converge to equal shares within a few cuts; cuts alone keep their ratios), plus
  a term cubic in the time since the last cut, so a quota freed by an export that finished is found
  within seconds. At most ``GROWTH`` (doubling) a second.
- The rate grows only while the pacing is what holds the export back (TCP's window validation).
- Nothing is booked ahead: a request that has to wait asks again when its turn should come, so a
  cut or a rise of the rate applies at once to the requests already waiting (booking ahead at the
  old rate sent each export's next few requests into an empty bucket after every cut).
- ``Retry-After`` pauses every sending thread of the export until then.

The constants were tuned with an event simulation of 1 and 4 exports of the benchmark's request size
against round-robin shards with one second of burst (``tests/core/quota_sim.py``, 40 seeds and three
network delays; how often it meets the targets is in docs/reliability.md, "Write quotas and throttling");
``benchmarks/bench_quota.py`` measures the real thing.

The controller is shared by one export's sending threads (thread-safe), pure apart from its clock:
``reserve`` says when a request may start, the client sleeps. Caps given by the user
(``max_requests_per_second``, ``max_mb_per_second``, raw MB like the quota) stay upper bounds.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from sls_provider.core.errors import SlsQuotaError, SlsServiceError
from sls_provider.core.options import DEFAULT_STALL_TIMEOUT, check_positive

#: The cut on a refusal: the rate becomes this fraction of what was acknowledged.
BETA = 0.7
#: The cubic term of the growth, in mean request sizes per second cubed since the last cut.
CUBIC = 0.002
#: Additive growth: mean request sizes per second, per second (scaled by ``EQUALISE``).
PROBE = 1 / 4
#: The additive growth is scaled by (seconds between the export's requests) to this power.
EQUALISE = 2.0
#: Fastest growth of the rate, as a fraction per second, after a cut.
GROWTH = 1.0
#: Slow start (before the second cut) adds this many times an acknowledged request's size.
SLOW_START = 1.0
#: Window for the acknowledged rate a cut is based on, at the least (one second of the quota's burst).
MIN_WINDOW = 1.0
#: Seconds of acknowledgements a cut measures the export's rate over.
RECENT = 2.0
#: The slowest pacing: one request every this many seconds.
FLOOR = 2.0


class _Window:
    """Bytes seen over the last ``RECENT`` seconds."""

    def __init__(self) -> None:
        self._items: deque[tuple[float, int]] = deque()
        self._bytes = 0

    def add(self, when: float, nbytes: int) -> None:
        self._items.append((when, nbytes))
        self._bytes += nbytes

    def _trim(self, now: float) -> None:
        while self._items and self._items[0][0] < now - RECENT:
            self._bytes -= self._items.popleft()[1]

    def total(self, now: float) -> int:
        self._trim(now)
        return self._bytes

    def count(self, now: float) -> int:
        self._trim(now)
        return len(self._items)


class SendController:
    """Paces one export's requests under a write quota it learns from throttling answers.

    :param max_requests_per_second: a cap on requests/s (attempts included), or ``None``.
    :param max_bytes_per_second: a cap on raw (uncompressed) bytes/s, what the quota counts, or
        ``None``. Every byte count given to the controller is raw.
    :param stall_timeout: seconds without any acknowledged request, while refused for quota,
        after which the export gives up (see :meth:`stalled`).
    :param clock: monotonic seconds (injected by tests).
    """

    def __init__(
        self,
        *,
        max_requests_per_second: float | None = None,
        max_bytes_per_second: float | None = None,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (
            ("max_requests_per_second", max_requests_per_second),
            ("max_bytes_per_second", max_bytes_per_second),
            ("stall_timeout", stall_timeout),
        ):
            check_positive(name, value)
        self.max_requests_per_second = max_requests_per_second
        self.max_bytes_per_second = max_bytes_per_second
        self.stall_timeout = stall_timeout
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self.started = now
        #: paced bytes/s; ``None`` until the first refusal
        self.rate: float | None = None
        self._last_start, self._last_size = now, 0.0  # the last request let through
        self._next_request = now  # earliest start by the requests/s cap
        self._paused_until = now
        self._cut_at = -math.inf  # when the rate was last cut
        self._grown_at = now
        self._limited = False  # the pacing, not the export, is what holds requests back
        self._mean_size = 0.0
        self._rtt = 0.0
        self._acked_since_cut = 0
        self._recent = _Window()  # acknowledged bytes, the last RECENT seconds
        self._offered = _Window()  # bytes sent (attempts), the last RECENT seconds
        self._slow_start = True  # until the second cut
        # What the summary reports:
        self.acked_bytes = 0
        self.throttled = 0
        self.throttled_seconds = 0.0  # closed spells only: see throttled_time()
        #: the refusals for quota by what the service said (``"429 Throttled"``): counted
        self.throttle_answers: dict[str, int] = {}
        self.last_progress = now
        self._throttled_since: float | None = None
        #: when the export's first try started (``None`` before it): the endpoint's time to answer
        #: runs from there (see :class:`~sls_provider.core.client.RetryPolicy`'s first_answer)
        self.first_try: float | None = None
        #: the endpoint gave any HTTP answer to this export (an acknowledgement or an error): until
        #: then, no unanswered try can have been stored (see :meth:`may_have_stored`)
        self.answered = False
        self._peak = 0.0
        #: the highest rate this export tried to send at before a cut: roughly what it could do
        self.demand = 0.0

    # -- pacing -----------------------------------------------------------------------------------

    def reserve(self, nbytes: int) -> float:
        """0.0 if a request of ``nbytes`` may start now (it is counted as started), else the seconds
        to wait before asking again: nothing is booked ahead, since the rate may change meanwhile."""
        with self._lock:
            now = self._clock()
            size = float(max(nbytes, 1))
            # Never slower than one request every FLOOR seconds, whatever the estimate.
            rate = min(max(self.rate or math.inf, size / FLOOR), self.max_bytes_per_second or math.inf)
            earliest = max(self._paused_until, self._next_request)
            if rate < math.inf:
                earliest = max(earliest, self._last_start + self._last_size / rate)
            if earliest > now:
                self._limited = True
                return earliest - now
            # The pacing holds the export back if its turn had only just come (else the export is
            # slower than the rate allows, and growing the rate would mean nothing).
            self._limited = rate < math.inf and now - earliest < 0.5 * max(self._last_size, size) / rate
            self._mean_size = size if not self._mean_size else 0.9 * self._mean_size + 0.1 * size
            if self.max_requests_per_second:
                self._next_request = now + 1.0 / self.max_requests_per_second
            self._last_start, self._last_size = now, size
            self._offered.add(now, int(size))
            return 0.0

    def acquire(self, nbytes: int, sleep: Callable[[float], None] = time.sleep) -> float:
        """Wait for a start (see :meth:`reserve`); returns when the request was allowed to start."""
        while (delay := self.reserve(nbytes)) > 0:
            sleep(delay)
        now = self._clock()
        with self._lock:
            if self.first_try is None:
                self.first_try = now
        return now

    def on_answer(self) -> None:
        """The endpoint answered something (an error too): it is a working server."""
        self.answered = True

    def may_have_stored(self) -> bool:
        """Whether a try sent whole and never answered may have been stored: not while the
        endpoint has answered nothing at all in this export (nothing shows a working SLS there)."""
        return self.answered

    # -- answers ----------------------------------------------------------------------------------

    def on_ack(self, nbytes: int, sent_at: float) -> None:
        """A request of ``nbytes`` sent at ``sent_at`` (from :meth:`acquire`) was acknowledged."""
        with self._lock:
            now = self._clock()
            rtt = max(now - sent_at, 1e-4)
            self._rtt = rtt if not self._rtt else 0.875 * self._rtt + 0.125 * rtt
            self.acked_bytes += nbytes
            self.answered = True
            self._acked_since_cut += nbytes
            self._recent.add(now, nbytes)
            self.last_progress = now
            if self._throttled_since is not None:
                self.throttled_seconds += now - self._throttled_since
                self._throttled_since = None
            window = now - max(self._cut_at, self.started)
            if window >= 2 * MIN_WINDOW:
                self._peak = max(self._peak, self._acked_since_cut / window)
            elapsed, self._grown_at = now - self._grown_at, now
            if self.rate is None or not self._limited:
                return
            if self._slow_start:
                # One more request's worth per acknowledgement (doubling in under a second: the
                # quota's burst, not the round trip, is how long a refusal takes to show).
                self.rate = min(self.rate + nbytes * SLOW_START, self.rate * 2.0 ** min(elapsed, 10.0))
                return
            # Additive, faster for a slower export (fairness), plus a cubic term in the time since
            # the last cut (to find room freed by others); by at most GROWTH a second, since a
            # refusal shows only once the quota's burst is spent.
            t = now - self._cut_at
            dt = min(elapsed, 10.0)
            gap = self._mean_size / self.rate  # seconds between this export's requests
            grow = PROBE * self._mean_size * gap**EQUALISE + 3 * CUBIC * self._mean_size * t * t
            self.rate = min(self.rate + grow * dt, self.rate * (1.0 + GROWTH) ** dt)

    def on_throttle(self, sent_at: float, retry_after: float | None = None, said: str | None = None) -> None:
        """A request sent at ``sent_at`` was refused for quota; ``retry_after`` as the service asked;
        ``said``: the answer in short (``"429 Throttled"``), counted for the summary."""
        with self._lock:
            now = self._clock()
            self.throttled += 1
            self.answered = True
            if said:
                self.throttle_answers[said] = self.throttle_answers.get(said, 0) + 1
            if self._throttled_since is None:
                self._throttled_since = now
            if retry_after:
                self._paused_until = max(self._paused_until, now + retry_after)
            # Once per round: not for requests sent before the last cut, nor before the quota's
            # one second of burst has had time to show the effect of the last cut.
            if sent_at < self._cut_at or now - self._cut_at < max(MIN_WINDOW, 2 * self._rtt):
                return
            span = max(min(RECENT, now - self.started), MIN_WINDOW)
            # What came through lately; with hardly any answer through, what was sent instead.
            informed = self._recent.count(now) >= 2
            acked = (self._recent.total(now) if informed else self._offered.total(now)) / span
            first = self.rate is None
            self._cut_at = now
            self._acked_since_cut = 0
            if first:
                # Everything so far was the quota's burst, shared out by chance: start every export
                # alike, at one request a second, and slow start up to the next refusal.
                self.demand = max(self.demand, acked)
                self.rate = max(self._mean_size, 1.0)
                return
            current = self.rate if self.rate is not None else math.inf
            self.demand = max(self.demand, current)
            # Never below a quarter in one cut (a window may hold few answers), nor below one
            # request every FLOOR seconds (the stall timeout, not the pacing, ends a hopeless export).
            floor = max(self._mean_size / FLOOR, 1.0)
            basis = max(min(current, acked), current / 4, floor / BETA)
            self.rate = BETA * basis
            # Refused with next to nothing through: no level to hold, slow start again.
            self._slow_start = not informed

    # -- state ------------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def throttled_time(self) -> float:
        """Seconds spent throttled so far, the spell still running included (an export that fails
        while refused, or is asked mid-spell, has waited that long too)."""
        with self._lock:
            running = self._clock() - self._throttled_since if self._throttled_since is not None else 0.0
            return self.throttled_seconds + running

    def stalled(self) -> bool:
        """Nothing acknowledged for ``stall_timeout`` seconds: the quota leaves this export no room."""
        with self._lock:
            return self._clock() - self.last_progress >= self.stall_timeout

    def achieved(self) -> float:
        """Acknowledged bytes per second since the start."""
        with self._lock:
            elapsed = self._clock() - self.started
            return self.acked_bytes / elapsed if elapsed > 0 else 0.0

    def peak(self) -> float:
        """The best acknowledged bytes/s over a window between cuts (at least two seconds)."""
        with self._lock:
            return self._peak

    def quota_error(self, error: SlsServiceError) -> SlsQuotaError:
        """The export gave up (:meth:`stalled`): say that the quota is the limit, what this export
        achieved and what it would need (built here, where the pace is known)."""
        achieved = self.achieved()
        demand = max(self.demand, self.peak(), achieved)
        seconds = self.now() - self.started
        if self.acked_bytes:
            # The controller counts raw bytes, as the quota does.
            shards = max(2, math.ceil(demand / SHARD_BYTES_PER_SECOND))
            plain = max(2, math.ceil(demand / (2 * SHARD_BYTES_PER_SECOND)))
            need = (
                f"It achieved {_mb(achieved)}/s of raw data ({_mb(self.acked_bytes)} in {seconds:,.0f} s) "
                f"and tried up to {_mb(demand)}/s; a shard takes about 5 MB/s of raw (uncompressed) data "
                f"with an index (10 without) and 500 writes/s, so this export alone would need roughly "
                f"{shards} shard(s) ({plain} without an index). Split the logstore's shards, run fewer "
                "exports at once on it, or raise stall_timeout."
            )
        else:
            need = (
                "No write of this export was accepted at all: the quota admits nothing (check the "
                "logstore's shards, the project's write quota, and other writers of this logstore)."
            )
        # What the service said, in its words: a 429 Throttled is not a quota code, a 403 quota code is.
        said = ", ".join(f"{answer} x{n:,}" for answer, n in sorted(self.throttle_answers.items()))
        return SlsQuotaError(
            f"SLS refused every write of this export for {self.stall_timeout:,.0f} s, answering "
            f"{said or error.status}: the logstore's write quota is the limit, not this export. {need} "
            f"Last answer: {error}",
            status=error.status,
            error_code=error.error_code,
            error_message=error.error_message,
            request_id=error.request_id,
            retry_after=error.retry_after,
        )


#: What SLS gives a shard (its soft write quota): 5 MB/s of raw (uncompressed) data when the
#: logstore has an index, 10 when it has none (help.aliyun.com/zh/sls/product-overview/data-read-and-write).
SHARD_BYTES_PER_SECOND = 5 * 1024 * 1024


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:,.2f} MB"
