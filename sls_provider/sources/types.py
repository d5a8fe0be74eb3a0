"""Driver values that :func:`sls_provider.core.values.to_text` would spell badly, put right per column.

The value table (``core/values.py``) works on plain Python types. Most database drivers hand back
exactly those (``Decimal``, ``datetime``, ``date``, ``timedelta``, ``bytes``, ``dict``/``list`` for
JSON, ``bool``), and nothing is done to them. A few do not, and each is put right here, in the source
layer, so that the same logical row gives the same log whether it came from PostgreSQL, MySQL/MariaDB,
SQLite or a DataFrame:

=====================================  =====================================  =========================
driver gives                           becomes                                sent as
=====================================  =====================================  =========================
``memoryview`` (psycopg2 ``bytea``)    ``bytes``                              base64
psycopg2/psycopg ``Range``             PostgreSQL range text, bounds spelled  ``[1,5)``, ``(,2.5]``,
                                       by the value table                     ``empty``
psycopg ``Multirange``                 ``{range,range}``                      ``{[1,3),[5,7)}``
MySQL ``TINYINT(1)``/``BOOLEAN`` 0, 1  ``False``, ``True`` (other values are  ``false``, ``true``
(MySQLdb, PyMySQL)                     left as integers: nothing is lost)
MySQL ``BIT(1)`` (``b"\\x01"``)         ``bool``; ``BIT(n)`` -> ``int``        ``true``; digits
MySQL ``TIME`` (a ``timedelta``)       MySQL's own ``[-]HH:MM:SS[.ffffff]``    ``12:34:56``, ``25:00:01``
MySQL ``JSON`` (text, type 245)        the decoded value                      compact JSON
=====================================  =====================================  =========================

Two more are set on the export's own connection or cursor before the query runs (never globally):

- PostgreSQL ``json``/``jsonb`` (and their arrays) arrive as the database's own text
  (:func:`keep_json_text`): the drivers would parse JSON numbers as floats, and
  ``12345678901234567890.123456789`` would become ``1.2345678901234567e+19``.
- MySQLdb hands over ``DATETIME``/``DATE``/``TIMESTAMP`` values it cannot parse (MariaDB's zero date
  ``0000-00-00 00:00:00``, ``2026-00-01``) as ``None``, which would leave the key out; they arrive as
  the database's text instead (:func:`keep_date_text`), as PyMySQL already hands them over.

Columns are chosen from the cursor's ``description`` where the driver's Python type is ambiguous
(MySQL's integers, timedeltas and strings), and from the type of the first non-null value otherwise,
so columns that need nothing cost nothing.

Not put right, and why (see ``docs/large-tables.md``): MariaDB ``JSON`` is ``LONGTEXT`` and cannot be
told from text (write ``JSON_COMPACT(col)`` in the query to get the compact spelling); SQLite has no
boolean, decimal or timestamp types (values arrive as integers, floats and text); PostgreSQL
intervals with months or years arrive as ``timedelta`` counting 30-day months and 365-day years.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from sls_provider.core.values import to_text
from sls_provider.sources import mysql_types as field_type

Fix = Callable[[Any], Any]

# PostgreSQL type oids: json, jsonb and their arrays.
_PG_JSON, _PG_JSONB, _PG_JSON_ARRAY, _PG_JSONB_ARRAY = 114, 3802, 199, 3807
MYSQL_DRIVERS = ("MySQLdb", "pymysql", "mysql")  # ``mysql`` is mysql-connector-python
POSTGRES_DRIVERS = ("psycopg2", "psycopg")


# -- set on the export's connection / cursor -----------------------------------------------------


def keep_json_text(cursor: Any, driver: str) -> None:
    """Have ``cursor`` (psycopg2 or psycopg) hand over ``json``/``jsonb`` as the database's text.

    Only this cursor is changed: the drivers' global JSON loaders stay as they are.
    """
    if driver == "psycopg":
        from psycopg.types.string import TextLoader

        for name in ("json", "jsonb"):
            cursor.adapters.register_loader(name, TextLoader)  # arrays use their element's loader
    elif driver == "psycopg2":
        import psycopg2.extensions as ext

        def text(value: str | None, _cursor: Any) -> str | None:
            return value

        json_text = ext.new_type((_PG_JSON, _PG_JSONB), "SLS_JSON_TEXT", text)
        ext.register_type(json_text, cursor)
        arrays = ext.new_array_type((_PG_JSON_ARRAY, _PG_JSONB_ARRAY), "SLS_JSON_TEXT[]", json_text)
        ext.register_type(arrays, cursor)


def keep_date_text(conn: Any, driver: str) -> None:
    """Have a MySQLdb ``conn`` hand over the date/time values it cannot parse as their text instead of
    ``None``; parseable values stay ``datetime``/``date``.

    MySQLdb copies its converters per connection, so only ``conn`` is changed. PyMySQL already returns
    such values as text; mysql-connector-python is left as it is.
    """
    if driver != "MySQLdb":
        return
    for type_code in field_type.DATES:
        parse = conn.converter.get(type_code)
        if parse is not None:
            conn.converter[type_code] = _text_if_unparsed(parse)


def _text_if_unparsed(parse: Callable[[Any], Any]) -> Fix:
    def convert(value: Any) -> Any:
        parsed = parse(value)
        if parsed is None and value is not None:
            return bytes(value).decode("ascii") if isinstance(value, bytes | bytearray) else value
        return parsed

    convert.parse = parse  # type: ignore[attr-defined]  # what it wraps (the Arrow reader asks)
    return convert


# -- the fixes ----------------------------------------------------------------------------------


def _bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def _bound(value: Any) -> str:
    text = to_text(value)
    return "" if text is None else text


def range_text(value: Any) -> Any:
    """A psycopg2/psycopg ``Range`` as PostgreSQL writes it, its bounds spelled by the value table:
    ``[1,5)``, ``(,2.5]``, ``[2026-01-01T00:00:00+00:00,2026-01-02T00:00:00+00:00)``, ``empty``."""
    if not _is_range(value):
        return value
    if value.isempty:
        return "empty"
    lower = "(" if value.lower_inf or not value.lower_inc else "["
    upper = ")" if value.upper_inf or not value.upper_inc else "]"
    return f"{lower}{_bound(value.lower)},{_bound(value.upper)}{upper}"


def multirange_text(value: Any) -> Any:
    """A psycopg ``Multirange`` as ``{range,range}`` (PostgreSQL's spelling, no spaces)."""
    if value is None or isinstance(value, str):  # psycopg2 already hands over PostgreSQL's text
        return value
    return "{" + ",".join(range_text(r) for r in value) + "}"


def mysql_bool(value: Any) -> Any:
    """``TINYINT(1)``/``BOOLEAN``: 0 and 1 become booleans; any other value stays the integer it is."""
    if value is None or type(value) is not int:
        return value
    return value == 1 if value in (0, 1) else value


def mysql_bit(value: Any) -> Any:
    """``BIT(n)`` arrives as big-endian bytes from MySQLdb/PyMySQL: ``BIT(1)`` becomes a bool."""
    if isinstance(value, bytes | bytearray):
        return bool(int.from_bytes(value, "big"))
    return value


def mysql_bits(value: Any) -> Any:
    """``BIT(n)``, n > 1: the unsigned integer."""
    if isinstance(value, bytes | bytearray):
        return int.from_bytes(value, "big")
    return value


def mysql_time(value: Any) -> Any:
    """MySQL ``TIME`` is a signed duration up to 838:59:59 that drivers hand over as ``timedelta``;
    sent as MySQL writes it, which for a time of day is also what ``datetime.time.isoformat()`` gives."""
    if value is None or not hasattr(value, "total_seconds"):
        return value
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{text}.{fraction:06d}" if fraction else text


def mysql_json(value: Any) -> Any:
    """MySQL's ``JSON`` type arrives as text; decoded, it is spelled like PostgreSQL's json/jsonb."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8")
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _is_range(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith(POSTGRES_DRIVERS) and hasattr(value, "isempty") and hasattr(value, "lower_inc")


def _is_multirange(value: Any) -> bool:
    return type(value).__name__ == "Multirange" and type(value).__module__.startswith("psycopg")


def value_fix(value: Any) -> Fix | None:
    """The fix for a column whose first non-null value is ``value``, or ``None`` if it needs none."""
    if isinstance(value, memoryview):
        return _bytes
    if _is_range(value):
        return range_text
    if _is_multirange(value):
        return multirange_text
    return None


def description_fixes(driver: str, description: Sequence[Sequence[Any]]) -> dict[int, Fix]:
    """Fixes chosen from column metadata, for drivers whose Python types are ambiguous (MySQL)."""
    if driver not in MYSQL_DRIVERS:
        return {}
    fixes: dict[int, Fix] = {}
    for i, column in enumerate(description):
        type_code = column[1]
        # internal_size is the declared display width: 1 for TINYINT(1)/BOOLEAN and BIT(1).
        # mysql-connector-python does not report it (None): its TINYINT(1) stay integers.
        size = column[3] if len(column) > 3 else None
        if type_code == field_type.TINY and size == 1:
            fixes[i] = mysql_bool
        elif type_code == field_type.BIT and driver != "mysql":
            fixes[i] = mysql_bit if size == 1 else mysql_bits
        elif type_code == field_type.TIME:
            fixes[i] = mysql_time
        elif type_code == field_type.JSON:
            fixes[i] = mysql_json
    return fixes


class ColumnFixer:
    """Applies the fixes to each chunk's frame, deciding value-typed columns at their first non-null.

    :param driver: the DB-API module's top-level name (``psycopg2``, ``psycopg``, ``MySQLdb``...).
    :param description: the cursor's ``description``.
    """

    def __init__(self, driver: str, description: Sequence[Sequence[Any]]) -> None:
        self.fixes: dict[int, Fix] = description_fixes(driver, description)
        # Columns whose type is still unknown (all null so far) and that a value fix may apply to.
        self.undecided: set[int] = set(range(len(description))) - set(self.fixes)

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.undecided:
            self._decide(frame)
        for i, fix in self.fixes.items():
            column = frame.iloc[:, i]
            frame.isetitem(i, pd.Series([fix(v) for v in column.tolist()], dtype=object, index=frame.index))
        return frame

    def _decide(self, frame: pd.DataFrame) -> None:
        for i in list(self.undecided):
            column = frame.iloc[:, i]
            if column.dtype != object:
                self.undecided.discard(i)
                continue
            for value in column.to_numpy():
                if value is not None:
                    fix = value_fix(value)
                    if fix is not None:
                        self.fixes[i] = fix
                    self.undecided.discard(i)
                    break
