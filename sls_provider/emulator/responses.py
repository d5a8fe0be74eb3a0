"""Request handling: route a parsed request, answer it as SLS does, and record what happened.

``dispatch`` is the one entry point the transport calls; it never raises (a bug in a handler
costs one request, never the server). Armed faults are applied here, around ``accept_track``,
because they model the server's answers rather than the request. The ``/_emulator/`` admin API
(any Host) lives here too: counts, logstores, faults, quotas, requests, reset.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from sls_provider.emulator import page
from sls_provider.emulator.backend import (
    EmulatorState,
    Record,
    accept_track,
    require_project,
    select_logs,
    update_logstore,
)
from sls_provider.emulator.errors import EmulatorError, ErrorCode
from sls_provider.emulator.protocol import (
    GETLOGS_DEFAULT_LINES,
    GETLOGS_MAX_LINES,
    HttpRequest,
    project_from_host,
)
from sls_provider.emulator.quota import WriteQuota


# -- answers ---------------------------------------------------------------------------------
@dataclass
class Response:
    """What to answer. ``drop`` closes the connection without answering (a fault)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    close: bool = False


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer; compact separators keep big GetLogs answers small."""
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return Response(status=status, body=body, headers=all_headers)


def error_response(err: EmulatorError) -> Response:
    """The SLS error body; ``Retry-After`` only when a fault asked for one."""
    resp = json_response({"errorCode": err.code, "errorMessage": err.message}, status=err.status)
    if err.retry_after is not None:
        # Whole seconds are what RFC 9110 allows; round up so a client never retries early.
        resp.headers["Retry-After"] = str(max(0, int(-(-err.retry_after // 1))))
    return resp


# -- the admin API ---------------------------------------------------------------------------
def _json_body(req: HttpRequest) -> dict[str, Any]:
    try:
        value = json.loads(req.body or b"{}")
    except (ValueError, RecursionError):
        raise EmulatorError.bad_parameter("Admin body must be a JSON object.") from None
    if not isinstance(value, dict):
        raise EmulatorError.bad_parameter("Admin body must be a JSON object.")
    return value


def _create_logstore(state: EmulatorState, req: HttpRequest) -> Response:
    spec = _json_body(req)
    project, logstore = spec.get("project"), spec.get("logstore")
    if not isinstance(project, str) or not isinstance(logstore, str) or not project or not logstore:
        raise EmulatorError.bad_parameter("Need {project, logstore[, web_tracking]}.")
    quota = _quota(spec.get("quota"))
    shards = spec.get("shards", 2)
    try:
        state.quotas.set_logstore(project, logstore, shards, quota, index=bool(spec.get("index", True)))
    except ValueError as exc:
        raise EmulatorError.bad_parameter(str(exc)) from None
    info = state.store.put_logstore(project, logstore, bool(spec.get("web_tracking", True)))
    return json_response({"project": project, **info.describe(), "shardCount": shards})


def _quota(spec: object) -> WriteQuota | None:
    """``true`` (SLS's quota), an object of :class:`WriteQuota` fields (the ones left out are
    SLS's), or nothing."""
    if spec is None or isinstance(spec, bool):
        return WriteQuota.given(spec)
    try:
        return WriteQuota(**spec)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise EmulatorError.bad_parameter(f"Bad quota: {exc}") from None


def _set_project_quota(state: EmulatorState, req: HttpRequest) -> Response:
    spec = _json_body(req)
    project = spec.get("project")
    if not isinstance(project, str) or not project:
        raise EmulatorError.bad_parameter("Need {project, quota}.")
    state.quotas.set_project(project, _quota(spec.get("quota")))
    return json_response(state.quotas.snapshot())


def _configure_fault(state: EmulatorState, req: HttpRequest) -> Response:
    try:
        state.faults.configure(_json_body(req))
    except (TypeError, ValueError) as exc:
        raise EmulatorError.bad_parameter(f"Bad fault: {exc}") from None
    return json_response({"injected": state.faults.injected})


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
        state.reset()
        return Response()
    raise EmulatorError(404, ErrorCode.NOT_FOUND, f"No admin route {req.method} /_emulator/{name}.")


# -- the service routes ----------------------------------------------------------------------
_TRACK = re.compile(r"/logstores/([^/]+)/track/?")
_LOGSTORE = re.compile(r"/logstores/([^/]+)/?")
_ADMIN = re.compile(r"/_emulator/([a-z_]+)/?")
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "x-log-requestid, x-log-count",
}
_ALLOW_HEADERS = "x-log-apiversion, x-log-bodyrawsize, x-log-compresstype, content-type, authorization, date"


def _int_param(req: HttpRequest, name: str, default: int | None) -> int | None:
    text = req.query.get(name)
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError:
        raise EmulatorError.bad_parameter(f"Parameter {name} must be an integer.") from None


def _get_logs(state: EmulatorState, req: HttpRequest, project: str, logstore: str) -> Response:
    """GetLogs: a JSON list of flat dicts; ``line`` is capped at 1000 over HTTP."""
    line = min(_int_param(req, "line", GETLOGS_DEFAULT_LINES) or 0, GETLOGS_MAX_LINES)
    rows = select_logs(
        state.store.batches(project, logstore, req.query.get("topic") or None),
        query=req.query.get("query"),
        from_time=_int_param(req, "from", None),
        to_time=_int_param(req, "to", None),
        offset=_int_param(req, "offset", 0) or 0,
        line=line,
        reverse=req.query.get("reverse", "").lower() == "true",
    )
    return json_response(rows, headers={"x-log-count": str(len(rows)), "x-log-progress": "Complete"})


def _track(state: EmulatorState, req: HttpRequest, logstore: str, rec: Record) -> Response:
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
    accept_track(state, req, logstore, rec)
    lost = state.faults.after_store()
    if lost is not None:
        rec["fault"] = "accept_then_fail"
        resp = error_response(lost)
        resp.delay = decision.delay
        return resp
    return Response(delay=decision.delay)


def _route(state: EmulatorState, req: HttpRequest, rec: Record) -> Response:
    if req.method == "OPTIONS":  # CORS preflight: browsers ask before a cross-origin POST
        asked = req.header("access-control-request-headers")
        return Response(
            headers={
                "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": _ALLOW_HEADERS + (f", {asked}" if asked else ""),
                "Access-Control-Max-Age": "86400",
            }
        )
    if match := _ADMIN.fullmatch(req.path):
        return handle_admin(state, req, match.group(1))
    if req.path == "/" and req.method == "GET":  # the web page (emulator/page.py), any Host
        return Response(body=page.render(state, req.query), headers=dict(page.HEADERS))
    if (match := _TRACK.fullmatch(req.path)) and req.method == "POST":
        rec["logstore"] = unquote(match.group(1))
        return _track(state, req, rec["logstore"], rec)
    if (match := _LOGSTORE.fullmatch(req.path)) and req.method in ("GET", "PUT"):
        rec["logstore"] = logstore = unquote(match.group(1))
        rec["project"] = project = require_project(req)
        if req.method == "PUT":
            update_logstore(state, project, logstore, req.body)
            return Response()
        info = state.require_logstore(project, logstore)
        if req.query.get("type") == "log":
            return _get_logs(state, req, project, logstore)
        described = info.describe()
        shards = state.quotas.shard_count(project, logstore)
        if shards is not None:
            described["shardCount"] = shards
        return json_response(described)
    if req.path.rstrip("/") == "/logstores" and req.method == "GET":
        names = [i.logstore for i in state.store.logstores(require_project(req))]
        return json_response({"count": len(names), "total": len(names), "logstores": names})
    raise EmulatorError(404, ErrorCode.NOT_FOUND, f"The emulator has no route {req.method} {req.path}.")


def new_record(req: HttpRequest, request_id: str) -> Record:
    return {
        "method": req.method,
        "path": req.path,
        "project": None,
        "logstore": None,
        "status": 0,
        "error_code": None,
        "message": None,
        "logs": 0,
        "raw_bytes": 0,
        "body_bytes": len(req.body),
        "compress_type": None,
        "topic": None,
        "tags": {},
        "request_id": request_id,
        "fault": None,
        "client_ip": req.client_ip,
        "client_port": req.client_port,  # one port across requests = keep-alive worked
        "time": time.time(),
    }


def finish(state: EmulatorState, rec: Record, resp: Response, request_id: str) -> Response:
    """Stamp the common headers and keep the record (before the client can see the answer)."""
    resp.headers.update(CORS_HEADERS)
    resp.headers["x-log-requestid"] = request_id
    rec["status"] = 0 if resp.drop else resp.status
    if resp.status >= 400 and resp.body:
        answer = json.loads(resp.body)
        rec["error_code"], rec["message"] = answer.get("errorCode"), answer.get("errorMessage")
    state.requests.append(rec)
    if state.on_request is not None:
        state.on_request(rec)
    return resp


def dispatch(state: EmulatorState, req: HttpRequest, request_id: str) -> Response:
    rec = new_record(req, request_id)
    try:
        resp = _route(state, req, rec)
    except EmulatorError as err:
        resp = error_response(err)
    except Exception as exc:  # a bug must cost one request, never the server
        resp = error_response(EmulatorError(500, ErrorCode.INTERNAL_SERVER_ERROR, f"Emulator error: {exc!r}"))
    return finish(state, rec, resp, request_id)
