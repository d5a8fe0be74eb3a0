"""One export's stop signal: Airflow (or anything else) asks the export to stop, and every wait of
the export ends within a bound.

Airflow stops a task three ways, none of which stops the task's threads: SIGTERM (a task marked
failed, or its process terminated) only calls the operator's ``on_kill``; ``execution_timeout``
raises ``AirflowTaskTimeout`` in the main thread (then calls ``on_kill``); and the supervisor's
SIGKILL follows a few seconds later. So the export owns one :class:`StopSignal`, set by ``on_kill``
and by any ``BaseException`` in the main thread, and every wait of the export looks at it:

- the sender starts no request after it, and waits at most :data:`STOP_GRACE` for the requests on
  the wire (their tries are cut then, :mod:`sls_provider.core.trydeadline`), so their answers reach
  the ledger when they come in time;
- the client's retry loop and the pacing waits (``Event.wait`` instead of ``sleep``) end at once;
- the read-ahead thread of a query is abandoned after a bounded join (it is a daemon thread).

``set`` does no more than record the reason and set an ``Event``: it runs inside a signal handler.
The rest (cutting the tries) is done by the main thread when it sees the signal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sls_provider.core.errors import SlsStoppedError

__all__ = ["STOP_GRACE", "StopSignal"]

#: Seconds the requests on the wire at a stop get for their answers before their tries are cut:
#: well under the ~5 s Airflow leaves between SIGTERM and SIGKILL, so the ledger is still written.
STOP_GRACE = 2.0
#: How often the main thread looks at the signal while it waits for threads.
POLL = 0.1


class StopSignal:
    """Set once, with a reason; waits that should end at a stop use :meth:`wait`."""

    def __init__(self) -> None:
        self._event = threading.Event()
        #: why the export stopped: a text (``on_kill``) or the exception the main thread got
        self.reason: str | BaseException | None = None
        #: ``time.monotonic()`` when it was set
        self.at: float | None = None
        self._lock = threading.Lock()
        self._cuts: set[Callable[[float], None]] = set()

    def set(self, reason: str | BaseException | None = None) -> None:
        """Ask the export to stop (the first reason is kept). Safe in a signal handler."""
        if self._event.is_set():
            return
        self.reason = reason if reason is not None else "the export was asked to stop"
        self.at = time.monotonic()
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds``, or less if the signal is set meanwhile; ``True`` if it is set."""
        return self._event.wait(max(seconds, 0.0))

    def error(self, what: str = "") -> BaseException:
        """What to raise where the stop is noticed: the main thread's own exception (say
        ``AirflowTaskTimeout``) as it was, else :class:`SlsStoppedError` giving the reason."""
        if isinstance(self.reason, BaseException) and not isinstance(self.reason, Exception):
            return self.reason
        reason = self.reason
        if isinstance(reason, BaseException):
            reason = f"{type(reason).__name__}: {reason}"
        return SlsStoppedError(f"The export stopped{what}: {reason}")

    # -- the tries on the wire ----------------------------------------------------------------------

    def deadline(self) -> float | None:
        """When tries running at the stop are cut (``None``: not stopped)."""
        return None if self.at is None else self.at + STOP_GRACE

    def attach(self, cut: Callable[[float], None]) -> None:
        """A try starts: ``cut(deadline)`` shortens it once the export stops."""
        with self._lock:
            self._cuts.add(cut)
        when = self.deadline()
        if when is not None:
            cut(when)

    def detach(self, cut: Callable[[float], None]) -> None:
        with self._lock:
            self._cuts.discard(cut)

    def cut_tries(self) -> None:
        """Cut every running try at :meth:`deadline` (called by the main thread, not the handler)."""
        when = self.deadline()
        if when is None:
            return
        with self._lock:
            cuts = list(self._cuts)
        for cut in cuts:
            cut(when)
