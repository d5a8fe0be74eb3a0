"""Rows an export does not send, kept rather than only counted: what a record holds, which refusals
put a request's rows aside, and the ``max_bad_rows`` limit. Where records go is the caller's
:class:`DeadLetterSink` (the hook's writes through Airflow's ``ObjectStoragePath``), so the core stays
free of Airflow.

A record is one line of NDJSON: ``reason``, ``export_id``, ``topic``, the row's position (``row``: its
input row number, for a row left out before packing; ``request`` and ``index``: its request's number
and its place in it, for the rows of a refused request), ``error_code`` for a refusal, and ``log``: the
row exactly as it would have been sent (JSON object of key -> string). NDJSON because a line is a
whole record (a file cut short still reads), every tool reads it (``pandas.read_json(lines=True)``,
``polars.read_ndjson``, ``jq``), and ``log`` is the encoder's own JSON, embedded unchanged: the rows
load back into ``put_logs``.

Files have names fixed by what they hold (``skipped-{first input row}.ndjson`` per chunk,
``refused-{request number}.ndjson`` per request) under a folder named by the export id, and are
written whole: a retried task, which keeps its export id, rewrites the same files instead of adding
records a second time.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Protocol

from sls_provider.core.errors import SlsServiceError
from sls_provider.core.pack import Request

__all__ = ["REFUSED_CODES", "DeadLetterSink", "DeadLetters"]

log = logging.getLogger(__name__)

#: Answers refusing a request for its content (HTTP 400): sending it again cannot succeed, and the
#: rest of the export is not concerned. Refusals of the target or the credentials (404, 403, a bad
#: Host or API version) are not here: they would refuse every request, and fail the export.
REFUSED_CODES = frozenset({"PostBodyInvalid", "PostBodyTooLarge", "InvalidEncoding", "InvalidKey"})


class DeadLetterSink(Protocol):
    """Where dead letters go. ``location`` names it in the summary; ``write`` replaces one file."""

    location: str

    def write(self, name: str, lines: Sequence[bytes]) -> None: ...


def _record(fields: dict[str, object], log_json: bytes) -> bytes:
    # The row's JSON is embedded as encoded, not parsed and dumped again: it is what would have gone.
    head = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return head[:-1].encode("utf-8") + b',"log":' + log_json + b"}"


class DeadLetters:
    """One export's dead letters: turns rows into records, writes them to ``sink``, counts them, and
    keeps ``max_bad_rows``. Thread-safe (refusals are handled on the sending threads).

    :param sink: where the records go.
    :param export_id: written in every record.
    :param max_bad_rows: rows of refused requests that may be put aside; one more fails the export
        (``0``: a refusal fails it, as without dead letters).
    """

    def __init__(self, sink: DeadLetterSink, *, export_id: str, max_bad_rows: int) -> None:
        self.sink = sink
        self.export_id = export_id
        self.max_bad_rows = max_bad_rows
        self._lock = threading.Lock()
        #: rows written to the sink, and rows of refused requests among them
        self.rows = 0
        self.bad_rows = 0

    def skipped(self, first_row: int, rows: Sequence[tuple[str, int, str, bytes]]) -> None:
        """Rows of the chunk starting at input row ``first_row`` left out before packing:
        ``(topic, input row, reason, row JSON)`` each."""
        if not rows:
            return
        lines = [
            _record(
                {
                    "reason": f"too large to send, skipped: {why}",
                    "export_id": self.export_id,
                    "topic": topic,
                    "row": row,
                },
                text,
            )
            for topic, row, why, text in rows
        ]
        self.sink.write(f"skipped-{first_row:012d}.ndjson", lines)
        with self._lock:
            self.rows += len(lines)

    def refused(self, request: Request, error: SlsServiceError) -> bool:
        """Put the rows of ``request`` aside after ``error``; ``False`` when this refusal is not one to
        put aside, or would pass ``max_bad_rows`` (the caller then fails the export as before)."""
        if error.status != 400 or error.error_code not in REFUSED_CODES:
            return False
        with self._lock:
            if self.bad_rows + request.logs > self.max_bad_rows:
                return False
            self.bad_rows += request.logs
        reason = f"refused by SLS: {error.status} {error.error_code}: {error.error_message or error}"
        logs = json.loads(request.body)["__logs__"]
        lines = [
            _record(
                {
                    "reason": reason,
                    "export_id": self.export_id,
                    "topic": request.topic,
                    "request": request.seq,
                    "index": i,
                    "error_code": error.error_code,
                },
                json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
            )
            for i, row in enumerate(logs)
        ]
        self.sink.write(f"refused-{request.seq:08d}.ndjson", lines)
        with self._lock:
            self.rows += len(lines)
        log.warning(
            "Request #%d (%d row(s) of topic %r) %s: its rows are put aside in %s (%d of max_bad_rows=%d)",
            request.seq,
            request.logs,
            request.topic,
            reason,
            self.sink.location,
            self.bad_rows,
            self.max_bad_rows,
        )
        return True
