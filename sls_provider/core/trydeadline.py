"""A hard time limit on one HTTP try, whatever the peer does.

urllib3's timeouts bound each socket operation: a peer that sends one byte a second (of the status
line, the headers, the TLS handshake or the body) resets them every time and can hold a try, and the
export, forever. Here one watchdog thread keeps the deadline of every running try; at the deadline it
shuts the try's socket down, which ends any read or write blocked on it at once (the try then sees
the connection closed, and :meth:`Try.expired` tells the caller why).

The connection classes register themselves with the try running in their thread when they connect
and when they send, and they keep a duplicate of their socket's descriptor (closed with the
connection), so the watchdog can shut the socket down even in the middle of the TLS handshake, and
never touches a descriptor that has been closed and reused. No library bounds a whole exchange:
urllib3's ``Timeout(total=...)`` is still per operation, and so are requests' and httpx's.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

_lock = threading.Lock()  # guards every Try and every connection's ``_sls_try``
_local = threading.local()


class Try:
    """One HTTP try, as the watchdog and the caller see it: its deadline (a ``time.monotonic()``
    value), whether it ``expired`` (the watchdog cut it), whether the request ``started`` going out
    and whether it was ``sent`` whole; use as a context manager around the try.

    :param stop: the export's stop signal (:class:`~sls_provider.core.stop.StopSignal`): once it is
        set, the try is cut at its grace deadline, if that comes first.
    """

    def __init__(self, deadline: float, stop: Any = None) -> None:
        self.deadline = deadline
        self.expired = False
        self.started = False  # the request started going out: the peer was reached
        # The whole request (head and body) was handed to the socket: only then can the service
        # have it all, and so store it. A try cut while sending cannot leave a stored request.
        self.sent = False
        self._conn: _Watched | None = None
        self._done = False
        self._stop = stop

    def __enter__(self) -> Try:
        _local.current = self
        _WATCHDOG.watch(self)
        if self._stop is not None:
            self._stop.attach(self.shorten)
        return self

    def shorten(self, deadline: float) -> None:
        """Bring the deadline forward (never back): the export is stopping."""
        with _lock:
            if self._done or deadline >= self.deadline:
                return
            self.deadline = deadline
        _WATCHDOG.watch(self)  # the entry at the old deadline stays, a no-op by then

    def __exit__(self, *exc: object) -> None:
        _local.current = None
        if self._stop is not None:
            self._stop.detach(self.shorten)
        with _lock:
            self._done = True
            conn = self._conn
            if conn is not None and conn._sls_try is self:
                conn._sls_try = None
                if conn.sock is None:  # closed during the try: see _Watched.close
                    conn._sls_release_guard()
            self._conn = None

    def _attach(self, conn: _Watched) -> None:
        with _lock:
            self._conn = conn
            conn._sls_try = self
            if self.expired:
                conn._sls_shutdown()

    def _expire(self) -> None:
        with _lock:
            if self._done:
                return
            self.expired = True
            conn = self._conn
            # The connection may have gone back to the pool and on to another try: leave it then.
            if conn is not None and conn._sls_try is self:
                conn._sls_shutdown()


class _Watchdog:
    """One daemon thread for the whole process; tries are kept in a heap by deadline."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # threads and held locks do not survive a fork

    def _reset(self) -> None:
        # Rebinding the module's lock (not a watchdog attribute) on purpose: every Try and every
        # connection takes it, and in a forked child (a Celery or LocalExecutor worker forks) a
        # lock that some other thread held at the fork would stay held forever.
        global _lock
        _lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Try]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, attempt: Try) -> None:
        with self._cond:
            heapq.heappush(self._heap, (attempt.deadline, next(self._order), attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sls-try-deadline", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is attempt:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                _, _, attempt = heapq.heappop(self._heap)
            attempt._expire()  # a no-op for a try that ended in time


_WATCHDOG = _Watchdog()


class _Watched(HTTPConnection):
    """Registers with the current thread's :class:`Try`; see the module's docstring."""

    _sls_try: Try | None = None
    _sls_guard: socket.socket | None = None

    def _sls_shutdown(self) -> None:
        # Called under _lock. shutdown() on the duplicate descriptor acts on the socket itself.
        if self._sls_guard is not None:
            try:
                self._sls_guard.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer

    def _sls_register(self) -> None:
        current: Try | None = getattr(_local, "current", None)
        if current is not None:
            current._attach(self)

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        with _lock:
            if self._sls_guard is not None:
                self._sls_guard.close()
            self._sls_guard = sock.dup()
        self._sls_register()  # shuts the new socket down at once if the try already expired
        return sock

    def connect(self) -> None:
        self._sls_register()
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._sls_register()
        if self.sock is None:
            self.connect()  # here rather than inside the send, to know when sending begins
        current: Try | None = getattr(_local, "current", None)
        if current is not None:
            current.started = True
        super().request(*args, **kwargs)
        if current is not None:
            current.sent = True

    def _sls_release_guard(self) -> None:
        if self._sls_guard is not None:
            self._sls_guard.close()
            self._sls_guard = None

    def close(self) -> None:
        super().close()
        with _lock:
            # http.client closes the connection as soon as the headers say it will close, handing
            # the socket to the answer, whose body is still to be read: the try's end releases it.
            if self._sls_try is None:
                self._sls_release_guard()


class _WatchedHTTPS(_Watched, HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _Watched  # plain HTTP needs nothing more than the watched base


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


# urllib3's documented way to choose a pool's connection class is the pool class's ``ConnectionCls``;
# a PoolManager picks pool classes by scheme from ``pool_classes_by_scheme``. Setting it on this one
# manager (not on urllib3's classes) keeps every other urllib3 user in the process untouched.
def watch_pool(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    """``manager``, making its connections obey the :class:`Try` of the thread using them."""
    manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return manager
