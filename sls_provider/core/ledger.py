"""Which requests of an export the service has acknowledged, so a retried task resends only the rest.

Packing is deterministic: the same rows with the same options give the same requests with the same
sequence numbers. The ledger keeps, per acknowledged sequence number, a digest of the body sent; on a
later try a request whose number and digest are both in the ledger is skipped. A digest that differs
means the input changed between tries (a query over moving data): that request is sent again, and the
export says so, because nothing can tell which of its rows are already stored.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any

from sls_provider.core.pack import Request


def digest(request: Request) -> str:
    """A short fingerprint of a request body: CRC-32 and length are plenty to notice changed input."""
    return f"{zlib.crc32(request.body):08x}:{len(request.body)}"


class Ledger:
    """Acknowledged requests of one export.

    :param export_id: the export these acknowledgements belong to; state for another id is ignored.
    :param state: what :meth:`dump` returned on an earlier try, if anything.
    :param save: called with :meth:`dump` when the ledger should be persisted.
    """

    def __init__(
        self,
        export_id: str,
        state: Mapping[str, Any] | None = None,
        save: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.export_id = export_id
        self._save = save
        self._acked: dict[int, str] = {}
        self.rows_acked_before = 0
        if state and state.get("export_id") == export_id:
            self._acked = {int(seq): str(d) for seq, d in dict(state.get("acked", {})).items()}
            self.rows_acked_before = int(state.get("rows", 0))
        self._rows = self.rows_acked_before
        self.mismatches = 0
        self._dirty = False

    def __len__(self) -> int:
        return len(self._acked)

    def is_acked(self, request: Request) -> bool:
        """True when this very request was acknowledged on an earlier try."""
        seen = self._acked.get(request.seq)
        if seen is None:
            return False
        if seen == digest(request):
            return True
        self.mismatches += 1
        return False

    def record(self, request: Request) -> None:
        if request.seq not in self._acked:
            self._rows += request.logs
        self._acked[request.seq] = digest(request)
        self._dirty = True

    def dump(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "rows": self._rows,
            "acked": {str(seq): d for seq, d in sorted(self._acked.items())},
        }

    def flush(self) -> None:
        """Persist, if anything changed since the last flush."""
        if self._dirty and self._save is not None:
            self._save(self.dump())
            self._dirty = False
