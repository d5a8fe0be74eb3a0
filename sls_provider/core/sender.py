"""Requests -> the service, on a few threads, with a bounded number in flight and the resume ledger.

The calling thread submits each request to ``workers`` sending threads and blocks while
:attr:`Sender.max_in_flight` are submitted and not yet finished, so at most that many request bodies
are held, whatever the export's size. Completions are handled in the calling thread, which keeps the
ledger and the caller's accounting free of locks. After a final error, requests not yet started are
not sent, and those on the wire finish, so their acknowledgements reach the ledger.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from sls_provider.core.ledger import Ledger
from sls_provider.core.pack import Request

__all__ = ["IN_FLIGHT_PER_WORKER", "Sender"]

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

    @property
    def stopping(self) -> bool:
        """A request failed for good: requests not yet started are not sent."""
        return self._stopping.is_set()

    def run(self, requests: Iterable[Request]) -> None:
        """Send every request; raise the first final error once the requests in flight finished."""
        ledger = self.ledger
        in_flight: dict[Future[int | None], Request] = {}
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sls-send") as pool:
            try:
                for request in requests:
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
            except BaseException:
                # Let what is already on the wire finish, so its acknowledgements reach the ledger.
                self._stopping.set()
                for future in in_flight:
                    future.cancel()
                self._collect(in_flight, None, raise_error=False)
                raise

    def _send(self, request: Request) -> int | None:
        """Runs on a sending thread. After a final failure, requests not yet started are not sent."""
        if self._stopping.is_set():
            return None
        try:
            return self._send_one(request)
        except BaseException:
            self._stopping.set()
            raise

    def _collect(
        self, in_flight: dict[Future[int | None], Request], when: str | None, *, raise_error: bool = True
    ) -> None:
        """Wait for in-flight requests (the first to finish, or all when ``when`` is None); account
        for those done, then raise the first error among them."""
        done, _ = wait(list(in_flight), return_when=when or "ALL_COMPLETED")
        failure: BaseException | None = None
        ledger = self.ledger
        for future in done:
            request = in_flight.pop(future)
            error = None if future.cancelled() else future.exception()
            if error is not None:
                failure = failure or error
                continue
            sent_bytes = None if future.cancelled() else future.result()
            if sent_bytes is None:  # cancelled, or not started: the export is stopping
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
        if failure is not None and raise_error:
            raise failure
