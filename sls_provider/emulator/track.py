"""POST /logstores/{logstore}/track: PutWebTracking, validated completely, stored all-or-nothing."""

from __future__ import annotations

import time

from sls_provider.emulator.compression import decode_body
from sls_provider.emulator.hosts import project_from_host
from sls_provider.emulator.limits import API_VERSION
from sls_provider.emulator.messages import HttpRequest, Response, SlsError, error_response
from sls_provider.emulator.model import Batch
from sls_provider.emulator.payload import parse_payload
from sls_provider.emulator.records import Record
from sls_provider.emulator.state import EmulatorState


def require_project(req: HttpRequest) -> str:
    """The project named by the Host header, or ``400 InvalidHost``."""
    project = project_from_host(req.header("host"))
    if project is None:
        raise SlsError(
            400,
            "InvalidHost",
            f"No project in Host {req.header('host')!r}: send Host: {{project}}.{{endpoint}}.",
        )
    return project


def _check_api_version(req: HttpRequest) -> None:
    """Header ``x-log-apiversion`` (SDKs) or query ``APIVersion`` (browsers)."""
    version = req.header("x-log-apiversion") or req.query.get("APIVersion")
    if not version:
        raise SlsError(
            400, "MissingAPIVersion", "x-log-apiversion header or APIVersion parameter is required."
        )
    if version != API_VERSION:
        raise SlsError(
            400, "InvalidAPIVersion", f"API version {version!r} is not supported; use {API_VERSION}."
        )


def handle_track(state: EmulatorState, req: HttpRequest, logstore: str, rec: Record) -> Response:
    """Faults first (they model the server, not the request), then every check, then one store."""
    rec["project"] = project_from_host(req.header("host"))
    decision = state.faults.before()
    rec["fault"] = decision.fault
    if decision.drop:
        return Response(drop=True, delay=decision.delay)
    if decision.error is not None:
        resp = error_response(decision.error)
        resp.delay = decision.delay
        return resp
    project = require_project(req)
    _check_api_version(req)
    info = state.require_logstore(project, logstore, writing=True)
    if not info.web_tracking:
        raise SlsError(
            403, "Unauthorized", f"Web tracking is disabled for logstore {logstore}: switch it on."
        )
    rec["compress_type"] = req.header("x-log-compresstype")
    raw = decode_body(req.body, req.header("x-log-compresstype"), req.header("x-log-bodyrawsize"))
    rec["raw_bytes"] = len(raw)
    payload = parse_payload(raw)
    rec.update(logs=len(payload.logs), topic=payload.topic or "", tags=payload.tags)
    now = int(time.time())
    # Service tags go last so a client cannot forge them; no __source__ means the client address.
    tags = {**payload.tags, "__receive_time__": str(now), "__client_ip__": req.client_ip}
    logs = payload.logs
    batch = Batch(payload.topic or "", payload.source or req.client_ip, tags, now, len(logs), lambda: logs)
    # The quota counts compressed bytes, what crossed the wire; a refused write stores nothing.
    state.quotas.admit(project, logstore, len(req.body))
    state.store.append(project, logstore, batch, raw)
    lost = state.faults.after_store()
    if lost is not None:
        rec["fault"] = "accept_then_fail"
        resp = error_response(lost)
        resp.delay = decision.delay
        return resp
    return Response(delay=decision.delay)
