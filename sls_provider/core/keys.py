"""Log keys: which names SLS accepts (docs/protocol.md, "Keys"), and the deterministic rewrite of
those it does not.

SLS refuses a whole request (``InvalidKey``) for one bad key, so keys are checked once per export,
before anything is sent, and every bad column is named in one error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from sls_provider.core.errors import SlsInputError

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 128
_VALID_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_INVALID_CHAR = re.compile(r"[^A-Za-z0-9_]")
#: Refused by the service as content keys.
RESERVED_KEYS = frozenset(
    {"__topic__", "__source__", "__partition_time__", "_extract_others_", "__extract_others__"}
)
#: Accepted, but the service replaces the value with the arrival time.
TIME_KEY = "__time__"
KEY_POLICIES = ("strict", "sanitize")


def key_problem(name: object) -> str | None:
    """Why ``name`` cannot be a log key, or ``None`` when it can."""
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a string"
    if name in RESERVED_KEYS:
        return "is reserved by SLS"
    if not _VALID_KEY.match(name):
        return "must be 1-128 characters of [A-Za-z0-9_], not starting with a digit"
    return None


def sanitize_key(name: object) -> str:
    """Rewrite one name into a valid key: invalid characters -> ``_``, a leading digit or an empty name
    gets a ``_`` prefix, reserved names get a ``_`` prefix, then cut to 128 characters."""
    text = _INVALID_CHAR.sub("_", str(name))
    if not text or text[0].isdigit() or text in RESERVED_KEYS:
        text = "_" + text
    return text[:MAX_KEY_BYTES]


def resolve_keys(names: Sequence[object], policy: str = "strict") -> list[str]:
    """Return the keys to send for ``names`` (column names), or raise naming every bad one.

    :param names: column names in order.
    :param policy: ``"strict"`` fails on any bad or duplicate name; ``"sanitize"`` rewrites with
        :func:`sanitize_key` and makes duplicates unique with ``_2``, ``_3``... in column order.
    """
    if policy not in KEY_POLICIES:
        raise SlsInputError(f"key_policy must be one of {KEY_POLICIES}, got {policy!r}")
    if policy == "strict":
        problems = [f"{name!r} {why}" for name in names if (why := key_problem(name)) is not None]
        dupes = sorted({str(n) for n in names if list(names).count(n) > 1})
        problems += [f"{name!r} appears more than once" for name in dupes]
        if problems:
            raise SlsInputError(
                "These columns cannot be SLS log keys: "
                + "; ".join(problems)
                + ". Rename them, or pass key_policy='sanitize' to rewrite them."
            )
        keys = [str(n) for n in names]
    else:
        keys = []
        seen: set[str] = set()
        for name in names:
            key = base = sanitize_key(name)
            suffix = 2
            while key in seen:
                tail = f"_{suffix}"
                key = base[: MAX_KEY_BYTES - len(tail)] + tail
                suffix += 1
            seen.add(key)
            keys.append(key)
    if TIME_KEY in keys:
        log.warning(
            "Column %r is sent, but SLS replaces __time__ with the arrival time: web tracking cannot set "
            "the event time. Send the event time under another name to keep it.",
            TIME_KEY,
        )
    return keys
