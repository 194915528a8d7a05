"""The parts of a rendered dashboard page that the live page replaces in place.

A page's JSON (``?format=json``) is built by rendering the very template, with the very
context, that the HTML page uses, then cutting out of it:

- fragments: each element carrying ``data-live="<key>"`` (key -> its outer HTML), and,
  where ``tables`` is on, each ``<div class="table-wrap">`` keyed ``table:<id of its
  first table>``; dashboard.js swaps them for the elements with the same key;
- figures: each Plotly figure the ``plotly_figure`` tag embeds (``fig-<name>`` -> the
  figure), which dashboard.js hands to ``Plotly.react`` on ``[data-figure=fig-<name>]``.

So the JSON can never disagree with the HTML, and the templates only mark what moves.
When the page's structure changed (its first bar, a new strategy's chart), the page asks
for the whole ``<main>`` instead (``page_main``).
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class _Cutter(HTMLParser):
    def __init__(self, html: str, tables: bool) -> None:
        super().__init__(convert_charrefs=False)
        self.html, self.tables = html, tables
        self.line_starts = [0]
        for i, ch in enumerate(html):
            if ch == "\n":
                self.line_starts.append(i + 1)
        self.open: list[tuple[str, str | None, int]] = []  # (tag, key, start offset)
        self.fragments: dict[str, str] = {}
        self.figures: dict[str, dict] = {}
        self.figure_id: str | None = None
        self.figure_text: list[str] = []
        self.pending_table: list[int] = []  # indexes in self.open of keyless table-wraps

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("type") == "application/json" and a.get("id"):
            self.figure_id, self.figure_text = a["id"], []
        if tag in VOID:
            return
        key = a.get("data-live")
        if (
            key is None
            and self.tables
            and tag == "div"
            and "table-wrap" in (a.get("class") or "").split()
        ):
            key = ""  # named by its first table, below
            self.pending_table.append(len(self.open))
        if tag == "table" and a.get("id") and self.pending_table:
            index = self.pending_table.pop()
            t, _, start = self.open[index]
            self.open[index] = (t, f"table:{a['id']}", start)
        self.open.append((tag, key, self._offset()))

    def handle_startendtag(self, tag, attrs):
        pass  # <br/> and the like: nothing opens

    def handle_data(self, data):
        if self.figure_id is not None:
            self.figure_text.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self.figure_id is not None:
            self.figures[self.figure_id] = json.loads("".join(self.figure_text))
            self.figure_id = None
        # close up to the matching open tag (tolerates an unclosed <p> or <li>)
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i][0] == tag:
                break
        else:
            return
        for t, key, start in self.open[i:][::-1]:
            if t == tag and key:
                end = self.html.index(">", self._offset()) + 1
                self.fragments.setdefault(key, self.html[start:end])
        self.pending_table = [p for p in self.pending_table if p < i]
        del self.open[i:]


def page_main(html: str) -> str:
    """The inner HTML of the page's ``<main id="page-main">`` (base.html)."""
    opening = '<main id="page-main">'
    start = html.index(opening) + len(opening)
    return html[start : html.rindex("</main>")]


def page_parts(html: str, *, tables: bool = True) -> tuple[dict[str, str], dict[str, dict]]:
    """``(fragments, figures)`` of a rendered page (module docstring)."""
    cutter = _Cutter(html, tables)
    cutter.feed(html)
    cutter.close()
    return cutter.fragments, cutter.figures
