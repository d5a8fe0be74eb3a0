"""The service limits the emulator enforces (see docs/protocol.md, "Limits")."""

from __future__ import annotations

MB = 1024 * 1024
MAX_RAW_BYTES = 3 * MB  # uncompressed body, envelope included (the SDKs count MB as 1024*1024)
MAX_LOGS = 4096
MAX_META_BYTES = 128  # __topic__ and __source__
MAX_KEY_BYTES = 128
MAX_VALUE_BYTES = 1 * MB
# Compressed bodies of incompressible data can be slightly larger than the raw limit (lz4 worst
# case is raw + raw/255 + 16), so the declared Content-Length gets a margin on top of 3 MB.
MAX_CONTENT_LENGTH = MAX_RAW_BYTES + 64 * 1024
# After refusing an oversized upload we read and discard this much so the client sees the answer
# instead of a connection reset; beyond it we just close.
MAX_DRAIN_BYTES = 64 * MB
API_VERSION = "0.6.0"
GETLOGS_DEFAULT_LINES = 100
GETLOGS_MAX_LINES = 1000
