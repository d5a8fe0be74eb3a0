"""Requests -> the service, on a few threads, with a bounded number in flight and the resume ledger.

The calling thread submits each request to ``workers`` sending threads and blocks while
:attr:`Sender.max_in_flight` are submitted and not yet finished, so at most that many request bodies
are held, whatever the export's size. Completions are handled in the calling thread, which keeps the
ledger and the caller's accounting free of locks. After a final error, requests not yet started are
not sent, and those on the wire finish, so their acknowledgements reach the ledger.

When the export's :class:`~sls_provider.core.stop.StopSignal` is set (Airflow's ``on_kill``), or the
calling thread gets any ``BaseException`` (``AirflowTaskTimeout``), the sender stops: no request
starts, waits end, and the requests on the wire get :data:`~sls_provider.core.stop.STOP_GRACE`
seconds before their tries are cut; the sending threads are then left to end on their own, never
waited for without a bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from sls_provider.core.errors import SlsStoppedError
from sls_provider.core.ledger import Ledger
from sls_provider.core.pack import Request
from sls_provider.core.stop import POLL, StopSignal

__all__ = ["IN_FLIGHT_PER_WORKER", "Sender"]

log = logging.getLogger(__name__)

#: Requests in flight per sending thread: one on the wire and one ready, so a thread never waits
#: for the packer.
IN_FLIGHT_PER_WORKER = 2


class Sender:
    """Sends requests in order of submission, at most :attr:`max_in_flight` at once.

    :param send: sends one request and returns its compressed size in bytes, or raises; runs on a
        sending thread. ``None``: the request was put aside (a dead letter): not acknowledged, not
        counted, and recorded in the ledger as not sent.
    :param workers: sending threads.
    :param ledger: requests acknowledged by earlier tries are skipped; every request is recorded
        as sending, then acknowledged or not sent.
    :param on_acked: ``(request, sent_bytes)`` for each request acknowledged by the service, or
        skipped as acknowledged earlier (``sent_bytes`` is 0 then); called on the calling thread.
    :param on_resumed: ``(request)`` for each request skipped because an earlier try delivered it.
    :param on_submitted: called on the calling thread after each request is submitted (progress).
    :param stop: the export's stop signal (``None``: one of its own, set by a ``BaseException``).
    """

    def __init__(
        self,
        send: Callable[[Request], int | None],
        *,
        workers: int,
        ledger: Ledger | None = None,
        on_acked: Callable[[Request, int], None],
        on_resumed: Callable[[Request], None] = lambda request: None,
        on_submitted: Callable[[], None] = lambda: None,
        stop: StopSignal | None = None,
    ) -> None:
        self._send_one = send
        self.workers = workers
        #: requests submitted and not finished, at most
        self.max_in_flight = IN_FLIGHT_PER_WORKER * workers
        self.ledger = ledger
        self._on_acked = on_acked
        self._on_resumed = on_resumed
        self._on_submitted = on_submitted
        self._stopping = threading.Event()
        self.stop = stop if stop is not None else StopSignal()

    def run(self, requests: Iterable[Request]) -> None:
        """Send every request; raise the first final error once the requests in flight finished
        (or, when stopping, once they finished or their grace ran out)."""
        ledger = self.ledger
        in_flight: dict[Future[int | None], Request] = {}
        # Not a with-block: its exit would wait for every sending thread, without a bound.
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sls-send")
        try:
            for request in requests:
                if self.stop.is_set():
                    raise self.stop.error()
                if ledger is not None and ledger.is_acked(request):
                    self._on_acked(request, 0)
                    self._on_resumed(request)
                    continue
                while len(in_flight) >= self.max_in_flight:
                    self._collect(in_flight, FIRST_COMPLETED)
                if ledger is not None:
                    ledger.sending(request)  # on record before it can reach the service
                in_flight[pool.submit(self._send, request)] = request
                self._on_submitted()
            while in_flight:
                self._collect(in_flight, FIRST_COMPLETED)
        except BaseException as err:
            # A final error lets what is on the wire finish, so its acknowledgements reach the
            # ledger; a stop (on_kill, a timeout, any BaseException here) gives it a grace only.
            if not isinstance(err, Exception):
                self.stop.set(err)
            self._stopping.set()
            for future in in_flight:
                future.cancel()
            until = self._grace_until() if self.stop.is_set() else None
            try:
                self._collect(in_flight, None, raise_error=False, until=until)
            except Exception as flush_error:  # noqa: BLE001 - the export's own error is raised
                log.warning("The resume ledger could not be saved: %s", flush_error)
            # Threads still running after a stop end when their tries are cut: not waited for.
            pool.shutdown(wait=not self.stop.is_set(), cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _send(self, request: Request) -> int | None:
        """Runs on a sending thread. After a final failure, requests not yet started are not sent."""
        if self._stopping.is_set() or self.stop.is_set():
            return None
        try:
            return self._send_one(request)
        except BaseException:
            self._stopping.set()
            raise

    def _grace_until(self) -> float:
        """After a stop: cut the tries on the wire, and give them until their grace ends."""
        self.stop.cut_tries()
        return (self.stop.deadline() or time.monotonic()) + 2 * POLL

    def _collect(
        self,
        in_flight: dict[Future[int | None], Request],
        when: str | None,
        *,
        raise_error: bool = True,
        until: float | None = None,
    ) -> None:
        """Wait for in-flight requests (the first to finish, or all when ``when`` is None, or what
        finished by ``until``); account for those done, then raise the first error among them.
        Waits in short steps, so a stop set by a signal handler is seen at once."""
        while True:
            timeout = POLL if until is None else max(0.0, min(POLL, until - time.monotonic()))
            done, _ = wait(list(in_flight), timeout=timeout, return_when=when or "ALL_COMPLETED")
            if done and (when is not None or len(done) == len(in_flight)):
                break
            if not in_flight or (until is not None and time.monotonic() >= until):
                break
            if self.stop.is_set():
                if raise_error:
                    break  # what finished is accounted for below, then the stop is raised
                if until is None:  # stopped while finishing after a final error: a grace only
                    until = self._grace_until()
        failure: BaseException | None = None
        ledger = self.ledger
        for future in done:
            request = in_flight.pop(future)
            error = None if future.cancelled() else future.exception()
            if isinstance(error, SlsStoppedError):
                if not error.sent and ledger is not None:
                    ledger.not_sent(request)  # no try of it went out
                failure = failure or error
                continue
            if error is not None:
                failure = failure or error
                continue
            sent_bytes = None if future.cancelled() else future.result()
            # Cancelled or not started (the export is stopping), or put aside by the send (a
            # dead letter): not sent, for the summary and the ledger alike.
            if sent_bytes is None:
                if ledger is not None:
                    ledger.not_sent(request)
                continue
            self._on_acked(request, sent_bytes)
            if ledger is not None:
                ledger.record(request)
        # Persisted as soon as requests are acknowledged: one small write to Airflow's state store
        # per completed batch of requests, against a request's megabytes sent.
        if ledger is not None:
            ledger.flush()
        if not raise_error:
            return
        if self.stop.is_set() and (failure is None or isinstance(failure, SlsStoppedError)):
            raise self.stop.error()  # the reason the export was stopped, not a request's echo of it
        if failure is not None:
            raise failure
