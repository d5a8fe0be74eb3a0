"""The emulator's web page (``GET /``) over HTTP: what it lists, what it escapes, how it filters.

The browser half (the chart and table as Chromium draws them) is ``tests/ui/test_emulator_page.py``.
"""

from __future__ import annotations

import time
from html import escape as html_escape
from html.parser import HTMLParser

import requests

from sls_provider.emulator import SlsEmulator
from tests.emulator.conftest import Track


class _Elements(HTMLParser):
    """Every start tag with its attributes, and whether any script element exists."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def page(emu: SlsEmulator, **params: object) -> tuple[requests.Response, _Elements]:
    resp = requests.get(f"{emu.endpoint}/", params=params, timeout=10)
    parsed = _Elements()
    parsed.feed(resp.text)
    return resp, parsed


def test_lists_logstores_topics_chart_and_table(emu: SlsEmulator, track: Track) -> None:
    emu.create_logstore("proj", "empty")
    view, buy = [{"user": "ann", "n": "1"}, {"user": "bob", "n": "2"}], [{"user": "eve", "n": "3"}]
    assert track(view, **{"__topic__": "view"}).status_code == 200
    assert track(buy, **{"__topic__": "buy"}).status_code == 200

    resp, html = page(emu)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]  # no script may run
    assert {a["data-logstore"] for a in html.find("li") if "data-logstore" in a} == {"store", "empty"}
    counts = {a["data-topic"]: a["data-count"] for a in html.find("li", **{"class": "topic-count"})}
    assert counts == {"view": "2", "buy": "1"}
    bars = html.find("rect", **{"class": "bar"})
    assert {(a["data-topic"], a["data-count"]) for a in bars} == {("view", "2"), ("buy", "1")}
    assert resp.text.count("<tr>") == 1 + 3  # header and the three logs
    assert all(f"<td>{v}</td>" in resp.text for v in ("ann", "bob", "eve"))


def test_search_time_window_and_errors(emu: SlsEmulator, track: Track) -> None:
    track([{"user": "ann"}, {"user": "bob"}], **{"__topic__": "view"})
    resp, html = page(emu, project="proj", logstore="store", q="user: bob")
    assert resp.text.count("<tr>") == 2 and "<td>bob</td>" in resp.text
    assert [a["data-count"] for a in html.find("rect", **{"class": "bar"})] == ["1"]  # the chart follows q

    later = int(time.time()) + 3600
    resp, html = page(emu, project="proj", logstore="store", **{"from": later, "to": later + 60})
    assert "No logs match." in resp.text and not html.find("rect", **{"class": "bar"})

    resp, _ = page(emu, project="proj", logstore="store", q="* | select count(*)")
    assert resp.status_code == 200 and 'id="query-error"' in resp.text and "SQL" in resp.text
    resp, _ = page(emu, project="proj", logstore="store", **{"from": "yesterday"})
    assert resp.status_code == 200 and "from must be an integer" in resp.text
    resp, _ = page(emu, project="proj", logstore="nope")
    assert "No logstore proj/nope." in resp.text


def test_untrusted_values_are_escaped(emu: SlsEmulator, track: Track) -> None:
    evil = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"
    track([{"user": evil}], **{"__topic__": evil, "__tags__": {"k": evil}})
    resp, html = page(emu)
    assert "<script>" not in resp.text and "<img" not in resp.text
    assert not html.find("script") and not html.find("img")
    assert html.find("rect", **{"class": "bar", "data-topic": evil})  # round-trips as text
    assert f"<td>{html_escape(evil)}</td>" in resp.text
    resp, html = page(emu, q=evil)  # not a query the emulator runs: the error quotes it, escaped
    assert 'id="query-error"' in resp.text and not html.find("script") and not html.find("img")
    assert html.find("input", name="q", value=evil)


def test_empty_emulator(sls_emulator_factory) -> None:  # noqa: ANN001
    emu = sls_emulator_factory()
    resp, _ = page(emu)
    assert resp.status_code == 200 and "No logstores yet." in resp.text
