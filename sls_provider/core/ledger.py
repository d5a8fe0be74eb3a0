"""Which requests of an export the service has acknowledged, so a retried task resends only the rest.

Packing is deterministic: the same rows in the same order with the same options give the same
requests with the same sequence numbers. The ledger keeps the contiguous acknowledged prefix of
sequence numbers (with a CRC-32 of each request body, 8 hex characters apiece) plus the few
acknowledged beyond it, which concurrency leaves out of order. On a later try a request is skipped
only when its number *and* its body's CRC match: a query over moving data gives different bodies,
which are sent again, and the export warns that their rows may be stored twice.

A ledger whose fingerprint (the query, its parameters and the packing options) differs from this
try's is discarded with a warning: the export starts over.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from sls_provider.core.pack import Request

log = logging.getLogger(__name__)
_WIDTH = 8


def digest(request: Request) -> str:
    """CRC-32 of the body: plenty to notice that the input changed between tries."""
    return f"{zlib.crc32(request.body):08x}"


class Ledger:
    """Acknowledged requests of one export.

    :param export_id: the export these acknowledgements belong to.
    :param fingerprint: what identifies this export's input and options.
    :param state: what :meth:`dump` returned on an earlier try, if anything.
    :param save: called with :meth:`dump` when the ledger should be persisted.
    """

    def __init__(
        self,
        export_id: str,
        fingerprint: str = "",
        state: Mapping[str, Any] | None = None,
        save: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.export_id = export_id
        self.fingerprint = fingerprint
        self._save = save
        self._prefix: list[str] = []
        self._beyond: dict[int, str] = {}
        self.mismatches = 0
        self._dirty = state is None or state.get("export_id") != export_id
        if state and state.get("export_id") == export_id:
            if state.get("fingerprint") != fingerprint:
                self._dirty = True
                log.warning(
                    "The query, its parameters or the export options changed since the earlier try: "
                    "starting the export over; rows it already stored will be stored again."
                )
            else:
                text = str(state.get("prefix", ""))
                self._prefix = [text[i : i + _WIDTH] for i in range(0, len(text), _WIDTH)]
                self._beyond = {int(seq): str(d) for seq, d in dict(state.get("beyond", {})).items()}

    def __len__(self) -> int:
        """Acknowledged requests known."""
        return len(self._prefix) + len(self._beyond)

    def is_acked(self, request: Request) -> bool:
        """True when this very request was acknowledged on an earlier try."""
        seq = request.seq
        seen = self._prefix[seq] if seq < len(self._prefix) else self._beyond.get(seq)
        if seen is None:
            return False
        if seen == digest(request):
            return True
        self.mismatches += 1
        return False

    def record(self, request: Request) -> None:
        seq, d = request.seq, digest(request)
        if seq < len(self._prefix):
            self._prefix[seq] = d
        elif seq == len(self._prefix):
            self._prefix.append(d)
            while len(self._prefix) in self._beyond:
                self._prefix.append(self._beyond.pop(len(self._prefix)))
        else:
            self._beyond[seq] = d
        self._dirty = True

    def dump(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "fingerprint": self.fingerprint,
            "prefix": "".join(self._prefix),
            "beyond": {str(seq): d for seq, d in sorted(self._beyond.items())},
        }

    def flush(self) -> None:
        """Persist, if anything changed since the last flush."""
        if self._dirty and self._save is not None:
            self._save(self.dump())
            self._dirty = False
