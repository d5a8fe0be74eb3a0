"""Which requests of an export the service has acknowledged, so a retried task resends only the rest.

Packing is deterministic: the same rows in the same order with the same options give the same
requests with the same sequence numbers. The ledger keeps a CRC-32 of each acknowledged request's
body (8 hex characters) by sequence number. On a later try a request is skipped only when its number
*and* its body's CRC match: a query over moving data gives different bodies, which are sent again,
and the export warns that their rows may be stored twice.

Persisted in a key-value store (Airflow's ``task_state_store``) under several keys, so that no write
grows with the export and the bytes written stay proportional to its requests:

- ``{key}.{n}``: the CRCs of requests ``n * block_size`` to ``(n + 1) * block_size - 1``, one string,
  written once when the whole block is acknowledged (again only if a retry resends one of them);
- ``{key}``: the head: export id, fingerprint, which blocks are complete, the CRCs acknowledged in
  blocks not yet complete (the few in flight around the sending position, and the export's last
  block), and the requests earlier tries left as possible duplicates; rewritten after each batch of
  acknowledgements;
- ``{key}.sent``: the requests sent whose acknowledgement is not yet in the head, written before
  they go out. After a crash, the next try finds there what was on the wire: the service may have
  stored those requests, and sending them again makes them possible duplicates, counted and named.

A ledger whose fingerprint (the query, its parameters and the packing options) differs from this
try's is discarded with a warning: the export starts over.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sls_provider.core.pack import Request

log = logging.getLogger(__name__)
_WIDTH = 8
_HOLE = "-" * _WIDTH
#: Requests per block key: 2 KB of CRCs apiece, and a head of about that much at most in the common
#: case (one block being filled), so a write costs about 1 KB per acknowledged batch.
BLOCK_SIZE = 256
VERSION = 2


class StateStore(Protocol):
    """What the ledger needs of Airflow's ``task_state_store``: JSON values by key."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


def digest(request: Request) -> str:
    """CRC-32 of the body: plenty to notice that the input changed between tries."""
    return f"{zlib.crc32(request.body):08x}"


def seq_ranges(seqs: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``, for log lines."""
    out: list[str] = []
    run: list[int] = []
    for seq in sorted(set(seqs)):
        if run and seq == run[-1] + 1:
            run.append(seq)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [seq]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


def _ranges(numbers: Iterable[int]) -> list[list[int]]:
    """Sorted integers as ``[first, last]`` runs: the complete blocks are nearly always one run."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return runs


class Ledger:
    """Acknowledged requests of one export, and the requests sent but not yet acknowledged.

    :param export_id: the export these acknowledgements belong to.
    :param fingerprint: what identifies this export's input and options.
    :param store: where the ledger is kept between tries (``None``: in memory only).
    :param key: the head's key in ``store``; the other keys start with it.
    :param state: the head already read from ``store``, if the caller has it (saves a read).
    :param block_size: requests per block key, for a new ledger (a stored one keeps its own).
    """

    def __init__(
        self,
        export_id: str,
        fingerprint: str = "",
        *,
        store: StateStore | None = None,
        key: str = "sls_export_ledger",
        state: Mapping[str, Any] | None = None,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        self.export_id = export_id
        self.fingerprint = fingerprint
        self.key = key
        self._store = store
        self.block_size = block_size
        #: complete blocks: ``block_size * 8`` hex characters each
        self._blocks: dict[int, str] = {}
        #: blocks with some requests acknowledged: a CRC or None per request
        self._open: dict[int, list[str | None]] = {}
        self._dirty_blocks: set[int] = set()
        self._dirty = True  # the head: written on the first flush, with the export id
        #: sent this try, acknowledgement not yet in the stored head
        self._sent: set[int] = set()
        self._acked_unsaved: set[int] = set()
        self._sent_dirty = False
        #: how many block keys were ever written for this task (to delete them all when the export is done)
        self._block_count = 0
        #: requests that earlier tries may have left stored, which this export sends again
        self.earlier_in_flight: list[int] = []
        #: those of them the try just before this one had in flight when it stopped
        self.crashed_in_flight: list[int] = []
        #: requests an earlier try had acknowledged with other rows (the input changed between
        #: tries), sent again: the rows that try stored under their sls_seq stay stored, and move to
        #: other requests now, so about ``mismatched_rows`` rows may be stored twice
        self.mismatched_rows = 0
        self.mismatched_seqs: list[int] = []
        if state is None and store is not None:
            state = store.get(key)
        if isinstance(state, Mapping) and state.get("export_id") == export_id:
            self._block_count = int(state.get("keys", 0))
            if state.get("fingerprint") != fingerprint:
                log.warning(
                    "The query, its parameters or the export options changed since the earlier try: "
                    "starting the export over; rows it already stored will be stored again."
                )
            else:
                self._load(state)

    # -- reading an earlier try's ledger ---------------------------------------------------------

    def _load(self, state: Mapping[str, Any]) -> None:
        if "prefix" in state:  # the one-key layout of 0.1.0: rewritten in blocks on the first flush
            text = str(state["prefix"])
            old = {i: text[i * _WIDTH : (i + 1) * _WIDTH] for i in range(len(text) // _WIDTH)}
            old.update({int(seq): str(d) for seq, d in dict(state.get("beyond", {})).items()})
            for seq, d in old.items():
                self._put(seq, d)
            return
        self.block_size = int(state.get("block_size", self.block_size))
        size = self.block_size * _WIDTH
        for first, last in state.get("blocks", []):
            for block in range(int(first), int(last) + 1):
                stored = self._store.get(f"{self.key}.{block}") if self._store is not None else None
                if isinstance(stored, str) and len(stored) == size:
                    self._blocks[block] = stored
                else:  # lost or damaged: its requests are sent again, which is safe
                    log.warning("Resume ledger block %d is missing; its requests are sent again.", block)
        for block, text in dict(state.get("open", {})).items():
            cells = [text[i : i + _WIDTH] for i in range(0, len(text), _WIDTH)]
            cells += [_HOLE] * (self.block_size - len(cells))
            self._open[int(block)] = [None if c == _HOLE else c for c in cells]
        earlier = {int(seq) for seq in state.get("possible", [])}
        sent = self._store.get(f"{self.key}.sent") if self._store is not None else None
        if isinstance(sent, Mapping) and sent.get("export_id") == self.export_id:
            crashed = {int(seq) for seq in sent.get("seqs", [])} - earlier
            crashed = {seq for seq in crashed if self._stored(seq) is None}
            self.crashed_in_flight = sorted(crashed)
            earlier |= crashed
        self.earlier_in_flight = sorted(earlier)

    # -- the export's calls ----------------------------------------------------------------------

    def __len__(self) -> int:
        """Acknowledged requests known."""
        opened = sum(sum(d is not None for d in cells) for cells in self._open.values())
        return len(self._blocks) * self.block_size + opened

    @property
    def possible_duplicates(self) -> int:
        """Requests earlier tries had in flight when they stopped: sent again by this export."""
        return len(self.earlier_in_flight)

    def _stored(self, seq: int) -> str | None:
        block, i = divmod(seq, self.block_size)
        text = self._blocks.get(block)
        if text is not None:
            return text[i * _WIDTH : (i + 1) * _WIDTH]
        cells = self._open.get(block)
        return cells[i] if cells is not None else None

    def is_acked(self, request: Request) -> bool:
        """True when this very request was acknowledged on an earlier try."""
        seen = self._stored(request.seq)
        if seen is None:
            return False
        if seen == digest(request):
            return True
        self.mismatched_rows += request.logs
        self.mismatched_seqs.append(request.seq)
        return False

    @property
    def mismatches(self) -> int:
        """Requests an earlier try acknowledged with other rows, sent again (``mismatched_seqs``)."""
        return len(self.mismatched_seqs)

    def sending(self, requests: Request | Iterable[Request]) -> None:
        """Call before requests go out: they are recorded at once as in flight (one small write
        per call, however many requests: pass a batch when there is one)."""
        batch = [requests] if isinstance(requests, Request) else list(requests)
        if not batch:
            return
        self._sent.update(r.seq for r in batch)
        self._write_sent()

    def not_sent(self, request: Request) -> None:
        """A request given to :meth:`sending` that did not go out after all (the export stopped)."""
        self._sent.discard(request.seq)
        self._sent_dirty = True

    def record(self, request: Request) -> None:
        """The service acknowledged ``request`` (persisted by the next :meth:`flush`)."""
        self._put(request.seq, digest(request))
        self._acked_unsaved.add(request.seq)

    def _put(self, seq: int, d: str) -> None:
        block, i = divmod(seq, self.block_size)
        text = self._blocks.get(block)
        if text is not None:  # a retry resent one of a complete block: its body changed
            if text[i * _WIDTH : (i + 1) * _WIDTH] != d:
                self._blocks[block] = text[: i * _WIDTH] + d + text[(i + 1) * _WIDTH :]
                self._dirty_blocks.add(block)
            return
        cells = self._open.setdefault(block, [None] * self.block_size)
        cells[i] = d
        self._dirty = True
        if None not in cells:
            self._blocks[block] = "".join(cells)  # type: ignore[arg-type]
            del self._open[block]
            self._dirty_blocks.add(block)

    def flush(self) -> None:
        """Persist what changed since the last flush: complete blocks first, then the head (which
        names them), then what is still in flight (a request leaves it only once its
        acknowledgement is stored)."""
        if self._store is not None:
            for block in sorted(self._dirty_blocks):
                self._store.set(f"{self.key}.{block}", self._blocks[block])
                self._block_count = max(self._block_count, block + 1)
            if self._dirty or self._dirty_blocks:
                self._store.set(self.key, self.dump())
        self._dirty_blocks.clear()
        self._dirty = False
        if self._acked_unsaved:
            self._sent -= self._acked_unsaved
            self._acked_unsaved.clear()
        if self._sent_dirty:
            self._write_sent()

    def _write_sent(self) -> None:
        self._sent_dirty = False
        if self._store is not None:
            self._store.set(f"{self.key}.sent", {"export_id": self.export_id, "seqs": sorted(self._sent)})

    def dump(self) -> dict[str, Any]:
        """The head."""
        return {
            "version": VERSION,
            "export_id": self.export_id,
            "fingerprint": self.fingerprint,
            "block_size": self.block_size,
            "blocks": _ranges(self._blocks),
            "open": {
                str(block): "".join(d or _HOLE for d in cells).rstrip("-")
                for block, cells in sorted(self._open.items())
            },
            "possible": self.earlier_in_flight,
            "keys": max(self._block_count, max(self._blocks, default=-1) + 1),
        }

    def discard(self) -> None:
        """The export is done: delete every key, so a cleared and re-run task starts a new export."""
        if self._store is None:
            return
        keys = max(self._block_count, max(self._blocks, default=-1) + 1)
        self._store.delete(self.key)  # first: without the head, the rest is never read
        self._store.delete(f"{self.key}.sent")
        for block in range(keys):
            self._store.delete(f"{self.key}.{block}")
