"""An export: chunks of rows -> topics -> encoded, screened rows -> requests -> the sender -> summary.

Data flows one way. The calling thread reads chunks and hands each to ``ENCODERS`` encoding threads
(up to that many ahead), packs the encoded rows into requests (:class:`~sls_provider.core.pack.Packer`)
and gives each full request to the :class:`~sls_provider.core.sender.Sender`, which sends them on
``max_workers`` threads. What the export holds at once is bounded, whatever the table's size:

- ``ENCODERS + 1`` chunks, each as read and as encoded NDJSON (one being packed, the others being
  encoded);
- the packer's open requests: at most :data:`~sls_provider.core.pack.MAX_PENDING_BYTES` (64 MiB)
  after each chunk is packed;
- ``Sender.max_in_flight`` (``2 * max_workers``) request bodies of at most ``max_bytes`` each, plus
  one compressed copy per sending thread.

Options and the summary are in :mod:`sls_provider.core.options`, unsendable rows are found in
:mod:`sls_provider.core.screen`, and the sending loop with the resume ledger is
:mod:`sls_provider.core.sender`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeAlias

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from sls_provider.core.answers import is_throttle
from sls_provider.core.client import Sent
from sls_provider.core.congestion import SendController
from sls_provider.core.deadletter import DeadLetters, DeadLetterSink
from sls_provider.core.encode import EncodedRows, arrow_column_text, column_text, encode_arrow, encode_frame
from sls_provider.core.errors import SlsInputError, SlsRequestError, SlsServiceError, SlsSourceError
from sls_provider.core.keys import resolve_keys
from sls_provider.core.ledger import Ledger, seq_ranges
from sls_provider.core.options import (
    DEFAULT_STALL_TIMEOUT,
    MAX_VALUE_BYTES,
    ExportOptions,
    ExportSummary,
    new_export_id,
    size,
)
from sls_provider.core.pack import Packer, Request
from sls_provider.core.screen import screen
from sls_provider.core.sender import Sender
from sls_provider.core.stop import StopSignal

log = logging.getLogger(__name__)

# ExportOptions and ExportSummary are importable from here too, where they were defined before.
__all__ = [
    "MAX_VALUE_BYTES",
    "ExportOptions",
    "ExportSummary",
    "Exporter",
]
#: Chunks encoded at once. Encoding is the longest step; two threads keep two cores busy.
ENCODERS = 2


class _RetryCounter:
    """Counts retries reported by the client from its worker threads (refusals for quota are the
    controller's to count: they are throttling, not faults)."""

    def __init__(self, attempts: int | None = None) -> None:
        self._lock = threading.Lock()
        self.retries = 0
        self.ambiguous = 0
        self.attempts = attempts  # tries per request, for the log line

    def __call__(self, error: SlsServiceError) -> None:
        if is_throttle(error):
            log.debug("Throttled, retrying: %s", error)
            return
        # A 5xx may come after the service stored the logs, like a lost answer.
        maybe_stored = error.ambiguous or (error.status is not None and error.status >= 500)
        with self._lock:
            self.retries += 1
            self.ambiguous += maybe_stored
        # The client sets attempt and wait on every error it retries (throttling returned above).
        of = f" of {self.attempts}" if self.attempts else ""
        log.warning(
            "Retrying: try %s%s failed, next in %.1f s: %s", error.attempt, of, error.wait or 0.0, error
        )


class RequestSender(Protocol):
    """What an export needs of a client: :meth:`WebTrackingClient.send`'s signature (tests pass a
    fake of a few lines)."""

    def send(
        self,
        request: Request,
        *,
        controller: SendController | None = None,
        on_retry: Callable[[SlsServiceError], None] | None = None,
        stop: StopSignal | None = None,
    ) -> Sent: ...


def _given(*values: float | None) -> float:
    """The first value given (``None``: not given; a 0 is a value, refused where it is checked)."""
    return next(v for v in values if v is not None)


#: A chunk of rows as the exporter takes it: Arrow record batches are turned into tables.
Chunk: TypeAlias = pd.DataFrame | pa.Table | pl.DataFrame


def _names(chunk: Chunk) -> list:
    return list(chunk.column_names if isinstance(chunk, pa.Table) else chunk.columns)


class Exporter:
    """Runs one export through a :class:`WebTrackingClient`.

    :param client: sends the requests; may be shared with other exports (each export passes its
        own controller and retry counter with every request).
    :param options: the :class:`ExportOptions`.
    :param ledger: acknowledged requests of earlier tries, to skip; updated as requests complete.
    :param topic: ``__topic__`` of every row, unless ``topic_column`` is given.
    :param topic_column: a column whose value is each row's topic (null -> ``""``); the column
        itself is not sent.
    :param source: ``__source__`` of every request; ``None`` leaves it out and the service records
        the sender's IP address (the same bodies from any worker, so a retry elsewhere can resume).
    :param tags: ``__tags__`` of every request.
    :param export_id: tags every request (``sls_export``/``sls_seq``) so duplicates can be found;
        ``None``: a new random id (:func:`~sls_provider.core.options.new_export_id`).
    :param stall_timeout: used when ``options.stall_timeout`` is ``None`` (``None``: 300 s).
    :param dead_letters: where rows not sent are kept (``options.dead_letter`` opened by the caller);
        ``None``: they are counted and logged only.
    :param stop: the export's stop signal (``None``: a new one, :attr:`stop`): setting it stops the
        export within a few seconds (:mod:`sls_provider.core.stop`), as does any ``BaseException``
        in the calling thread.
    """

    def __init__(
        self,
        client: RequestSender,
        options: ExportOptions,
        ledger: Ledger | None = None,
        *,
        topic: str = "",
        topic_column: str | None = None,
        source: str | None = None,
        tags: Mapping[str, str] | None = None,
        export_id: str | None = None,
        stall_timeout: float | None = None,
        dead_letters: DeadLetterSink | None = None,
        stop: StopSignal | None = None,
    ) -> None:
        if not isinstance(topic, str):
            raise SlsInputError(f"topic must be a string, got {type(topic).__name__}")
        self.client = client
        self.options = options
        self.ledger = ledger
        self.topic = topic
        self.topic_column = topic_column
        self.source = source
        self.tags = tags
        # Every export is tagged, so a duplicate left by an ambiguous failure can be found.
        self.export_id = export_id if export_id is not None else new_export_id()
        self._retry = _RetryCounter(getattr(getattr(client, "retry", None), "attempts", None))
        #: set by on_kill or a BaseException: every wait of the export ends (see core/stop.py)
        self.stop = stop if stop is not None else StopSignal()
        #: paces this export's requests from the service's answers (shared by its sending threads)
        self.controller = SendController(
            max_requests_per_second=options.max_requests_per_second,
            max_bytes_per_second=options.max_mb_per_second * 1e6 if options.max_mb_per_second else None,
            stall_timeout=_given(options.stall_timeout, stall_timeout, DEFAULT_STALL_TIMEOUT),
        )
        self._log_keys: dict[tuple, list[str]] = {}
        self._log_keys_lock = threading.Lock()
        self.summary = ExportSummary(export_id=self.export_id)
        self._skipped = 0
        self._dead = (
            DeadLetters(dead_letters, export_id=self.export_id, max_bad_rows=options.max_bad_rows)
            if dead_letters is not None
            else None
        )

    # -- rows -> requests ---------------------------------------------------------------------

    def _keys_for(self, columns: list) -> list[str]:
        signature = tuple(columns)
        # Encoder threads ask at once; resolving a column set once also logs its warnings once.
        with self._log_keys_lock:
            keys = self._log_keys.get(signature)
            if keys is None:
                keys = self._log_keys[signature] = resolve_keys(columns, self.options.key_policy)
        return keys

    def _topics(self, chunk: Chunk) -> tuple[Chunk, list[tuple[str, np.ndarray | None]]]:
        """Split off the topic column: the frame to encode, and (topic, row positions) groups in
        order of first appearance (``None`` positions: every row)."""
        name = self.topic_column
        if name is None:
            return chunk, [(self.topic, None)]
        names = _names(chunk)
        if name not in names:
            raise SlsInputError(f"topic_column {name!r} is not a column of the data; columns are {names!r}")
        matches = [i for i, column in enumerate(names) if column == name]
        if len(matches) > 1:
            raise SlsInputError(
                f"topic_column {name!r} names {len(matches)} columns of the data (at positions "
                f"{matches}), so the topic of a row is ambiguous; rename all but one of them"
            )
        frame: Chunk
        if isinstance(chunk, pd.DataFrame):
            text = column_text(chunk[name], str(name)).fill_null("").to_numpy()
            frame = chunk.drop(columns=[name])
        else:
            text = arrow_column_text(chunk, str(name)).fill_null("").to_numpy()
            frame = chunk.drop_columns([name]) if isinstance(chunk, pa.Table) else chunk.drop(name)
        codes, uniques = pd.factorize(text)
        if len(uniques) == 1:
            return frame, [(str(uniques[0]), None)]
        order = np.argsort(codes, kind="stable")
        bounds = np.cumsum(np.bincount(codes, minlength=len(uniques)))[:-1]
        groups = np.split(order, bounds)
        return frame, [(str(topic), rows) for topic, rows in zip(uniques, groups, strict=True)]

    def _encode(self, chunk: Chunk, first_row: int) -> list[tuple[str, EncodedRows, Any]]:
        """One chunk -> (topic, encoded rows, their positions in the chunk) per topic. Runs on the
        encoding thread."""
        frame, groups = self._topics(chunk)
        keys = self._keys_for(_names(frame))
        try:
            encoded = (
                encode_frame(frame, keys) if isinstance(frame, pd.DataFrame) else encode_arrow(frame, keys)
            )
        except SlsInputError as err:
            # The encoder counts rows within the chunk; say where the chunk is in the input.
            raise SlsInputError(
                f"{err} (In the chunk of input rows {first_row:,} to {first_row + len(chunk) - 1:,}; "
                "row numbers above count from the chunk's first row, columns are named as sent.)"
            ) from err
        return [(topic, encoded if rows is None else encoded.take(rows), rows) for topic, rows in groups]

    def _encoded(self, chunks: Iterable[pd.DataFrame]) -> Iterator[tuple[int, list]]:
        """Encoded chunks in order, with the input row each starts at. Chunks are encoded on
        ``ENCODERS`` threads, up to that many ahead of the caller, which packs the previous one and
        reads the next meanwhile: polars releases the GIL, so the work spreads over the cores."""
        with ThreadPoolExecutor(max_workers=ENCODERS, thread_name_prefix="sls-encode") as encoder:
            pending: deque[tuple[int, Future[list]]] = deque()
            first_row = 0
            for chunk in chunks:
                if isinstance(chunk, pa.RecordBatch):
                    chunk = pa.Table.from_batches([chunk])
                if not isinstance(chunk, pd.DataFrame | pa.Table | pl.DataFrame):
                    raise SlsInputError(
                        f"Expected a pandas or polars DataFrame or an Arrow table, got {type(chunk).__name__}"
                    )
                pending.append((first_row, encoder.submit(self._encode, chunk, first_row)))
                first_row += len(chunk)
                if len(pending) > ENCODERS:
                    start, future = pending.popleft()
                    yield start, future.result()
            while pending:
                start, future = pending.popleft()
                yield start, future.result()

    def requests(self, chunks: Iterable[pd.DataFrame], packer: Packer) -> Generator[Request, None, None]:
        """Every request of the export, in sequence order."""
        options = self.options
        for first_row, parts in self._encoded(chunks):
            screened = []
            left_out: list[tuple[str, int, str, bytes]] = []
            # The whole chunk is screened before any of its rows is packed: a failure sends none.
            for topic, rows, positions in parts:

                def keep_aside(
                    row: int, why: str, text: bytes, topic: str = topic, out: list = left_out
                ) -> None:
                    out.append((topic, row, why, text))

                kept, skipped = screen(
                    rows,
                    topic=topic,
                    budget=packer.row_budget(topic),
                    max_bytes=options.max_bytes,
                    max_value_bytes=options.max_value_bytes,
                    on_oversize=options.on_oversize,
                    first_row=first_row,
                    positions=positions,
                    on_skip=keep_aside if self._dead is not None else None,
                )
                self._skipped += skipped
                screened.append((topic, kept))
            if self._dead is not None and left_out:
                self._dead.skipped(first_row, left_out)
            for topic, kept in screened:
                yield from packer.add(topic, kept)
        yield from packer.finish()

    # -- requests -> service ------------------------------------------------------------------

    def run(self, chunks: Iterable[pd.DataFrame]) -> ExportSummary:
        """Send every row of ``chunks``; return the summary, or raise the first final error after
        the requests in flight have finished (so the ledger knows everything acknowledged)."""
        options = self.options
        packer = Packer(
            source=self.source,
            tags=self.tags,
            export_id=self.export_id if options.trace_tags else None,
            max_logs=options.max_logs,
            max_bytes=options.max_bytes,
        )
        started = time.monotonic()
        last_report = [started]

        def progress() -> None:
            if time.monotonic() - last_report[0] >= options.progress_interval:
                last_report[0] = time.monotonic()
                self._progress(started)

        sender = Sender(
            self._send,
            workers=options.max_workers,
            ledger=self.ledger,
            on_acked=self._count,
            on_resumed=self._resumed,
            on_submitted=progress,
            stop=self.stop,
        )
        # Every chunk allocates many short-lived objects; without this each collection also walks
        # the hundreds of thousands of long-lived objects Airflow keeps (docs/performance.md).
        # Only when nothing is frozen yet: gc.unfreeze() thaws every frozen object of the process,
        # and whoever froze theirs before (a forking server, say) wants them kept frozen.
        froze = gc.get_freeze_count() == 0
        if froze:
            gc.freeze()
        requests = self.requests(chunks, packer)
        try:
            sender.run(requests)
        except BaseException as err:
            if not isinstance(err, Exception):
                self.stop.set(err)  # AirflowTaskTimeout, KeyboardInterrupt: nothing may wait on
            # Stops the reading now (the read-ahead thread and the encoders), not when the
            # traceback that holds the generator is freed.
            requests.close()
            self._finish(started, failing=True)
            # Logged with the final figures (retries, duplicates, time), not before they are known.
            if isinstance(err, SlsSourceError):
                # Whose failure it is comes first: the lines before this one all name SLS.
                log.error(
                    "The warehouse query failed, not SLS: the export stopped after %s", self.summary.line()
                )
            else:
                log.error("SLS export stopped after %s", self.summary.line())
            raise
        finally:
            if froze:
                gc.unfreeze()
        self._finish(started)
        # An empty export says so in the summary line; the operator adds a warning naming the source.
        nothing = "" if self.summary.rows else "nothing sent, no rows to send: "
        log.info("SLS export done: %s%s", nothing, self.summary.line())
        if self.ledger is not None and self.ledger.mismatches:
            log.warning(
                "%d request(s) acknowledged by an earlier try differ now (the input changed between "
                "tries) and were sent again (sls_seq %s of export %s, %d rows): the rows the earlier "
                "try stored in them were sent again in other requests, so up to about that many rows "
                "may be stored twice, under different sls_seq (docs/reliability.md says how to find them).",
                self.ledger.mismatches,
                seq_ranges(self.ledger.mismatched_seqs),
                self.export_id,
                self.ledger.mismatched_rows,
            )
        return self.summary

    def _finish(self, started: float, *, failing: bool = False) -> None:
        """Fill in the summary's totals (and persist the ledger; when ``failing``, a ledger that
        cannot be written is logged, so the export's own error is the one raised)."""
        summary = self.summary
        summary.skipped_rows = self._skipped
        if self._dead is not None:
            summary.dead_letter_rows = self._dead.rows
            summary.dead_letter_path = self._dead.sink.location
        summary.retries = self._retry.retries
        # Unanswered tries count only if the endpoint ever answered: one that never did is no SLS
        # that could have stored them (a firewall, a wrong port...).
        summary.possible_duplicates = self._retry.ambiguous if self.controller.may_have_stored() else 0
        if self.ledger is not None:
            # Sent by an earlier try that stopped before their answers: sent again by this one.
            summary.possible_duplicates += self.ledger.possible_duplicates
            summary.changed_requests = self.ledger.mismatches
            summary.changed_rows = self.ledger.mismatched_rows
        summary.throttled = self.controller.throttled
        summary.throttled_seconds = round(self.controller.throttled_time(), 3)
        summary.throttled_answers = dict(sorted(self.controller.throttle_answers.items()))
        summary.seconds = round(time.monotonic() - started, 3)
        summary.topics = dict(sorted(summary.topics.items()))
        if self.ledger is None:
            return
        try:
            self.ledger.flush()
        except Exception as err:
            if not failing:
                raise
            # Airflow may refuse the write of a task it has already marked failed.
            log.warning("The resume ledger could not be saved: %s: %s", type(err).__name__, err)

    def _send(self, request: Request) -> int | None:
        """Runs on a sending thread: the compressed bytes the service acknowledged, or ``None`` for a
        request refused for its content and put aside (not counted as sent; the ledger keeps it unsent)."""
        try:
            return self.client.send(
                request, controller=self.controller, on_retry=self._retry, stop=self.stop
            ).sent_bytes
        except SlsRequestError as error:
            if self._dead is None or not self._dead.refused(request, error):
                raise
            return None

    def _resumed(self, request: Request) -> None:
        self.summary.resumed_requests += 1
        self.summary.resumed_rows += request.logs

    def _count(self, request: Request, sent_bytes: int) -> None:
        summary = self.summary
        summary.rows += request.logs
        summary.requests += 1
        summary.raw_bytes += len(request.body)
        summary.sent_bytes += sent_bytes
        summary.topics[request.topic] = summary.topics.get(request.topic, 0) + request.logs

    def _progress(self, started: float) -> None:
        s = self.summary
        elapsed = time.monotonic() - started
        control = self.controller
        throttled = (
            f"; throttled: {control.throttled:,} answer(s), {control.throttled_time():,.1f} s, "
            f"pacing at {(control.rate or 0) / 1e6:,.2f} MB/s raw"
            if control.throttled
            else ""
        )
        log.info(
            "SLS export: %s rows in %s requests, %s raw, %s sent, %s rows/s, %s MB/s sent%s",
            f"{s.rows:,}",
            f"{s.requests:,}",
            size(s.raw_bytes),
            size(s.sent_bytes),
            f"{s.rows / elapsed:,.0f}" if elapsed else "-",
            f"{s.sent_bytes / 1e6 / elapsed:,.2f}" if elapsed else "-",
            throttled,
        )
