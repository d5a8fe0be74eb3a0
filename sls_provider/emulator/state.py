"""The shared state every handler thread works on: store, faults, quotas, request record, options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sls_provider.emulator.faults import FaultInjector
from sls_provider.emulator.messages import SlsError
from sls_provider.emulator.model import LogstoreInfo
from sls_provider.emulator.quota import QuotaBook
from sls_provider.emulator.records import Record, RequestLog
from sls_provider.emulator.store import Store


@dataclass
class EmulatorState:
    store: Store
    auto_create: bool = False
    faults: FaultInjector = field(default_factory=FaultInjector)
    requests: RequestLog = field(default_factory=RequestLog)
    on_request: Callable[[Record], None] | None = None
    quotas: QuotaBook = field(default_factory=QuotaBook)

    def require_logstore(self, project: str, logstore: str, *, writing: bool = False) -> LogstoreInfo:
        """The logstore, or 404 ProjectNotExist / LogStoreNotExist (auto-created on writes if asked)."""
        info = self.store.logstore(project, logstore)
        if info is not None:
            return info
        if writing and self.auto_create:
            return self.store.put_logstore(project, logstore, True)
        if not self.store.has_project(project):
            raise SlsError(404, "ProjectNotExist", f"The Project does not exist : {project}")
        raise SlsError(404, "LogStoreNotExist", f"logstore {logstore} does not exist")
