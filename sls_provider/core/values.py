"""How one Python value becomes the string SLS stores.

SLS keeps every value as a string, so each type needs one documented spelling. This module is the
reference: the columnar encoder (:mod:`.encode`) must produce exactly what :func:`to_text` returns,
and does so through faster vectorised paths where the dtype allows. A missing value (``None``,
NaN, NaT, ``pd.NA``) returns ``None``: the key is then left out of that log.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd


def to_text(value: Any) -> str | None:
    """Return the string sent for ``value``, or ``None`` when the key is to be left out."""
    convert = _CONVERTERS.get(type(value))
    if convert is not None:
        return convert(value)
    return _to_text_slow(value)


def _float(value: float) -> str | None:
    value = float(value)
    return None if math.isnan(value) else repr(value)


def _decimal(value: decimal.Decimal) -> str | None:
    return None if value.is_nan() else str(value)


def _bytes(value: bytes | bytearray | memoryview) -> str:
    # Bytes have no text of their own; base64 is lossless and survives any later decoding.
    return base64.b64encode(bytes(value)).decode("ascii")


def _timestamp(value: pd.Timestamp) -> str | None:
    if value is pd.NaT:
        return None
    text = value.isoformat()
    if 0 <= value.year <= 9999:
        return text
    # ISO 8601 expanded years, as a datetime column spells them (polars): a sign and at least four
    # digits. isoformat() writes 12000 and -100 (or -001), which no ISO parser reads back.
    sign = "+" if value.year > 0 else "-"
    return f"{sign}{abs(value.year):04d}{text[text.index('-', 1) :]}"


def _timedelta(value: dt.timedelta | np.timedelta64) -> str | None:
    td = pd.Timedelta(value)
    return None if td is pd.NaT else td.isoformat()


def _json_default(value: Any) -> Any:
    # Containers and numpy scalars nested inside a dict/list stay JSON arrays, objects, numbers and
    # booleans; spelling them with to_text() would nest JSON text as a quoted string.
    if isinstance(value, np.ndarray):
        return _array_list(value)
    if isinstance(value, np.bool_ | np.integer | np.floating) and not isinstance(value, np.timedelta64):
        return value.item()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, Mapping):
        return dict(value)
    return to_text(value)


def _finite(value: Any, _open: frozenset[int] = frozenset()) -> Any:
    """``value`` with NaN and infinite floats inside it as ``None``: JSON has no spelling for them
    (Python's ``NaN`` / ``Infinity`` would make the text unreadable to SLS's JSON functions).
    ``_open``: the containers being walked, to stop at one that contains itself."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict | list | tuple):
        if id(value) in _open:
            raise ValueError(_CIRCULAR)
        inner = _open | {id(value)}
        if isinstance(value, dict):
            return {k: _finite(v, inner) for k, v in value.items()}
        return [_finite(v, inner) for v in value]
    return value


_CIRCULAR = "it contains itself (a circular reference), which JSON cannot write"


def _array_list(value: np.ndarray) -> list:
    if value.dtype.kind in "mM":  # tolist() turns nanosecond datetimes and timedeltas into bare integers
        # numpy scalars, which to_text spells as isoformat
        texts = np.array([to_text(v) for v in value.flat], dtype=object).reshape(value.shape)
        return texts.tolist()
    return value.tolist()


def to_json_text(value: Any) -> str:
    """Compact JSON for dicts, lists and arrays, non-ASCII kept; other values inside via :func:`to_text`."""
    if isinstance(value, np.ndarray):
        value = _array_list(value)
    try:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), default=_json_default, allow_nan=False
        )
    except ValueError:
        # A NaN or infinity inside (or a value containing itself, which the walk reports): rare, so
        # only then walk the value to replace them.
        return json.dumps(
            _finite(value),
            ensure_ascii=False,
            separators=(",", ":"),
            default=lambda inner: _finite(_json_default(inner)),
        )


def _to_text_slow(value: Any) -> str | None:
    """Values whose exact type is not in the table: subclasses, numpy scalars, pandas missing markers."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, np.timedelta64):  # a numpy integer subclass: not to be spelled as digits
        return _timedelta(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return _float(float(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, pd.Timestamp):
        return _timestamp(value)
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else _timestamp(pd.Timestamp(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta | np.timedelta64):
        return _timedelta(value)
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytes(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset | np.ndarray):
        if isinstance(value, set | frozenset):
            value = sorted(value, key=repr)
        return to_json_text(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


_CONVERTERS: dict[type, Callable[[Any], str | None]] = {
    str: lambda v: v,
    bool: lambda v: "true" if v else "false",
    int: str,
    float: _float,
    type(None): lambda v: None,
    decimal.Decimal: _decimal,
    dt.datetime: dt.datetime.isoformat,
    dt.date: dt.date.isoformat,
    dt.time: dt.time.isoformat,
    pd.Timestamp: _timestamp,
    dt.timedelta: _timedelta,
    pd.Timedelta: _timedelta,
    bytes: _bytes,
    bytearray: _bytes,
    memoryview: _bytes,
    dict: to_json_text,
    list: to_json_text,
    tuple: to_json_text,
    uuid.UUID: str,
}
