"""The GetLogs subset the emulator understands, and selecting logs with it.

Supported queries: empty or ``*`` (everything) and ``key: value`` terms joined by ``and``, where
the key is a content key, ``__topic__``, ``__source__`` or ``__tag__:name``, the value may be
double-quoted, and a trailing ``*`` makes it a prefix match. Anything else (SQL after ``|``, ``or``,
``not``...) is refused with ``400 ParameterInvalid`` rather than silently matching everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from sls_provider.emulator.messages import SlsError
from sls_provider.emulator.model import Batch, flatten

Row = dict[str, str]
Predicate = Callable[[Row], bool]
_TERM = re.compile(r'\s*(__tag__:[^\s:]+|[^\s:"]+)\s*:\s*("(?:[^"\\]|\\.)*"|[^\s"]+)\s*')
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


def _term(text: str) -> Predicate:
    match = _TERM.fullmatch(text)
    if match is None:
        raise SlsError(400, "ParameterInvalid", f"Unsupported query term {text!r}: use '*' or 'key: value'.")
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
        raise SlsError(400, "ParameterInvalid", "The emulator does not run SQL (nothing after '|').")
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
    chosen = [
        b
        for b in batches
        if (from_time is None or b.time >= from_time) and (to_time is None or b.time < to_time)
    ]
    if reverse:
        chosen.reverse()
    rows = _rows(chosen, reverse, max(0, offset), predicate)
    return list(rows if line is None else islice(rows, max(0, line)))
