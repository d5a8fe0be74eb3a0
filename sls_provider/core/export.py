"""An export: DataFrame chunks -> topics -> encoded rows -> requests -> concurrent sends -> summary.

Data flows one way. The calling thread reads chunks, encodes and packs them, and hands each full
request to a thread pool; at most ``2 * max_workers`` requests are in flight, so memory is bounded by
the chunk size plus that many request bodies, whatever the table size. Completions are handled in
the calling thread, which keeps the summary and the resume ledger free of locks (but the retry count,
which the client reports from worker threads).
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from sls_provider.core.client import Sent, WebTrackingClient, is_throttle
from sls_provider.core.congestion import SendController
from sls_provider.core.encode import EncodedRows, arrow_column_text, column_text, encode_arrow, encode_frame
from sls_provider.core.errors import SlsInputError, SlsServiceError
from sls_provider.core.keys import KEY_POLICIES, resolve_keys
from sls_provider.core.ledger import Ledger
from sls_provider.core.pack import MAX_BYTES, MAX_LOGS, ON_OVERSIZE, Packer, Request

log = logging.getLogger(__name__)

__all__ = [
    "MAX_VALUE_BYTES",
    "ExportOptions",
    "ExportSummary",
    "Exporter",
    "frames_from_records",
    "frames_from_rows",
]
MAX_VALUE_BYTES = 1024 * 1024
#: Chunks encoded at once. Encoding is the longest step; two threads keep two cores busy.
ENCODERS = 2
#: Seconds an export may go without any acknowledged request while refused for quota.
DEFAULT_STALL_TIMEOUT = 300.0


@dataclass(frozen=True)
class ExportOptions:
    """How rows become requests.

    :param topic: ``__topic__`` of every row, unless ``topic_column`` is given.
    :param topic_column: a column whose value is each row's topic (null -> ``""``); the column
        itself is not sent.
    :param source: ``__source__`` of every request; ``None`` leaves it out and the service records
        the sender's IP address (the same bodies from any worker, so a retry elsewhere can resume).
    :param tags: ``__tags__`` of every request.
    :param key_policy: ``"strict"`` (bad column names fail the export) or ``"sanitize"``.
    :param on_oversize: ``"fail"`` or ``"skip"`` a row too large for a request on its own.
    :param max_logs: logs per request (at most 4096).
    :param max_bytes: uncompressed bytes per request, envelope included (at most 3 MiB).
    :param max_value_bytes: bytes of one value (1 MiB: SLS's documented limit for a value).
    :param max_workers: concurrent requests.
    :param export_id: tags every request (``sls_export``/``sls_seq``) so duplicates can be found;
        ``None`` -> a random id.
    :param max_requests_per_second: cap on this export's requests/s (attempts included). Not needed
        to share a logstore's write quota: every export adapts its pace to the service's answers.
    :param max_mb_per_second: cap on this export's compressed MB/s (a shard takes about 5 MB/s).
    :param stall_timeout: seconds without a single acknowledged request, while the service refuses
        writes for quota, after which the export fails (``None``: 300, or the hook's setting).
    :param trace_tags: send those two tags (turn off only if the logstore's tags must stay as given).
    :param progress_interval: seconds between progress log lines.
    """

    topic: str = ""
    topic_column: str | None = None
    source: str | None = None
    tags: Mapping[str, str] | None = None
    key_policy: str = "strict"
    on_oversize: str = "fail"
    max_logs: int = MAX_LOGS
    max_bytes: int = MAX_BYTES
    max_value_bytes: int = MAX_VALUE_BYTES
    max_workers: int = 4
    export_id: str | None = None
    trace_tags: bool = True
    max_requests_per_second: float | None = None
    max_mb_per_second: float | None = None
    progress_interval: float = 30.0
    stall_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.key_policy not in KEY_POLICIES:
            raise SlsInputError(f"key_policy must be one of {KEY_POLICIES}, got {self.key_policy!r}")
        if self.on_oversize not in ON_OVERSIZE:
            raise SlsInputError(f"on_oversize must be one of {ON_OVERSIZE}, got {self.on_oversize!r}")
        if not isinstance(self.max_workers, int) or not 1 <= self.max_workers <= 64:
            raise SlsInputError(f"max_workers must be an integer from 1 to 64, got {self.max_workers!r}")
        if not 1 <= self.max_logs <= MAX_LOGS:
            raise SlsInputError(f"max_logs must be between 1 and {MAX_LOGS}, got {self.max_logs}")
        if not 1024 <= self.max_bytes <= MAX_BYTES:
            raise SlsInputError(f"max_bytes must be between 1024 and {MAX_BYTES}, got {self.max_bytes}")
        for name in ("max_requests_per_second", "max_mb_per_second", "stall_timeout"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise SlsInputError(f"{name} must be positive, got {value!r}")
        if self.stall_timeout is not None and not self.stall_timeout < float("inf"):
            raise SlsInputError(
                f"stall_timeout must be a finite number of seconds, got {self.stall_timeout!r}"
            )
        if not isinstance(self.topic, str):
            raise SlsInputError(f"topic must be a string, got {type(self.topic).__name__}")


@dataclass
class ExportSummary:
    """What an export did. ``rows`` counts rows the service acknowledged (this try and earlier ones
    of the same export); ``topics`` maps each topic to its rows."""

    rows: int = 0
    requests: int = 0
    raw_bytes: int = 0
    sent_bytes: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    skipped_rows: int = 0
    retries: int = 0
    #: retries after a failure the service may have stored anyway (lost answer, 5xx): each can leave
    #: one duplicate request, findable by its ``sls_export``/``sls_seq`` tags. With a ledger, also the
    #: requests earlier tries had in flight when they died, which this one sends again.
    possible_duplicates: int = 0
    resumed_requests: int = 0
    resumed_rows: int = 0
    export_id: str | None = None
    seconds: float = 0.0
    #: answers refusing a request for the write quota (403 quota codes, 429): retried, not failures
    throttled: int = 0
    #: seconds during which some request of the export waited to be retried after such an answer
    throttled_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def mb_per_second(self) -> float:
        """Compressed MB sent per second (what a write quota counts)."""
        return self.sent_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{self.rows:,} rows in {self.requests:,} requests to {len(self.topics)} topic(s), "
            f"{size(self.raw_bytes)} raw, {size(self.sent_bytes)} sent, "
            f"{self.seconds:,.1f} s ({rate:,.0f} rows/s, {self.mb_per_second:,.2f} MB/s sent)"
        )
        if self.throttled:
            text += (
                f"; throttled: {self.throttled:,} answer(s) over the write quota, "
                f"{self.throttled_seconds:,.1f} s throttled"
            )
        extras = {
            "skipped oversize rows": self.skipped_rows,
            "retries": self.retries,
            "possible duplicate requests": self.possible_duplicates,
            "requests already stored by an earlier try": self.resumed_requests,
        }
        return text + "".join(f"; {name}: {value:,}" for name, value in extras.items() if value)


def size(nbytes: float) -> str:
    """Bytes in the unit that fits: ``512 B``, ``12.3 KB``, ``4.5 MB``, ``1.2 GB`` (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{int(nbytes):,} B"


class _RetryCounter:
    """Counts retries reported by the client from its worker threads (refusals for quota are the
    controller's to count: they are throttling, not faults)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retries = 0
        self.ambiguous = 0

    def __call__(self, error: SlsServiceError) -> None:
        if is_throttle(error):
            log.debug("Throttled, retrying: %s", error)
            return
        # A 5xx may come after the service stored the logs, like a lost answer.
        maybe_stored = error.ambiguous or (error.status is not None and error.status >= 500)
        with self._lock:
            self.retries += 1
            self.ambiguous += maybe_stored
        log.warning("Retrying: %s", error)


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
    """

    def __init__(
        self, client: WebTrackingClient, options: ExportOptions, ledger: Ledger | None = None
    ) -> None:
        self.client = client
        self.options = options
        self.ledger = ledger
        self._retry = _RetryCounter()
        #: paces this export's requests from the service's answers (shared by its sending threads)
        self.controller = SendController(
            max_requests_per_second=options.max_requests_per_second,
            max_bytes_per_second=options.max_mb_per_second * 1e6 if options.max_mb_per_second else None,
            stall_timeout=options.stall_timeout or DEFAULT_STALL_TIMEOUT,
        )
        self._keys: dict[tuple, list[str]] = {}
        self._keys_lock = threading.Lock()
        if options.export_id is None:
            # Every export is tagged, so a duplicate left by an ambiguous failure can be found.
            options = replace(options, export_id=uuid.uuid4().hex[:16])
            self.options = options
        self.summary = ExportSummary(export_id=options.export_id)
        self._stopping = threading.Event()
        self._skipped = 0

    # -- rows -> requests ---------------------------------------------------------------------

    def _keys_for(self, columns: list) -> list[str]:
        signature = tuple(columns)
        # Encoder threads ask at once; resolving a column set once also logs its warnings once.
        with self._keys_lock:
            keys = self._keys.get(signature)
            if keys is None:
                keys = self._keys[signature] = resolve_keys(columns, self.options.key_policy)
        return keys

    def _topics(self, chunk: Chunk) -> tuple[Chunk, list[tuple[str, np.ndarray | None]]]:
        """Split off the topic column: the frame to encode, and (topic, row positions) groups in
        order of first appearance (``None`` positions: every row)."""
        name = self.options.topic_column
        if name is None:
            return chunk, [(self.options.topic, None)]
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

    def _screen(
        self, packer: Packer, topic: str, rows: EncodedRows, first_row: int, positions: np.ndarray | None
    ) -> EncodedRows:
        """Find rows that cannot be sent: larger than a request, or holding a value over the per-value
        limit. Fail naming them before a single request of their chunk is sent, or, with
        ``on_oversize="skip"``, drop and count them."""
        if not len(rows):
            return rows
        sizes = np.diff(rows.ends, prepend=-1) - 1
        budget = packer.row_budget(topic)
        limit = self.options.max_value_bytes
        # A value can only be over the limit in a row whose whole JSON is: check those rows alone.
        suspects = np.flatnonzero(sizes > min(budget, limit))
        reasons: dict[int, str] = {}
        for i in suspects.tolist():
            if sizes[i] > budget:
                reasons[i] = f"is {int(sizes[i]):,} bytes as JSON, over the {budget:,} a request holds"
                continue
            for key, value in json.loads(rows.row(i)).items():
                if len(value.encode("utf-8")) > limit:
                    reasons[i] = f"has a value of {len(value.encode('utf-8')):,} bytes in {key!r}"
                    break
        if not reasons:
            return rows

        def where(i: int) -> int:
            return first_row + int(positions[i] if positions is not None else i)

        if self.options.on_oversize == "skip":
            self._skipped += len(reasons)
            log.warning(
                "Skipping %d row(s) of topic %r that cannot be sent: %s",
                len(reasons),
                topic,
                "; ".join(f"row {where(i):,} {why}" for i, why in list(reasons.items())[:5]),
            )
            keep = np.setdiff1d(np.arange(len(rows)), np.fromiter(reasons, dtype=np.int64))
            return rows.take(keep)
        listed = "; ".join(
            f"row {where(i):,} (topic {topic!r}) {why}" for i, why in list(reasons.items())[:5]
        )
        raise SlsInputError(
            f"{len(reasons):,} row(s) cannot be sent: {listed}. A request holds at most {budget:,} bytes "
            f"of rows ({self.options.max_bytes:,} with its envelope) and a value at most {limit:,} "
            f"bytes. Shorten them, or pass on_oversize='skip' to leave them out (they are counted)."
        )

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

    def requests(self, chunks: Iterable[pd.DataFrame], packer: Packer) -> Iterator[Request]:
        """Every request of the export, in sequence order."""
        for first_row, parts in self._encoded(chunks):
            screened = [(t, self._screen(packer, t, rows, first_row, pos)) for t, rows, pos in parts]
            for topic, rows in screened:
                yield from packer.add(topic, rows)
        yield from packer.finish()

    # -- requests -> service ------------------------------------------------------------------

    def run(self, chunks: Iterable[pd.DataFrame]) -> ExportSummary:
        """Send every row of ``chunks``; return the summary, or raise the first final error after
        the requests in flight have finished (so the ledger knows everything acknowledged)."""
        options = self.options
        packer = Packer(
            source=options.source,
            tags=options.tags,
            export_id=options.export_id if options.trace_tags else None,
            max_logs=options.max_logs,
            max_bytes=options.max_bytes,
            on_oversize=options.on_oversize,
        )
        # Every chunk allocates many short-lived objects; without this each collection also walks
        # the hundreds of thousands of long-lived objects Airflow keeps (about half the CPU of a
        # SQL read, measured with py-spy). Unfrozen again at the end.
        gc.freeze()
        started = last_report = time.monotonic()
        summary = self.summary
        in_flight: dict[Future[Sent | None], Request] = {}
        failure: BaseException | None = None
        pool = ThreadPoolExecutor(max_workers=options.max_workers, thread_name_prefix="sls-send")
        try:
            for request in self.requests(chunks, packer):
                if self.ledger is not None and self.ledger.is_acked(request):
                    self._count(request, sent_bytes=0)
                    summary.resumed_requests += 1
                    summary.resumed_rows += request.logs
                    continue
                while len(in_flight) >= 2 * options.max_workers:
                    failure = self._collect(in_flight, FIRST_COMPLETED)
                    if failure:
                        raise failure
                if self.ledger is not None:
                    self.ledger.sending(request)  # on record before it can reach the service
                in_flight[pool.submit(self._send, request)] = request
                if time.monotonic() - last_report >= options.progress_interval:
                    last_report = time.monotonic()
                    self._progress(started)
            while in_flight:
                failure = self._collect(in_flight, FIRST_COMPLETED)
                if failure:
                    raise failure
        except BaseException:
            # Let what is already on the wire finish, so its acknowledgements reach the ledger.
            for future in in_flight:
                future.cancel()
            self._collect(in_flight, None)
            pool.shutdown(wait=True)
            self._finish(packer, started)
            # Logged with the final figures (retries, duplicates, time), not before they are known.
            log.error("SLS export stopped after %s", self.summary.line())
            raise
        finally:
            pool.shutdown(wait=True)
            gc.unfreeze()
            self._finish(packer, started)
        log.info("SLS export done: %s", summary.line())
        if self.ledger is not None and self.ledger.mismatches:
            log.warning(
                "%d request(s) acknowledged by an earlier try differ now (the input changed between "
                "tries) and were sent again: their rows may be stored twice.",
                self.ledger.mismatches,
            )
        return summary

    def _finish(self, packer: Packer, started: float) -> None:
        """Fill in the summary's totals (and persist the ledger); safe to call twice."""
        summary = self.summary
        summary.skipped_rows = packer.skipped_rows + self._skipped
        summary.retries = self._retry.retries
        summary.possible_duplicates = self._retry.ambiguous
        if self.ledger is not None:
            # Sent by an earlier try that stopped before their answers: sent again by this one.
            summary.possible_duplicates += self.ledger.possible_duplicates
        summary.throttled = self.controller.throttled
        summary.throttled_seconds = round(self.controller.throttled_seconds, 3)
        summary.seconds = round(time.monotonic() - started, 3)
        summary.topics = dict(sorted(summary.topics.items()))
        if self.ledger is not None:
            self.ledger.flush()

    def _send(self, request: Request) -> Sent | None:
        """Runs on a worker thread. After a final failure, requests not yet started are not sent."""
        if self._stopping.is_set():
            return None
        try:
            return self.client.send(request, controller=self.controller, on_retry=self._retry)
        except BaseException:
            self._stopping.set()
            raise

    def _collect(
        self, in_flight: dict[Future[Sent | None], Request], when: str | None
    ) -> BaseException | None:
        """Wait for in-flight requests (the first to finish, or all when ``when`` is None); account
        for those done and return the first error among them."""
        done, _ = wait(list(in_flight), return_when=when or "ALL_COMPLETED")
        failure = None
        for future in done:
            request = in_flight.pop(future)
            if future.cancelled():
                if self.ledger is not None:
                    self.ledger.not_sent(request)
                continue
            error = future.exception()
            if error is not None:
                failure = failure or error
                continue
            sent = future.result()
            if sent is None:  # not started: the export is stopping
                if self.ledger is not None:
                    self.ledger.not_sent(request)
                continue
            self._count(request, sent_bytes=sent.sent_bytes)
            if self.ledger is not None:
                self.ledger.record(request)
        # Persisted as soon as requests are acknowledged: one small write to Airflow's state store
        # per completed batch of requests, against a request's megabytes sent.
        if self.ledger is not None:
            self.ledger.flush()
        return failure

    def _count(self, request: Request, *, sent_bytes: int) -> None:
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
            f"; throttled: {control.throttled:,} answer(s), {control.throttled_seconds:,.1f} s, "
            f"pacing at {(control.rate or 0) / 1e6:,.2f} MB/s"
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


def frames_from_records(records: Iterable[Mapping[str, Any]], chunksize: int) -> Iterator[pd.DataFrame]:
    """Chunks of object columns from mappings, keeping each value's own type (no int -> float for
    keys missing from some records). A key missing from a record is left out of that log."""
    batch: list[Mapping[str, Any]] = []
    for number, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise SlsInputError(f"Log #{number} is a {type(record).__name__}, not a mapping of key -> value")
        batch.append(record)
        if len(batch) >= chunksize:
            yield _object_frame(batch)
            batch = []
    if batch:
        yield _object_frame(batch)


def _object_frame(batch: list[Mapping[str, Any]]) -> pd.DataFrame:
    names: dict[Any, None] = {}
    for record in batch:
        names.update(dict.fromkeys(record))
    columns = {name: pd.Series([r.get(name) for r in batch], dtype=object) for name in names}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(batch)))


def frames_from_rows(rows: Iterable[tuple], names: list[str]) -> pd.DataFrame:
    """One chunk of object columns from DB-API rows: values keep the driver's types, so an integer
    column holding NULLs still sends ``"3"``, exactly as a DataFrame with an ``Int64`` column would."""
    rows = list(rows)
    n = len(rows)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    # fromiter into an object array: one copy, and no type inference that would turn ints into floats.
    data = {
        i: pd.Series(np.fromiter(col, dtype=object, count=n), dtype=object, copy=False)
        for i, col in enumerate(columns)
    }
    return pd.DataFrame(data, index=pd.RangeIndex(n)).set_axis(names, axis=1)
