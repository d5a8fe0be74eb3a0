"""The operator's "SLS logs" extra link: one click from a task to the logs its export wrote.

The link opens the SLS console's search of the logstore, filtered on the export's ``sls_export`` tag
over the export's time range; for an endpoint on a loopback address (the local emulator) it opens the
emulator's own page (``sls_provider/emulator/page.py``) with the same filter.

The console URL is the documented form of a logstore's search page, ``/lognext/project/{project}
/logsearch/{logstore}`` with ``queryString``, and ``queryTimeType=99`` for the absolute range
``startTime``/``endTime`` (Unix seconds): see "Configure the parameters related to the console pages
to embed", https://help.aliyun.com/document_detail/103028.htm (cited in docs/operator.md).

The operator pushes the URL to XCom in ``execute``: before the export, open-ended (so a failed try,
when the link is wanted most, has one), and again after it with the export's end; Airflow 3 shows what
:meth:`SlsLogsLink.get_link` returns, which reads it back.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from airflow.sdk import BaseOperatorLink

from sls_provider.core.endpoint import Target

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "CONSOLE",
    "MARGIN_SECONDS",
    "OPEN_ENDED_SECONDS",
    "SlsLogsLink",
    "logs_since",
    "logs_url",
    "push_logs_link",
]

log = logging.getLogger(__name__)

#: The SLS console the link opens (the host of the documented examples).
CONSOLE = "https://sls.console.aliyun.com"
#: Seconds added before and after the export: clocks of the worker and of SLS differ a little, and
#: ``__time__`` is when SLS received a request, not when the worker sent it.
MARGIN_SECONDS = 60
#: The range of a link pushed before the export ends (what a failed try leaves).
OPEN_ENDED_SECONDS = 86400


class SlsLogsLink(BaseOperatorLink):
    """ "SLS logs": the export's logs in the SLS console (or the local emulator's page)."""

    name = "SLS logs"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            from airflow.sdk.execution_time.xcom import XCom
        except ImportError:  # pragma: no cover - older Task SDKs
            from airflow.models.xcom import XCom  # type: ignore[no-redef]
        url = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return url if isinstance(url, str) else ""


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def logs_url(target: Target, *, export_id: str | None, since: float, until: float | None) -> str:
    """Where the logs of one export are looked at.

    :param target: the logstore.
    :param export_id: the ``sls_export`` tag to filter on; ``None`` (no trace tags sent): no filter.
    :param since: Unix time the export (its first try) started; the margin is taken off.
    :param until: Unix time it ended, the margin added; ``None`` (still running): open-ended (the
        console needs an end: a day after ``since``).
    """
    query = f"__tag__:sls_export: {export_id}" if export_id else ""
    start = int(since) - MARGIN_SECONDS
    end = math.ceil(until) + MARGIN_SECONDS if until is not None else None
    if _is_loopback(urlsplit(target.base_url).hostname):
        params: dict[str, Any] = {"project": target.project, "logstore": target.logstore, "q": query}
        params["from"] = start
        if end is not None:
            params["to"] = end
        return f"{target.base_url}/?" + urlencode(params)
    end = end if end is not None else start + OPEN_ENDED_SECONDS
    path = f"/lognext/project/{quote(target.project)}/logsearch/{quote(target.logstore)}"
    params = {"queryString": query or "*", "queryTimeType": 99, "startTime": start, "endTime": end}
    return f"{CONSOLE}{path}?" + urlencode(params)


def logs_since(context: Any) -> float:
    """When the link's range starts: the DAG run's start, so what earlier tries of a resumed export
    sent is in it, but at most :data:`OPEN_ENDED_SECONDS` before now (a run cleared long after it
    started, or ``dag.test()``'s run starting at its logical date, would span weeks).

    :param context: the task's context.
    """
    now = time.time()
    started = getattr(context.get("dag_run"), "start_date", None)
    since = started.timestamp() if started is not None else now
    return min(now, max(since, now - OPEN_ENDED_SECONDS))


def push_logs_link(context: Any, target: Target, *, export_id: str | None, since: float, done: bool) -> None:
    """Push :func:`logs_url` to XCom for :class:`SlsLogsLink`; a failure is only logged, it must never
    replace the export's own outcome.

    :param context: the task's context.
    :param target: the logstore.
    :param export_id: the export's id, or ``None`` when its requests carry no trace tags.
    :param since: Unix time the export started.
    :param done: the export has ended (now): the range ends here; else it is open-ended.
    """
    try:
        url = logs_url(target, export_id=export_id, since=since, until=time.time() if done else None)
        context["ti"].xcom_push(key=SlsLogsLink().xcom_key, value=url)
    except Exception:
        log.warning("Could not record the SLS logs link", exc_info=True)
