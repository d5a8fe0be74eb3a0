"""The ``/_emulator/`` admin surface (any Host): counts, logstores, faults, quotas, requests, reset."""

from __future__ import annotations

import json
from typing import Any

from sls_provider.emulator.messages import HttpRequest, Response, SlsError, json_response
from sls_provider.emulator.quota import WriteQuota
from sls_provider.emulator.state import EmulatorState


def _json_body(req: HttpRequest) -> dict[str, Any]:
    try:
        value = json.loads(req.body or b"{}")
    except (ValueError, RecursionError):
        raise SlsError(400, "ParameterInvalid", "Admin body must be a JSON object.") from None
    if not isinstance(value, dict):
        raise SlsError(400, "ParameterInvalid", "Admin body must be a JSON object.")
    return value


def _create_logstore(state: EmulatorState, req: HttpRequest) -> Response:
    spec = _json_body(req)
    project, logstore = spec.get("project"), spec.get("logstore")
    if not isinstance(project, str) or not isinstance(logstore, str) or not project or not logstore:
        raise SlsError(400, "ParameterInvalid", "Need {project, logstore[, web_tracking]}.")
    quota = _quota(spec.get("quota"))
    shards = spec.get("shards", 2)
    try:
        state.quotas.set_logstore(project, logstore, shards, quota)
    except ValueError as exc:
        raise SlsError(400, "ParameterInvalid", str(exc)) from None
    info = state.store.put_logstore(project, logstore, bool(spec.get("web_tracking", True)))
    return json_response({"project": project, **info.describe(), "shardCount": shards})


def _quota(spec: object) -> WriteQuota | None:
    """``true`` (SLS's quota), an object of :class:`WriteQuota` fields, or nothing."""
    if spec in (None, False):
        return None
    try:
        return WriteQuota() if spec is True else WriteQuota(**spec)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise SlsError(400, "ParameterInvalid", f"Bad quota: {exc}") from None


def _set_project_quota(state: EmulatorState, req: HttpRequest) -> Response:
    spec = _json_body(req)
    project = spec.get("project")
    if not isinstance(project, str) or not project:
        raise SlsError(400, "ParameterInvalid", "Need {project, quota}.")
    state.quotas.set_project(project, _quota(spec.get("quota")))
    return json_response(state.quotas.snapshot())


def _configure_fault(state: EmulatorState, req: HttpRequest) -> Response:
    try:
        state.faults.configure(_json_body(req))
    except (TypeError, ValueError) as exc:
        raise SlsError(400, "ParameterInvalid", f"Bad fault: {exc}") from None
    return json_response({"injected": state.faults.injected})


def _reset(state: EmulatorState) -> Response:
    """Logs, request record, faults and fault counters go; logstores stay."""
    state.store.clear_logs()
    state.requests.clear()
    state.faults.clear()
    state.faults.reset_counters()
    state.quotas.reset_counters()
    return Response()


def handle_admin(state: EmulatorState, req: HttpRequest, name: str) -> Response:
    route = (req.method, name)
    if route == ("GET", "counts"):
        counts = state.store.counts()
        rows = [
            {"project": p, "logstore": s, "topic": t, "count": n} for (p, s, t), n in sorted(counts.items())
        ]
        return json_response(rows)
    if route == ("GET", "logstores"):
        return json_response([{"project": i.project, **i.describe()} for i in state.store.logstores()])
    if route == ("POST", "logstores"):
        return _create_logstore(state, req)
    if route == ("GET", "faults"):
        return json_response({"injected": state.faults.injected})
    if route == ("POST", "faults"):
        return _configure_fault(state, req)
    if route == ("DELETE", "faults"):
        state.faults.clear()
        return Response()
    if route == ("GET", "requests"):
        return json_response(state.requests.snapshot())
    if route == ("GET", "quotas"):
        return json_response(state.quotas.snapshot())
    if route == ("POST", "quotas"):
        return _set_project_quota(state, req)
    if route == ("POST", "reset"):
        return _reset(state)
    raise SlsError(404, "NotFound", f"No admin route {req.method} /_emulator/{name}.")
