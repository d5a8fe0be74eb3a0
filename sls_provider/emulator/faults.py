"""Fault injection for POST /track: errors, latency, dropped connections, lost answers.

Faults never touch reads or ``/_emulator/`` admin calls. Precedence when several are armed:
``drop_next`` > ``fail_next`` > ``fail_every`` > ``fail_fraction``; ``latency`` adds to whichever
answer is sent; ``accept_then_fail`` only fires on a request that was valid and got stored, so
``injected["accept_then_fail"]`` is exactly the number of batches a retrying client may duplicate.
``clear()`` disarms everything but keeps the ``injected`` counters (tests read them afterwards).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from sls_provider.emulator.errors import EmulatorError, ErrorCode

KINDS = ("fail_next", "fail_every", "fail_fraction", "latency", "drop_next", "accept_then_fail")


@dataclass
class _ErrorSpec:
    status: int
    error_code: str
    message: str | None
    retry_after: float | None

    def error(self, kind: str) -> EmulatorError:
        text = self.message or f"Injected fault ({kind}): {self.error_code}."
        return EmulatorError(self.status, self.error_code, text, retry_after=self.retry_after)


@dataclass
class Decision:
    """What the injector wants done with one /track request before it is processed."""

    fault: str | None = None
    drop: bool = False
    error: EmulatorError | None = None
    delay: float = 0.0


class FaultInjector:
    """Thread-safe fault configuration, driven from Python or ``POST /_emulator/faults``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters = dict.fromkeys(KINDS, 0)
        self.clear()

    def clear(self) -> None:
        """Disarm every fault (counters are kept: see ``reset_counters``)."""
        with self._lock:
            self._fail_next: tuple[int, _ErrorSpec] | None = None
            self._fail_every: tuple[int, int, _ErrorSpec] | None = None  # (nth, seen, spec)
            self._fail_fraction: tuple[float, random.Random, _ErrorSpec] | None = None
            self._latency: tuple[float, int | None] | None = None
            self._drop_next = 0
            self._accept_then_fail: tuple[int, _ErrorSpec] | None = None

    def reset_counters(self) -> None:
        with self._lock:
            self._counters = dict.fromkeys(KINDS, 0)

    @property
    def injected(self) -> dict[str, int]:
        """How many times each kind of fault fired (a copy)."""
        with self._lock:
            return dict(self._counters)

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        error_code: str = ErrorCode.SERVER_BUSY,
        message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``n`` /track requests with an error; nothing is stored."""
        with self._lock:
            self._fail_next = (n, _ErrorSpec(status, error_code, message, retry_after))

    def fail_every(
        self,
        nth: int,
        status: int = 503,
        error_code: str = ErrorCode.SERVER_BUSY,
        message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Fail every ``nth`` /track request (the nth, 2*nth, ...), counting from now."""
        if nth < 1:
            raise ValueError("nth must be >= 1")
        with self._lock:
            self._fail_every = (nth, 0, _ErrorSpec(status, error_code, message, retry_after))

    def fail_fraction(
        self,
        fraction: float,
        seed: int = 0,
        status: int = 503,
        error_code: str = ErrorCode.SERVER_BUSY,
        message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Fail each /track request with probability ``fraction`` (seeded, so runs repeat)."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be within [0, 1]")
        with self._lock:
            spec = _ErrorSpec(status, error_code, message, retry_after)
            self._fail_fraction = (fraction, random.Random(seed), spec)

    def latency(self, seconds: float, n: int | None = None) -> None:
        """Delay the answer to the next ``n`` /track requests (all of them while ``n`` is None)."""
        with self._lock:
            self._latency = (float(seconds), n)

    def drop_next(self, n: int = 1) -> None:
        """Read the next ``n`` request bodies, store nothing and close the connection unanswered."""
        with self._lock:
            self._drop_next = n

    def accept_then_fail(
        self,
        n: int = 1,
        status: int = 503,
        error_code: str = ErrorCode.SERVER_BUSY,
        message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Store the next ``n`` valid requests, then answer an error (a lost success)."""
        with self._lock:
            self._accept_then_fail = (n, _ErrorSpec(status, error_code, message, retry_after))

    def configure(self, spec: dict[str, Any]) -> None:
        """Arm a fault from its JSON form: ``{"kind": "fail_next", "n": 3, ...}``."""
        args = dict(spec)
        kind = args.pop("kind", None)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        getattr(self, kind)(**args)  # TypeError on unknown arguments, reported as 400 by the caller

    def _fired(self, kind: str) -> None:
        self._counters[kind] += 1

    def _pick_error(self) -> tuple[str, EmulatorError] | None:
        """Called with the lock held. Counters advance for every /track request."""
        every_hit = fraction_hit = False
        if self._fail_every is not None:
            nth, seen, spec = self._fail_every
            self._fail_every = (nth, seen + 1, spec)
            every_hit = (seen + 1) % nth == 0
        if self._fail_fraction is not None:
            fraction, rng, _ = self._fail_fraction
            fraction_hit = rng.random() < fraction
        if self._fail_next is not None and self._fail_next[0] > 0:
            left, spec = self._fail_next
            self._fail_next = (left - 1, spec)
            return "fail_next", spec.error("fail_next")
        if every_hit and self._fail_every is not None:
            return "fail_every", self._fail_every[2].error("fail_every")
        if fraction_hit and self._fail_fraction is not None:
            return "fail_fraction", self._fail_fraction[2].error("fail_fraction")
        return None

    def before(self) -> Decision:
        """Decide the fate of a /track request whose body has been read."""
        with self._lock:
            decision = Decision()
            if self._latency is not None:
                seconds, left = self._latency
                if left is None or left > 0:
                    decision.delay, decision.fault = seconds, "latency"
                    self._latency = (seconds, None if left is None else left - 1)
                    self._fired("latency")
            if self._drop_next > 0:
                self._drop_next -= 1
                self._fired("drop_next")
                return Decision(fault="drop_next", drop=True, delay=decision.delay)
            picked = self._pick_error()
            if picked is not None:
                decision.fault, decision.error = picked
                self._fired(picked[0])
            return decision

    def after_store(self) -> EmulatorError | None:
        """After a successful store: the error to answer instead of 200, if armed."""
        with self._lock:
            if self._accept_then_fail is None or self._accept_then_fail[0] <= 0:
                return None
            left, spec = self._accept_then_fail
            self._accept_then_fail = (left - 1, spec)
            self._fired("accept_then_fail")
            return spec.error("accept_then_fail")
