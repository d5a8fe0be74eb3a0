"""The emulated service behind the HTTP layer: the shared state, the ``/track`` rules, GetLogs
selection and the record of requests.

``EmulatorState`` is what every handler thread works on (store, faults, quotas, request record,
options). ``accept_track`` applies PutWebTracking's rules in the service's order and stores a
valid body all-or-nothing; faults are not applied here but in ``responses`` (they model the
server's answers, not the request).

GetLogs understands: empty or ``*`` (everything) and ``key: value`` terms joined by ``and``, where
the key is a content key, ``__topic__``, ``__source__`` or ``__tag__:name``, the value may be
double-quoted, and a trailing ``*`` makes it a prefix match. Anything else (SQL after ``|``, ``or``,
``not``...) is refused with ``400 ParameterInvalid`` rather than silently matching everything.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, overload

from sls_provider.emulator.errors import EmulatorError, ErrorCode
from sls_provider.emulator.faults import FaultInjector
from sls_provider.emulator.protocol import (
    API_VERSION,
    HttpRequest,
    decode_body,
    parse_payload,
    project_from_host,
)
from sls_provider.emulator.quota import QuotaBook
from sls_provider.emulator.storage import Batch, LogstoreInfo, Store

# -- the request record (``emu.requests``) ---------------------------------------------------
Record = dict[str, Any]


class RequestLog:
    """Append-only under a lock; reads return snapshots so callers never see a half-updated list."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Record] = []

    def append(self, record: Record) -> None:
        with self._lock:
            self._items.append(record)

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self._items)

    def where(self, **match: Any) -> list[Record]:
        """Records whose fields equal ``match``, e.g. ``emu.requests.where(path=..., status=200)``."""
        return [r for r in self.snapshot() if all(r.get(k) == v for k, v in match.items())]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.snapshot())

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        with self._lock:
            return self._items[index]

    def __repr__(self) -> str:
        return f"RequestLog({len(self)} requests)"


# -- the state -------------------------------------------------------------------------------
@dataclass
class EmulatorState:
    store: Store
    auto_create: bool = False
    faults: FaultInjector = field(default_factory=FaultInjector)
    requests: RequestLog = field(default_factory=RequestLog)
    on_request: Callable[[Record], None] | None = None
    quotas: QuotaBook = field(default_factory=QuotaBook)

    def reset(self) -> None:
        """A clean slate between tests: logs, the request record, armed faults and every counter go;
        logstores and quotas (configuration) stay. ``SlsEmulator.clear()`` and ``POST
        /_emulator/reset`` both call this, so a fault armed by one test never fires in the next."""
        self.store.clear_logs()
        self.requests.clear()
        self.faults.clear()
        self.faults.reset_counters()
        self.quotas.reset_counters()

    def require_logstore(self, project: str, logstore: str, *, writing: bool = False) -> LogstoreInfo:
        """The logstore, or 404 ProjectNotExist / LogStoreNotExist (auto-created on writes if asked)."""
        info = self.store.logstore(project, logstore)
        if info is not None:
            return info
        if writing and self.auto_create:
            return self.store.put_logstore(project, logstore, True)
        if not self.store.has_project(project):
            raise EmulatorError(404, ErrorCode.PROJECT_NOT_EXIST, f"The Project does not exist : {project}")
        raise EmulatorError(404, ErrorCode.LOGSTORE_NOT_EXIST, f"logstore {logstore} does not exist")


# -- PutWebTracking and UpdateLogStore -------------------------------------------------------
def require_project(req: HttpRequest) -> str:
    """The project named by the Host header, or ``400 InvalidHost``."""
    project = project_from_host(req.header("host"))
    if project is None:
        raise EmulatorError(
            400,
            ErrorCode.INVALID_HOST,
            f"No project in Host {req.header('host')!r}: send Host: {{project}}.{{endpoint}}.",
        )
    return project


def _check_api_version(req: HttpRequest) -> None:
    """Header ``x-log-apiversion`` (SDKs) or query ``APIVersion`` (browsers)."""
    version = req.header("x-log-apiversion") or req.query.get("APIVersion")
    if not version:
        raise EmulatorError(
            400, ErrorCode.MISSING_API_VERSION, "x-log-apiversion header or APIVersion parameter is required."
        )
    if version != API_VERSION:
        raise EmulatorError(
            400,
            ErrorCode.INVALID_API_VERSION,
            f"API version {version!r} is not supported; use {API_VERSION}.",
        )


def accept_track(state: EmulatorState, req: HttpRequest, logstore: str, rec: Record) -> None:
    """Every check of a PutWebTracking request in the service's order, then one store.

    Fills ``rec`` as it learns; raises :class:`EmulatorError` for the first rule broken.
    """
    project = require_project(req)
    _check_api_version(req)
    info = state.require_logstore(project, logstore, writing=True)
    if not info.web_tracking:
        raise EmulatorError(
            403, ErrorCode.UNAUTHORIZED, f"Web tracking is disabled for logstore {logstore}: switch it on."
        )
    rec["compress_type"] = req.header("x-log-compresstype")
    raw = decode_body(req.body, req.header("x-log-compresstype"), req.header("x-log-bodyrawsize"))
    rec["raw_bytes"] = len(raw)
    payload = parse_payload(raw)
    rec.update(logs=len(payload.logs), topic=payload.topic or "", tags=payload.tags)
    now = int(time.time())
    # Service tags go last so a client cannot forge them; no __source__ means the client address.
    tags = {**payload.tags, "__receive_time__": str(now), "__client_ip__": req.client_ip}
    logs = payload.logs
    batch = Batch(payload.topic or "", payload.source or req.client_ip, tags, now, len(logs), lambda: logs)
    # The quota counts raw bytes, as SLS's limits do (a compressed body's are what
    # x-log-bodyrawsize declared, checked by decode_body); a refused write stores nothing.
    state.quotas.admit(project, logstore, len(raw), body_bytes=len(req.body))
    state.store.append(project, logstore, batch, raw)


def update_logstore(state: EmulatorState, project: str, logstore: str, body: bytes) -> None:
    """UpdateLogStore: only ``enable_tracking`` matters here; other fields are accepted and ignored."""
    state.require_logstore(project, logstore)  # 404s first, like the service
    try:
        spec = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        raise EmulatorError.bad_body("UpdateLogStore body must be JSON.") from None
    if not isinstance(spec, dict):
        raise EmulatorError.bad_body("UpdateLogStore body must be a JSON object.")
    if "enable_tracking" in spec:
        state.store.put_logstore(project, logstore, bool(spec["enable_tracking"]))


# -- GetLogs ---------------------------------------------------------------------------------
def flatten(batch: Batch) -> Iterator[dict[str, str]]:
    """Yield each log as GetLogs returns it: meta fields, content, then ``__tag__:`` keys."""
    when = str(batch.time)
    base = {"__time__": when, "__topic__": batch.topic, "__source__": batch.source}
    tags = {f"__tag__:{key}": value for key, value in batch.tags.items()}
    for log in batch.load():
        row = dict(base)
        row.update(log)
        row["__time__"] = when  # web tracking cannot set event time: arrival time wins
        row.update(tags)
        yield row


Row = dict[str, str]
Predicate = Callable[[Row], bool]
_TERM = re.compile(r'\s*(__tag__:[^\s:]+|[^\s:"]+)\s*:\s*("(?:[^"\\]|\\.)*"|[^\s"]+)\s*')
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


def _term(text: str) -> Predicate:
    match = _TERM.fullmatch(text)
    if match is None:
        raise EmulatorError.bad_parameter(f"Unsupported query term {text!r}: use '*' or 'key: value'.")
    key, value = match.group(1), match.group(2)
    if value.startswith('"'):
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    elif value.endswith("*"):
        prefix = value[:-1]
        return lambda row: row.get(key, None) is not None and row[key].startswith(prefix)
    return lambda row: row.get(key) == value


def compile_query(query: str | None) -> Predicate | None:
    """``None`` means "match everything" (so callers can skip whole batches by count)."""
    text = (query or "").strip()
    if text in ("", "*"):
        return None
    if "|" in text:
        raise EmulatorError.bad_parameter("The emulator does not run SQL (nothing after '|').")
    terms = [_term(part) for part in _AND.split(text)]
    return lambda row: all(term(row) for term in terms)


def _rows(batches: Iterable[Batch], reverse: bool, skip: int, predicate: Predicate | None) -> Iterator[Row]:
    """Rows in order; with no predicate, whole batches inside ``skip`` are never parsed."""
    for batch in batches:
        if predicate is None and skip >= batch.count:
            skip -= batch.count
            continue
        rows: Iterable[Row] = flatten(batch)
        if reverse:
            rows = reversed(list(rows))
        for row in rows:
            if predicate is not None and not predicate(row):
                continue
            if skip:
                skip -= 1
                continue
            yield row


def in_window(batches: Iterable[Batch], from_time: int | None, to_time: int | None) -> list[Batch]:
    """The batches received in ``from_time <= __time__ < to_time`` (``None``: no bound)."""
    return [
        b
        for b in batches
        if (from_time is None or b.time >= from_time) and (to_time is None or b.time < to_time)
    ]


def select_logs(
    batches: list[Batch],
    *,
    query: str | None = None,
    from_time: int | None = None,
    to_time: int | None = None,
    offset: int = 0,
    line: int | None = None,
    reverse: bool = False,
) -> list[Row]:
    """GetLogs semantics: ``from_time <= __time__ < to_time``, then query, offset and line."""
    predicate = compile_query(query)
    chosen = in_window(batches, from_time, to_time)
    if reverse:
        chosen.reverse()
    rows = _rows(chosen, reverse, max(0, offset), predicate)
    return list(rows if line is None else islice(rows, max(0, line)))
