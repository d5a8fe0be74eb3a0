"""Rows that cannot be sent: the one place that finds them, and fails or skips them.

A row is unsendable when its JSON is larger than a request can hold next to its envelope, or when
one of its values is over SLS's per-value limit. They are found per chunk, after encoding and before
packing, so the export fails naming them (input row numbers, topic, column) before a single request
of their chunk is sent; with ``on_oversize="skip"`` they are left out and counted. The packer only
ever sees rows that fit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import numpy as np

from sls_provider.core.encode import EncodedRows
from sls_provider.core.errors import SlsInputError

log = logging.getLogger(__name__)

__all__ = ["screen"]

#: Rows named in an error or a warning, at most.
NAMED = 5


def screen(
    rows: EncodedRows,
    *,
    topic: str,
    budget: int,
    max_bytes: int,
    max_value_bytes: int,
    on_oversize: str,
    first_row: int,
    positions: np.ndarray | None,
    on_skip: Callable[[int, str, bytes], None] | None = None,
) -> tuple[EncodedRows, int]:
    """The rows that can be sent, and how many were skipped.

    :param budget: bytes of rows a request of ``topic`` holds (:meth:`Packer.row_budget`).
    :param max_bytes: the request size the budget comes from (for the message).
    :param first_row: the input row the chunk starts at; ``positions`` the rows' places in the
        chunk (``None``: row ``i`` is the chunk's row ``i``), so messages count input rows.
    :param on_skip: with ``on_oversize="skip"``, called for each row left out with its input row
        number, the reason and its JSON (to keep it as a dead letter).
    :raises SlsInputError: with ``on_oversize="fail"``, naming up to five such rows.
    """
    if not len(rows):
        return rows, 0
    sizes = np.diff(rows.ends, prepend=-1) - 1
    # A value can only be over the limit in a row whose whole JSON is: check those rows alone.
    suspects = np.flatnonzero(sizes > min(budget, max_value_bytes))
    reasons: dict[int, str] = {}
    for i in suspects.tolist():
        if sizes[i] > budget:
            reasons[i] = f"is {int(sizes[i]):,} bytes as JSON, over the {budget:,} a request holds"
            continue
        for key, value in json.loads(rows.row(i)).items():
            if len(value.encode("utf-8")) > max_value_bytes:
                reasons[i] = f"has a value of {len(value.encode('utf-8')):,} bytes in {key!r}"
                break
    if not reasons:
        return rows, 0

    def where(i: int) -> int:
        return first_row + int(positions[i] if positions is not None else i)

    named = list(reasons.items())[:NAMED]
    if on_oversize == "skip":
        log.warning(
            "Skipping %d row(s) of topic %r that cannot be sent: %s",
            len(reasons),
            topic,
            "; ".join(f"row {where(i):,} {why}" for i, why in named),
        )
        if on_skip is not None:
            for i, why in reasons.items():
                on_skip(where(i), why, rows.row(i))
        keep = np.setdiff1d(np.arange(len(rows)), np.fromiter(reasons, dtype=np.int64))
        return rows.take(keep), len(reasons)
    listed = "; ".join(f"row {where(i):,} (topic {topic!r}) {why}" for i, why in named)
    raise SlsInputError(
        f"{len(reasons):,} row(s) cannot be sent: {listed}. A request holds at most {budget:,} bytes "
        f"of rows ({max_bytes:,} with its envelope) and a value at most {max_value_bytes:,} "
        f"bytes. Shorten them, or pass on_oversize='skip' to leave them out (they are counted)."
    )
