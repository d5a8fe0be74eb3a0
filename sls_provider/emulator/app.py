"""Route one request to its handler, turn errors into SLS answers, and record what happened."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import unquote

from sls_provider.emulator.admin import handle_admin
from sls_provider.emulator.limits import GETLOGS_DEFAULT_LINES, GETLOGS_MAX_LINES
from sls_provider.emulator.messages import HttpRequest, Response, SlsError, error_response, json_response
from sls_provider.emulator.query import select_logs
from sls_provider.emulator.records import Record
from sls_provider.emulator.state import EmulatorState
from sls_provider.emulator.track import handle_track, require_project

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
        raise SlsError(400, "ParameterInvalid", f"Parameter {name} must be an integer.") from None


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


def _update_logstore(state: EmulatorState, req: HttpRequest, project: str, logstore: str) -> Response:
    """UpdateLogStore: only ``enable_tracking`` matters here; other fields are accepted and ignored."""
    state.require_logstore(project, logstore)  # 404s first, like the service
    try:
        spec = json.loads(req.body or b"{}")
    except (ValueError, RecursionError):
        raise SlsError(400, "PostBodyInvalid", "UpdateLogStore body must be JSON.") from None
    if isinstance(spec, dict) and "enable_tracking" in spec:
        state.store.put_logstore(project, logstore, bool(spec["enable_tracking"]))
    elif not isinstance(spec, dict):
        raise SlsError(400, "PostBodyInvalid", "UpdateLogStore body must be a JSON object.")
    return Response()


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
    if (match := _TRACK.fullmatch(req.path)) and req.method == "POST":
        rec["logstore"] = unquote(match.group(1))
        return handle_track(state, req, rec["logstore"], rec)
    if (match := _LOGSTORE.fullmatch(req.path)) and req.method in ("GET", "PUT"):
        rec["logstore"] = logstore = unquote(match.group(1))
        rec["project"] = project = require_project(req)
        if req.method == "PUT":
            return _update_logstore(state, req, project, logstore)
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
    raise SlsError(404, "NotFound", f"The emulator has no route {req.method} {req.path}.")


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
    except SlsError as err:
        resp = error_response(err)
    except Exception as exc:  # a bug must cost one request, never the server
        resp = error_response(SlsError(500, "InternalServerError", f"Emulator error: {exc!r}"))
    return finish(state, rec, resp, request_id)
