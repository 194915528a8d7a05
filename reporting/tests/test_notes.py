"""Notes and tags on positions and trades (spec Phase 5): staff write them on the strategy
page, validated; they are annotations, not book state."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from operations.config import portfolio_configure
from operations.digest import portfolio_digest
from operations.update import run_update
from portfolio.models import Portfolio, Position, Strategy, Trade
from portfolio.services.config import allocation_spec_read
from reporting.models import Note, Tag
from reporting.services.notes import NoteError, note_save, tags_parse

DEMO = Path(__file__).resolve().parents[2] / "config" / "strategy_allocation.yaml"
pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("desk", password="x-not-real-1", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def book():
    portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    run_update(as_of=date(1990, 3, 30), load_prices=False)
    return Strategy.objects.filter(positions__isnull=False).order_by("position_order").first()


def test_tags_are_a_small_normalised_set():
    assert tags_parse("Earnings, hedge  earnings,") == ["earnings", "hedge"]
    for bad in ("a b!", "-lead", "x" * 33, ",".join(f"t{i}" for i in range(9))):
        with pytest.raises(NoteError) as exc:
            tags_parse(bad)
        assert exc.value.field == "tags"


def test_staff_note_a_position_and_a_trade_and_the_page_shows_them(staff, book):
    position = Position.objects.filter(strategy=book).select_related("instrument").first()
    trade = Trade.objects.filter(strategy=book).order_by("-date", "-id").first()
    url = f"/strategy/{book.name}/notes/"
    r = staff.post(
        url, {"ticker": position.instrument.ticker, "text": "Sized down", "tags": "Risk"}
    )
    assert r.status_code == 302 and r.url.endswith("#positions")
    staff.post(url, {"trade": trade.id, "text": "Fill looked late", "tags": "exec, review"})
    html = staff.get(f"/strategy/{book.name}/").content.decode()
    assert "Sized down" in html and "#risk" in html
    assert "Fill looked late" in html and "#exec" in html and "#review" in html
    # edit replaces text and tags; empty text and tags removes the note
    staff.post(url, {"trade": trade.id, "text": "Fill ok", "tags": "exec"})
    note = Note.objects.get(trade=trade)
    assert note.text == "Fill ok" and [t.name for t in note.tags.all()] == ["exec"]
    assert note.author == "desk"
    staff.post(url, {"trade": trade.id, "text": "", "tags": ""})
    assert not Note.objects.filter(trade=trade).exists()


def test_a_bad_note_is_refused_with_the_field_and_rule_and_changes_nothing(staff, book):
    trade = Trade.objects.filter(strategy=book).first()
    url = f"/strategy/{book.name}/notes/"
    r = staff.post(url, {"trade": trade.id, "text": "x" * 2001})
    assert r.status_code == 400 and b"text at most 2000 characters" in r.content
    r = staff.post(url, {"trade": trade.id, "text": "ok", "tags": "bad tag!"})
    assert r.status_code == 400 and b"tags 'tag!'" in r.content
    other = Trade.objects.exclude(strategy=book).first()
    r = staff.post(url, {"trade": other.id, "text": "not mine"})
    assert r.status_code == 400 and f"is not a trade of {book.name}".encode() in r.content
    r = staff.post(url, {"ticker": "NOPE", "text": "x"})
    assert r.status_code == 400
    assert not Note.objects.exists() and not Tag.objects.exists()


def test_only_staff_write_notes_and_the_form_needs_csrf(client, logged_in, book):
    trade = Trade.objects.filter(strategy=book).first()
    url = f"/strategy/{book.name}/notes/"
    assert logged_in.post(url, {"trade": trade.id, "text": "hi"}).status_code == 302
    assert "add note" not in logged_in.get(f"/strategy/{book.name}/").content.decode()
    assert not Note.objects.exists()
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    from django.contrib.auth import get_user_model

    strict.force_login(get_user_model().objects.create_user("s2", is_staff=True))
    assert strict.post(url, {"trade": trade.id, "text": "hi"}).status_code == 403


def test_a_position_note_survives_the_position_row_being_recreated(book):
    position = Position.objects.filter(strategy=book).select_related("instrument").first()
    ticker = position.instrument.ticker
    note_save(strategy=book, ticker=ticker, text="core holding", tags="core", author="desk")
    Position.objects.filter(strategy=book).delete()  # what a replay of the book does
    note = Note.objects.get(strategy=book, ticker=ticker)
    assert note.text == "core holding"


def test_notes_stay_out_of_the_digest_and_do_not_block_deleting_a_backtest(book):
    portfolio = book.portfolio
    before = portfolio_digest(portfolio)
    trade = Trade.objects.filter(strategy=book).first()
    note_save(strategy=book, trade_id=trade.id, text="annotated", tags="x", author="desk")
    assert portfolio_digest(portfolio) == before
    bt = portfolio_configure(
        spec=allocation_spec_read(DEMO), source="t", is_backtest=True, name="bt"
    )
    s = bt.strategies.first()
    Trade.objects.create(
        strategy=s,
        instrument=trade.instrument,
        date=trade.date,
        side="buy",
        quantity=1,
        price=1,
        value=1,
        cost=0,
        reason="signal",
    )
    note_save(strategy=s, trade_id=s.trades.first().id, text="bt note", tags="", author="d")
    Portfolio.objects.filter(pk=bt.pk).delete()
    assert list(Note.objects.values_list("text", flat=True)) == ["annotated"]


def test_the_admin_lists_notes_and_refuses_a_bad_tag(client, django_user_model, book):
    admin = django_user_model.objects.create_superuser("root", password="x-not-real-1")
    client.force_login(admin)
    note_save(
        strategy=book,
        ticker=book.positions.first().instrument.ticker,
        text="n",
        tags="core",
        author="root",
    )
    assert client.get("/admin/reporting/note/").status_code == 200
    r = client.post("/admin/reporting/tag/add/", {"name": "Bad Tag"})
    assert r.status_code == 200 and not Tag.objects.filter(name="Bad Tag").exists()
