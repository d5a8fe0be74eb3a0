"""A local emulator of Alibaba Cloud Simple Log Service's PutWebTracking (and a little GetLogs).

Standard library plus ``lz4`` only. See ``docs/emulator.md``.

Which module owns what (imports run one way, down this list; ``errors`` and ``protocol`` are
used from any layer, ``faults`` and ``quota`` by ``backend`` and up):

- ``cli``: the ``sls-emulator`` command.
- ``server``: transport and lifecycle: ``SlsEmulator``, the threaded HTTP/1.1 server and handler
  (framing limits, keep-alive, dropped connections).
- ``responses``: request handling: routing, the SLS-style answer (``error_response`` is the one
  place an error answer is built), faults applied around ``/track``, the ``/_emulator/`` admin API.
- ``page``: the web page at ``/`` (logstores, topics, a chart over time, the last logs, a search box).
- ``backend``: the emulated service: ``EmulatorState`` (and its ``reset``), the ``/track`` and
  UpdateLogStore rules, GetLogs selection and queries, the request record.
- ``storage``: what is kept and where: ``LogstoreInfo``, ``Batch``, the memory and SQLite stores.
- ``protocol``: wire rules with no state: limits, the request value, Host -> project,
  decompression, payload validation.
- ``faults``: ``FaultInjector``; ``quota``: ``WriteQuota``, shards and token buckets.
- ``errors``: every ``ErrorCode`` and ``EmulatorError``.

A new fault: add its kind to ``faults.KINDS``, a method arming it on ``FaultInjector`` (the admin API
finds it by name, so ``POST /_emulator/faults {"kind": ...}`` works with no more code), and decide
it in ``FaultInjector.before`` (before validation) or ``after_store`` (after a stored write);
``responses._track`` turns the decision into the answer. Document it in ``docs/emulator.md``.
"""

from __future__ import annotations

from sls_provider.emulator.backend import RequestLog
from sls_provider.emulator.faults import FaultInjector
from sls_provider.emulator.quota import ShardCounters, WriteQuota
from sls_provider.emulator.server import SlsEmulator

__all__ = ["FaultInjector", "RequestLog", "ShardCounters", "SlsEmulator", "WriteQuota"]
