"""MySQL's protocol field types and flags (``MySQLdb.constants.FIELD_TYPE``/``FLAG``,
``pymysql.constants.FIELD_TYPE``), the one table the MySQL readers and fixes use."""

from __future__ import annotations

DECIMAL, TINY, SHORT, LONG, FLOAT, DOUBLE, NULL, TIMESTAMP = 0, 1, 2, 3, 4, 5, 6, 7
LONGLONG, INT24, DATE, TIME, DATETIME, YEAR, NEWDATE, VARCHAR, BIT = 8, 9, 10, 11, 12, 13, 14, 15, 16
JSON, NEWDECIMAL, ENUM, SET = 245, 246, 247, 248
TINY_BLOB, MEDIUM_BLOB, LONG_BLOB, BLOB, VAR_STRING, STRING = 249, 250, 251, 252, 253, 254

#: Integer types (``TINYINT(1)``/``BOOLEAN`` is a ``TINY`` whose display width is 1).
INTEGERS = frozenset({TINY, SHORT, LONG, LONGLONG, INT24, YEAR})
#: Date and time-of-day types (``TIME``, a duration, is not one).
DATES = frozenset({TIMESTAMP, DATE, DATETIME, NEWDATE})
#: Text and binary strings.
TEXTS = frozenset({VARCHAR, ENUM, SET, TINY_BLOB, MEDIUM_BLOB, LONG_BLOB, BLOB, VAR_STRING, STRING})
#: Types mysqlclient hands to a converter as ``str`` (the rest as ``bytes``): ``_mysql_field_to_python``.
STR_ARGUMENT = frozenset({DECIMAL, NEWDECIMAL, TIMESTAMP, DATETIME, TIME, DATE})

# Field flags.
UNSIGNED, BINARY = 32, 128
