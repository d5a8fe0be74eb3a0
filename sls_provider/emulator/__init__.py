"""A local emulator of Alibaba Cloud Simple Log Service's PutWebTracking (and a little GetLogs).

Standard library plus ``lz4`` only. See ``docs/emulator.md``.
"""

from __future__ import annotations

from sls_provider.emulator.backend import RequestLog
from sls_provider.emulator.faults import FaultInjector
from sls_provider.emulator.quota import ShardCounters, WriteQuota
from sls_provider.emulator.server import SlsEmulator

__all__ = ["FaultInjector", "RequestLog", "ShardCounters", "SlsEmulator", "WriteQuota"]
