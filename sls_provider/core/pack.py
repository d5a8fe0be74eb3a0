"""Packing: encoded rows -> request bodies as full as the PutWebTracking limits allow.

One request carries one topic (and one source and tag set), at most ``max_logs`` logs and at most
``max_bytes`` of uncompressed body, envelope included. A request is cut only when the next row would
not fit, so rows of a topic go out in order in the fewest requests in-order packing allows. Each
topic has one open request; when many topics are open at once, the largest are sent early so the
memory held stays bounded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from sls_provider.core.encode import EncodedRows
from sls_provider.core.errors import SlsInputError

MAX_LOGS = 4096
MAX_BYTES = 3 * 1024 * 1024  # SLS counts MB as 1024 * 1024 bytes, like its official SDKs
MAX_NAME_BYTES = 128
#: Tags that identify each request of an export, so the rare duplicate can be found with a query.
EXPORT_TAG = "sls_export"
SEQ_TAG = "sls_seq"
_SEQ_WIDTH = 12  # room reserved in the envelope for the sequence number
#: Bytes held in open requests across topics before the largest are sent early.
MAX_PENDING_BYTES = 64 * 1024 * 1024


def check_limits(*, max_logs: int, max_bytes: int) -> None:
    """The request limits an export may ask for (the one check, used by ``ExportOptions`` too)."""
    if isinstance(max_logs, bool) or not isinstance(max_logs, int) or not 1 <= max_logs <= MAX_LOGS:
        raise SlsInputError(f"max_logs must be between 1 and {MAX_LOGS} (an integer), got {max_logs!r}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not 1024 <= max_bytes <= MAX_BYTES:
        raise SlsInputError(f"max_bytes must be between 1024 and {MAX_BYTES} (an integer), got {max_bytes!r}")


@dataclass(frozen=True)
class Request:
    """One PutWebTracking request, uncompressed. ``seq`` numbers the export's requests from 0."""

    seq: int
    topic: str
    body: bytes
    logs: int


def _check_utf8(what: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SlsInputError(
            f"The {what} {value!r} is not valid UTF-8 (a lone surrogate); SLS refuses it (InvalidEncoding)."
        ) from None


def _check_name(what: str, value: str) -> None:
    _check_utf8(what, value)
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise SlsInputError(f"The {what} {value[:40]!r}... is over {MAX_NAME_BYTES} bytes, the SLS limit.")


@dataclass
class _OpenRequest:
    parts: list[bytes | memoryview] = field(default_factory=list)
    logs: int = 0
    size: int = 0  # bytes of the rows joined by commas


class Packer:
    """Cut rows into requests.

    :param source: ``__source__`` of every request; ``None`` leaves it out, and the service records
        the client's IP address instead.
    :param tags: ``__tags__`` of every request (string values).
    :param export_id: when given, each request also carries tags ``sls_export`` (this id) and
        ``sls_seq`` (its sequence number).
    :param max_logs: logs per request, at most 4096.
    :param max_bytes: uncompressed body bytes per request, at most 3 MiB.
    :param max_pending_bytes: bytes held in open requests across topics before the largest are sent.
    """

    def __init__(
        self,
        *,
        source: str | None,
        tags: Mapping[str, str] | None = None,
        export_id: str | None = None,
        max_logs: int = MAX_LOGS,
        max_bytes: int = MAX_BYTES,
        max_pending_bytes: int = MAX_PENDING_BYTES,
    ) -> None:
        check_limits(max_logs=max_logs, max_bytes=max_bytes)
        if max_pending_bytes < 0:
            raise SlsInputError(f"max_pending_bytes must be 0 or more, got {max_pending_bytes}")
        if source is not None:
            if not isinstance(source, str):
                raise SlsInputError(f"source must be a string (or None), got {type(source).__name__}")
            _check_name("source", source)
        self._source = source
        if tags is not None and not isinstance(tags, Mapping):
            raise SlsInputError(f"tags must be a mapping of strings to strings, got {type(tags).__name__}")
        self._tags = dict(tags or {})
        for key, value in self._tags.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise SlsInputError(f"Tags must map strings to strings; got {key!r}: {value!r}")
            if not key:
                # SLS refuses the whole request (400) for an empty tag key.
                raise SlsInputError(f"A tag key is empty (its value is {value[:40]!r}); SLS refuses it.")
            _check_utf8("tag", key)
            _check_utf8("tag", value)
        if export_id is not None:
            _check_utf8("export id", export_id)
            taken = sorted({EXPORT_TAG, SEQ_TAG} & set(self._tags))
            if taken:
                raise SlsInputError(
                    f"Tag(s) {taken} are reserved for the export's own tracing tags; rename them, or "
                    "turn those tags off (trace_tags=False)."
                )
        self._export_id = export_id
        self._max_logs = max_logs
        self._max_bytes = max_bytes
        self._max_pending = max_pending_bytes
        self._open: dict[str, _OpenRequest] = {}
        self._pending = 0
        self._seq = 0
        self._budget: dict[str, int] = {}

    def _envelope(self, topic: str, seq: int | str) -> tuple[bytes, bytes]:
        tags = dict(self._tags)
        if self._export_id is not None:
            tags[EXPORT_TAG] = self._export_id
            tags[SEQ_TAG] = str(seq)
        head: dict[str, object] = {"__topic__": topic}
        if self._source is not None:
            head["__source__"] = self._source
        head["__tags__"] = tags
        text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
        return (text[:-1] + ',"__logs__":[').encode("utf-8"), b"]}"

    def row_budget(self, topic: str) -> int:
        """Bytes left for rows once the envelope (with the widest sequence number) is paid for."""
        budget = self._budget.get(topic)
        if budget is None:
            _check_name("topic", topic)
            head, tail = self._envelope(topic, "9" * _SEQ_WIDTH)
            budget = self._max_bytes - len(head) - len(tail)
            if budget < len(b"{}"):  # not even an empty row fits: the envelope is the problem
                raise SlsInputError(self._envelope_too_large(topic, len(head) + len(tail)))
            self._budget[topic] = budget
        return budget

    def _envelope_too_large(self, topic: str, envelope: int) -> str:
        tags = len(json.dumps(self._tags, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        return (
            f"The tags, topic and source of each request take {envelope:,} bytes as JSON (the tags "
            f"{tags:,}, the topic {len(topic.encode('utf-8')):,}, the source "
            f"{len((self._source or '').encode('utf-8')):,}), leaving no room for rows in a request of "
            f"at most {self._max_bytes:,} bytes (max_bytes): make the tags smaller."
        )

    def add(self, topic: str, rows: EncodedRows) -> Iterator[Request]:
        """Add rows of one topic, in order; yield each request that fills up. Every row must fit a
        request alone (the export screens them first, :mod:`sls_provider.core.screen`)."""
        budget = self.row_budget(topic)
        ends = rows.ends
        starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else ends
        # Rows are comma-separated already: a run of rows is one slice, and a request's body is one
        # join of the envelope and its slices.
        data = memoryview(rows.data)
        i, n = 0, len(ends)
        while i < n:
            current = self._open.setdefault(topic, _OpenRequest())
            room = budget - current.size - (1 if current.logs else 0)
            # Rows i..j-1 joined by one separator each take ends[j-1] - starts[i] bytes.
            j = int(np.searchsorted(ends, int(starts[i]) + room, side="right"))
            j = min(j, i + self._max_logs - current.logs, n)
            if j <= i:
                size = int(ends[i] - starts[i])
                if size > budget:
                    # Rows are screened before packing (sls_provider.core.screen): a bug if reached.
                    raise SlsInputError(
                        f"A row of topic {topic!r} is {size:,} bytes as JSON; a request holds at most "
                        f"{budget:,} bytes of rows ({self._max_bytes:,} with its envelope)."
                    )
                yield self._flush(topic)  # the row fits an empty request, so this one holds rows
                continue
            part = data[int(starts[i]) : int(ends[j - 1])]
            current.parts.append(part)
            added = len(part) + (1 if current.logs else 0)
            current.size += added
            self._pending += added
            current.logs += j - i
            i = j
            if current.logs >= self._max_logs:
                yield self._flush(topic)
        left = self._open.get(topic)
        if left is not None:
            # What stays open is copied out, so the chunk's buffer is not kept alive by it.
            left.parts = [bytes(p) for p in left.parts]
        while self._pending > self._max_pending and self._open:
            largest = max(self._open, key=lambda t: self._open[t].size)
            yield self._flush(largest)

    def _flush(self, topic: str) -> Request:
        current = self._open.pop(topic)
        self._pending -= current.size
        head, tail = self._envelope(topic, self._seq)
        pieces: list[bytes | memoryview] = [head]
        for k, part in enumerate(current.parts):
            if k:
                pieces.append(b",")
            pieces.append(part)
        pieces.append(tail)
        body = b"".join(pieces)
        request = Request(seq=self._seq, topic=topic, body=body, logs=current.logs)
        self._seq += 1
        return request

    def finish(self) -> Iterator[Request]:
        """Yield the requests still open (one per topic with rows pending)."""
        for topic in list(self._open):
            if self._open[topic].logs:
                yield self._flush(topic)
