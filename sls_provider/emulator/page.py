"""The emulator's web page (``GET /``): what landed, for a person with a browser.

One server-rendered HTML page, no JavaScript: the projects and logstores with their logs per topic,
a chart of logs received over time per topic (inline SVG), a search box running the GetLogs query
the emulator already understands (``backend.compile_query``), and the last logs as a table.

Logs are untrusted input (anyone who can reach ``/track`` writes them), so every value goes
through ``html.escape`` (attributes too, quotes included), links are built with ``urlencode``, and
the answer carries a Content-Security-Policy that allows no script at all: a value that slipped
past escaping still could not run.

Query parameters: ``project``, ``logstore``, ``q`` (a GetLogs query), ``from``/``to`` (Unix
seconds, GetLogs' ``from <= __time__ < to``) and ``line`` (rows in the table, at most 1000).
"""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

from sls_provider.emulator.backend import EmulatorState, compile_query, flatten, in_window, select_logs
from sls_provider.emulator.errors import EmulatorError
from sls_provider.emulator.protocol import GETLOGS_MAX_LINES
from sls_provider.emulator.storage import Batch, CountKey

__all__ = ["HEADERS", "render"]

#: What the page is served with; ``default-src 'none'`` forbids every script, frame and fetch.
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
DEFAULT_LINES = 100
#: Distinct colours for the first topics; later ones reuse them (the legend names each bar anyway).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
#: Bucket widths the chart picks from (seconds): the smallest giving at most MAX_BUCKETS bars.
BUCKETS = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 21600, 86400)
MAX_BUCKETS = 60
CHART_W, CHART_H, MARGIN = 760, 200, 40

_STYLE = """
body{font:14px system-ui,sans-serif;margin:0;display:flex;color:#222}
nav{width:260px;padding:12px;background:#f4f5f7;min-height:100vh;box-sizing:border-box}
main{padding:12px 20px;flex:1;min-width:0}
nav ul{list-style:none;padding-left:12px;margin:4px 0}
nav a{color:#0b5cad;text-decoration:none}
nav .current{font-weight:bold}
table{border-collapse:collapse;font-size:12px;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top;white-space:pre-wrap}
th{background:#f4f5f7}
.error{color:#b00020;font-weight:bold}
.muted{color:#777}
form input[name=q]{width:420px}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _link(**params: object) -> str:
    """A same-page link with these query parameters (empty ones left out), escaped for an attribute."""
    return _e("?" + urlencode({k: v for k, v in params.items() if v not in (None, "")}))


def _int(query: Mapping[str, str], name: str) -> int | None:
    text = query.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise EmulatorError.bad_parameter(f"{name} must be an integer (Unix seconds), got {text!r}") from None


def _stamp(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- the parts of the page -------------------------------------------------------------------
def _nav(state: EmulatorState, counts: dict[CountKey, int], project: str, logstore: str) -> str:
    """Every project and logstore, with logs per topic under the chosen one."""
    by_store: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for (p, s, t), n in counts.items():
        by_store[(p, s)][t] = n
    projects: dict[str, list[str]] = defaultdict(list)
    for info in state.store.logstores():
        projects[info.project].append(info.logstore)
    parts = ["<nav><h3>sls-emulator</h3>"]
    if not projects:
        parts.append('<p class="muted">No logstores yet.</p>')
    for p in sorted(projects):
        parts.append(f'<div class="project" data-project="{_e(p)}"><b>{_e(p)}</b><ul>')
        for s in sorted(projects[p]):
            topics = by_store.get((p, s), {})
            current = ' class="current"' if (p, s) == (project, logstore) else ""
            parts.append(
                f'<li data-logstore="{_e(s)}"><a{current} href="{_link(project=p, logstore=s)}">{_e(s)}</a>'
                f' <span class="muted">{sum(topics.values()):,}</span><ul>'
            )
            for t in sorted(topics):
                parts.append(
                    f'<li class="topic-count" data-topic="{_e(t)}" data-count="{topics[t]}">'
                    f"{_e(t) or '<i>(no topic)</i>'}: {topics[t]:,}</li>"
                )
            parts.append("</ul></li>")
        parts.append("</ul></div>")
    parts.append("</nav>")
    return "".join(parts)


def _search(project: str, logstore: str, q: str, since: int | None, until: int | None, line: int) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{_e(value)}">'
        for name, value in (("project", project), ("logstore", logstore), ("from", since), ("to", until))
        if value not in (None, "")
    )
    window = ""
    if since is not None or until is not None:
        shown = " to ".join(_stamp(s) if s is not None else "…" for s in (since, until))
        window = (
            f' <span class="muted">received {shown} UTC</span>'
            f' <a href="{_link(project=project, logstore=logstore, q=q)}">any time</a>'
        )
    return (
        f'<form method="get" action="">{hidden}'
        f'<input name="q" value="{_e(q)}" placeholder="* or key: value and __topic__: t and __tag__:k: v">'
        f' <input name="line" type="number" min="1" max="{GETLOGS_MAX_LINES}" value="{line}" title="rows">'
        f' <button type="submit">Search</button>{window}</form>'
    )


def _series(batches: Iterable[Batch], q: str) -> dict[str, dict[int, int]]:
    """Logs per topic per arrival second, counting only the logs ``q`` matches."""
    predicate = compile_query(q)
    series: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for batch in batches:
        n = batch.count if predicate is None else sum(1 for row in flatten(batch) if predicate(row))
        if n:
            series[batch.topic][batch.time] += n
    return series


def _chart(series: dict[str, dict[int, int]]) -> str:
    """Stacked bars of logs received per time bucket, one colour per topic, with a legend."""
    if not series:
        return '<p class="muted">No logs to chart.</p>'
    times = [t for per_second in series.values() for t in per_second]
    first, last = min(times), max(times)
    width = next((w for w in BUCKETS if (last - first) // w + 1 <= MAX_BUCKETS), BUCKETS[-1])
    start = first - first % width
    buckets = (last - start) // width + 1
    topics = sorted(series)
    stacks: dict[int, dict[str, int]] = defaultdict(dict)
    for topic in topics:
        for when, n in series[topic].items():
            slot = (when - start) // width
            stacks[slot][topic] = stacks[slot].get(topic, 0) + n
    peak = max(sum(stack.values()) for stack in stacks.values())
    plot_w, plot_h = CHART_W - 2 * MARGIN, CHART_H - 2 * MARGIN
    bar_w = plot_w / max(buckets, 12)  # a lone bucket is a bar, not the whole width
    colour = {topic: PALETTE[i % len(PALETTE)] for i, topic in enumerate(topics)}
    base = MARGIN + plot_h  # the x axis
    parts = [
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}"'
        f' height="{CHART_H + 20 * len(topics)}" role="img" aria-label="logs received over time per topic">',
        f'<line x1="{MARGIN}" y1="{base}" x2="{MARGIN + plot_w}" y2="{base}" stroke="#999"/>',
        f'<text x="{MARGIN}" y="{MARGIN - 8}" font-size="11">{peak:,} logs per {width} s (peak)</text>',
    ]
    for slot in sorted(stacks):
        y = float(base)
        for topic in topics:
            n = stacks[slot].get(topic, 0)
            if not n:
                continue
            h = max(1.0, plot_h * n / peak)
            y -= h
            label = f"{_stamp(start + slot * width)} UTC, topic {topic or '(none)'}: {n:,} logs"
            parts.append(
                f'<rect class="bar" data-topic="{_e(topic)}" data-count="{n}" x="{MARGIN + slot * bar_w:.1f}"'
                f' y="{y:.1f}" width="{max(1.0, bar_w - 1):.1f}" height="{h:.1f}" fill="{colour[topic]}">'
                f"<title>{_e(label)}</title></rect>"
            )
    parts.append(f'<text x="{MARGIN}" y="{base + 14}" font-size="11">{_stamp(start)} UTC</text>')
    end_label = f"{_stamp(start + buckets * width)} UTC"
    parts.append(
        f'<text x="{MARGIN + plot_w}" y="{base + 14}" font-size="11" text-anchor="end">{end_label}</text>'
    )
    for i, topic in enumerate(topics):
        row_y = CHART_H + 20 * i
        total = sum(series[topic].values())
        parts.append(
            f'<g class="legend" data-topic="{_e(topic)}">'
            f'<rect x="{MARGIN}" y="{row_y - 10}" width="12" height="12" fill="{colour[topic]}"/>'
            f'<text x="{MARGIN + 18}" y="{row_y}" font-size="12">'
            f"{_e(topic or '(no topic)')}: {total:,}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[dict[str, str]]) -> str:
    """The logs, newest first: time, topic, source, the content keys (first seen first), then tags."""
    if not rows:
        return '<p class="muted">No logs match.</p>'
    meta = ("__time__", "__topic__", "__source__")
    keys: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in meta and not key.startswith("__tag__:"):
                keys.setdefault(key)
    columns = [*meta, *keys]
    head = "".join(f"<th>{_e(c)}</th>" for c in [*columns, "tags"])
    body = []
    for row in rows:
        cells = [_stamp(int(row["__time__"])) if c == "__time__" else row.get(c, "") for c in columns]
        tags = "\n".join(f"{k[8:]}={v}" for k, v in row.items() if k.startswith("__tag__:"))
        body.append("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in [*cells, tags]) + "</tr>")
    return f'<table id="logs"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


# -- the page --------------------------------------------------------------------------------
def _pick(state: EmulatorState, counts: dict[CountKey, int], query: Mapping[str, str]) -> tuple[str, str]:
    """The logstore asked for; else the first holding logs; else the first one."""
    project, logstore = query.get("project", ""), query.get("logstore", "")
    if project and logstore:
        return project, logstore
    if counts:
        p, s, _ = min(counts)
        return p, s
    stores = sorted((i.project, i.logstore) for i in state.store.logstores())
    return stores[0] if stores else ("", "")


def render(state: EmulatorState, query: Mapping[str, str]) -> bytes:
    """The whole page for these query parameters; a bad parameter or query is shown, not raised."""
    counts = state.store.counts()
    project, logstore = _pick(state, counts, query)
    q = query.get("q", "")
    parts: list[str] = []
    try:
        since, until = _int(query, "from"), _int(query, "to")
        line = min(max(_int(query, "line") or DEFAULT_LINES, 1), GETLOGS_MAX_LINES)
    except EmulatorError as err:
        since = until = None
        line = DEFAULT_LINES
        parts.append(f'<p class="error">{_e(err.message)}</p>')
    if project and state.store.logstore(project, logstore) is not None:
        parts.insert(0, f"<h2>{_e(project)} / {_e(logstore)}</h2>")
        parts.append(_search(project, logstore, q, since, until, line))
        batches = in_window(state.store.batches(project, logstore), since, until)
        try:
            rows = select_logs(batches, query=q, line=line, reverse=True)
            chart = _chart(_series(batches, q))
        except EmulatorError as err:
            parts.append(f'<p class="error" id="query-error">{_e(err.message)}</p>')
        else:
            parts.append(f"<h3>Logs received over time</h3>{chart}")
            parts.append(f"<h3>Last {len(rows):,} logs</h3>{_table(rows)}")
    elif project:
        parts.append(f'<p class="error">No logstore {_e(project)}/{_e(logstore)}.</p>')
    else:
        parts.append('<p class="muted">Nothing here yet: create a logstore and send logs to it.</p>')
    title = f"{project}/{logstore} - sls-emulator" if project else "sls-emulator"
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{_nav(state, counts, project, logstore)}"
        f"<main>{''.join(parts)}</main></body></html>"
    )
    return document.encode("utf-8")
