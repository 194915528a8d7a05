"""The static report's blocks: what ``reporting/static_report.html`` draws on a tab (a
``Panel``), each by its ``kind``: headline ``Cards``, an embedded ``Chart`` (figure JSON),
a ``Table`` of formatted strings, a ``Heading`` and in-page ``Links``. Plain dataclasses,
built by ``reporting.static_report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""
    kind: str = "table"


@dataclass
class Chart:
    id: str
    title: str
    json: str
    caption: str = ""
    kind: str = "chart"
    half: bool = False  # a small figure (a gauge) shares a row with its neighbour


@dataclass
class Cards:
    items: list[tuple[str, str]]
    title: str = ""
    kind: str = "cards"


@dataclass
class Heading:
    title: str
    note: str = ""
    kind: str = "heading"
    anchor: str = ""


@dataclass
class Links:
    """In-page links (the Strategies tab's index of its books)."""

    items: list[tuple[str, str]]
    kind: str = "links"


@dataclass
class Panel:
    tab: str
    blocks: list = field(default_factory=list)

    @property
    def slug(self) -> str:
        return self.tab.lower()
