"""Write notes and tags (staff annotations; see ``reporting.models``)."""

from __future__ import annotations

import re

from django.db import transaction

from portfolio.models import Instrument, Strategy, Trade
from reporting.models import NOTE_MAX_CHARS, TAG_PATTERN, TAGS_MAX, Note, Tag


class NoteError(ValueError):
    """A refused note: ``field`` and the rule it broke."""

    def __init__(self, field: str, rule: str):
        super().__init__(f"{field} {rule}")
        self.field, self.rule = field, rule


def tags_parse(raw: str) -> list[str]:
    """ "Earnings, hedge  earnings" -> ["earnings", "hedge"]: split on commas and spaces,
    lower-cased, deduplicated, sorted; NoteError naming the first bad tag."""
    tags = sorted({t.lower() for t in re.split(r"[,\s]+", raw or "") if t})
    for t in tags:
        if not re.match(TAG_PATTERN, t):
            raise NoteError(
                "tags",
                f"{t!r}: a tag is 1-32 of a-z, 0-9, '-' and '_', starting with a letter or digit",
            )
    if len(tags) > TAGS_MAX:
        raise NoteError("tags", f"at most {TAGS_MAX} tags, got {len(tags)}")
    return tags


def note_save(
    *,
    strategy: Strategy,
    text: str,
    tags: str,
    author: str,
    trade_id: int | None = None,
    ticker: str = "",
) -> Note | None:
    """Create, replace or (empty text and no tags) delete the note on one of the
    strategy's trades (``trade_id``) or on its position key (``ticker``). Validates
    before it writes anything: NoteError, nothing changed."""
    text = (text or "").strip()
    if len(text) > NOTE_MAX_CHARS:
        raise NoteError("text", f"at most {NOTE_MAX_CHARS} characters, got {len(text)}")
    names = tags_parse(tags)
    if (trade_id is None) == (not ticker):
        raise NoteError("target", "is one trade or one position ticker")
    if trade_id is not None:
        if not Trade.objects.filter(pk=trade_id, strategy=strategy).exists():
            raise NoteError("trade", f"{trade_id} is not a trade of {strategy.name}")
        key = {"strategy": strategy, "trade_id": trade_id, "ticker": ""}
    else:
        ticker = ticker.strip()
        if not Instrument.objects.filter(ticker=ticker).exists():
            raise NoteError("ticker", f"{ticker[:40]!r} is not an instrument")
        key = {"strategy": strategy, "trade": None, "ticker": ticker}
    with transaction.atomic():
        note = Note.objects.filter(**key).first()
        if not text and not names:
            if note is not None:
                note.delete()
            return None
        if note is None:
            note = Note(**key)
        note.text, note.author = text, author
        note.save()
        for name in names:
            Tag.objects.get_or_create(name=name)
        note.tags.set(Tag.objects.filter(name__in=names))
    return note
