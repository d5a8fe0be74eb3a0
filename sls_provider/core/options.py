"""What an export is asked to do (:class:`ExportOptions`) and what it did (:class:`ExportSummary`)."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from sls_provider.core.errors import SlsInputError
from sls_provider.core.keys import KEY_POLICIES
from sls_provider.core.pack import MAX_BYTES, MAX_LOGS, check_limits

__all__ = [
    "DEFAULT_STALL_TIMEOUT",
    "MAX_VALUE_BYTES",
    "ON_OVERSIZE",
    "ExportOptions",
    "ExportSummary",
    "new_export_id",
    "size",
]

#: SLS's documented limit for one value.
MAX_VALUE_BYTES = 1024 * 1024
#: Seconds an export may go without any acknowledged request while refused for quota.
DEFAULT_STALL_TIMEOUT = 300.0
ON_OVERSIZE = ("fail", "skip")


@dataclass(frozen=True)
class ExportOptions:
    """How rows become requests and how they are sent: validated once, when built (an operator
    builds its own in ``__init__``, so a mistake fails when the DAG is parsed).

    What names the rows of one export (topic, topic column, source, tags, export id) is not here
    but an argument of the export itself, since an operator renders those fields per run.

    :param key_policy: ``"strict"`` (bad column names fail the export) or ``"sanitize"``.
    :param on_oversize: ``"fail"`` or ``"skip"`` a row too large for a request on its own.
    :param max_logs: logs per request (at most 4096).
    :param max_bytes: uncompressed bytes per request, envelope included (at most 3 MiB).
    :param max_value_bytes: bytes of one value (1 MiB: SLS's documented limit for a value).
    :param max_workers: concurrent requests.
    :param max_requests_per_second: cap on this export's requests/s (attempts included). Not needed
        to share a logstore's write quota: every export adapts its pace to the service's answers.
    :param max_mb_per_second: cap on this export's raw (uncompressed) MB/s, the bytes SLS's write
        quota counts (a shard takes about 5 MB/s of raw data with an index, 10 without).
    :param stall_timeout: seconds without a single acknowledged request, while the service refuses
        writes for quota, after which the export fails (``None``: 300, or the hook's setting).
    :param trace_tags: send those two tags (turn off only if the logstore's tags must stay as given).
    :param progress_interval: seconds between progress log lines.
    :param dead_letter: where rows the export does not send are kept (a URL Airflow's
        ``ObjectStoragePath`` opens: ``file:///...``, ``s3://...``); ``None``: counted and logged only.
    :param max_bad_rows: rows of requests SLS refuses for their content (400) that are put aside in
        ``dead_letter`` before the export fails anyway; ``0``: a refusal fails the export.
    """

    key_policy: str = "strict"
    on_oversize: str = "fail"
    max_logs: int = MAX_LOGS
    max_bytes: int = MAX_BYTES
    max_value_bytes: int = MAX_VALUE_BYTES
    max_workers: int = 4
    trace_tags: bool = True
    max_requests_per_second: float | None = None
    max_mb_per_second: float | None = None
    progress_interval: float = 30.0
    stall_timeout: float | None = None
    dead_letter: str | None = None
    max_bad_rows: int = 0

    def __post_init__(self) -> None:
        if self.key_policy not in KEY_POLICIES:
            raise SlsInputError(f"key_policy must be one of {KEY_POLICIES}, got {self.key_policy!r}")
        if self.on_oversize not in ON_OVERSIZE:
            raise SlsInputError(f"on_oversize must be one of {ON_OVERSIZE}, got {self.on_oversize!r}")
        if not isinstance(self.max_workers, int) or not 1 <= self.max_workers <= 64:
            raise SlsInputError(f"max_workers must be an integer from 1 to 64, got {self.max_workers!r}")
        check_limits(max_logs=self.max_logs, max_bytes=self.max_bytes)
        for name in ("max_requests_per_second", "max_mb_per_second", "stall_timeout"):
            check_positive(name, getattr(self, name))
        if self.dead_letter is not None and (not isinstance(self.dead_letter, str) or not self.dead_letter):
            raise SlsInputError(
                f"dead_letter must be a URL (file:///..., s3://...), got {self.dead_letter!r}"
            )
        if (
            isinstance(self.max_bad_rows, bool)
            or not isinstance(self.max_bad_rows, int)
            or self.max_bad_rows < 0
        ):
            raise SlsInputError(f"max_bad_rows must be an integer >= 0, got {self.max_bad_rows!r}")
        if self.max_bad_rows and self.dead_letter is None:
            raise SlsInputError("max_bad_rows puts rows aside in dead_letter: give dead_letter= too")


def is_positive_number(value: object) -> bool:
    """The rule for every rate and number of seconds: a finite number above 0 (a bool is not one)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < math.inf


def check_positive(name: str, value: object) -> None:
    """The one check of a rate or a number of seconds (``None``: not given): a finite number above
    0. Raises :class:`SlsInputError` (a ``ValueError``) naming the setting."""
    if value is not None and not is_positive_number(value):
        raise SlsInputError(f"{name} must be a positive, finite number, got {value!r}")


def new_export_id(owner: str | None = None) -> str:
    """The id tagging every request of an export (``sls_export``), so its duplicates can be found:
    16 hex characters. With ``owner`` (say, a task instance), 8 of them name it, the same for every
    export of it (one query prefix finds them all), and 8 are random; without, all 16 are random."""
    if owner is None:
        return secrets.token_hex(8)
    return hashlib.sha256(owner.encode()).hexdigest()[:8] + secrets.token_hex(4)


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
    #: requests an earlier try of the export had acknowledged with other rows (the input changed
    #: between tries), sent again: their earlier rows stay stored under the same ``sls_seq`` and are
    #: sent again in other requests, so they can be stored twice under different ``sls_seq``
    changed_requests: int = 0
    #: rows in those requests: about as many rows as may be stored twice that way
    changed_rows: int = 0
    export_id: str | None = None
    seconds: float = 0.0
    #: answers refusing a request for the write quota (403 quota codes, 429): retried, not failures
    throttled: int = 0
    #: seconds during which some request of the export waited to be retried after such an answer
    throttled_seconds: float = 0.0
    #: rows written to the dead-letter destination (skipped rows, rows of refused requests): none of
    #: them is counted in ``rows``
    dead_letter_rows: int = 0
    #: where they are (a folder named by the export id), when there is a destination
    dead_letter_path: str | None = None
    #: those answers by what the service said: ``{"429 Throttled": 4}``
    throttled_answers: dict[str, int] = field(default_factory=dict)

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
            # What the service said, not our reading of it (a 429 Throttled is not a quota code).
            said = ", ".join(f"{answer} x{n:,}" for answer, n in self.throttled_answers.items())
            text += (
                f"; throttled: {self.throttled:,} answer(s) refusing writes"
                f"{f' ({said})' if said else ''}, {self.throttled_seconds:,.1f} s spent waiting on them"
            )
        extras = {
            "skipped oversize rows": self.skipped_rows,
            "retries": self.retries,
            "possible duplicate requests": self.possible_duplicates,
            "requests already stored by an earlier try": self.resumed_requests,
            "requests whose rows changed since an earlier try (their rows may be stored twice)": (
                self.changed_requests
            ),
            "rows in them": self.changed_rows,
        }
        text += "".join(f"; {name}: {value:,}" for name, value in extras.items() if value)
        if self.dead_letter_rows:
            text += f"; rows put aside: {self.dead_letter_rows:,} in {self.dead_letter_path}"
        return text


def size(nbytes: float) -> str:
    """Bytes in the unit that fits: ``512 B``, ``12.3 KB``, ``4.5 MB``, ``1.2 GB`` (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{int(nbytes):,} B"
