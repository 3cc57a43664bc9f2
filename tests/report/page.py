"""Read the numbers back out of a report page (its tables' ``data-value``
cells and the summary cards), for the tests."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.cards: dict[str, tuple[str, str]] = {}
        self.ids: dict[str, dict[str, str]] = {}
        self.text: dict[str, str] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._in_body = False
        self._span: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids[a["id"]] = a
        if tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._row.append(a.get("data-value", ""))
        elif tag == "div" and "data-metric" in a:
            self.cards[a["data-metric"]] = (a["data-value"], a["data-previous"])
        elif tag == "span" and "id" in a:
            self._span = a["id"]
            self.text[self._span] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None
        elif tag == "span":
            self._span = None

    def handle_data(self, data: str) -> None:
        if self._span is not None:
            self.text[self._span] += data


def read(html: str) -> _Reader:
    r = _Reader()
    r.feed(html)
    return r


def raw(v: Any) -> str:
    """A value as the page writes it in ``data-value``."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def rows(items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[list[str]]:
    return [[raw(item[k]) for k in keys] for item in items]
