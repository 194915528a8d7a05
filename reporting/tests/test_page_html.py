"""The HTML of each page's stored part is rendered once per committed state, inside the
page's cached build (``reporting.pages.common.stored_html``): the page is byte for byte
the same with the cache on (a miss, then a hit) and off, a new bar changes it, a staff
user and a user without staff rights each see their own controls and tokens whoever
built the entry, the update's warm-up builds it, and a warm request's queries do not
grow with the state."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from django.core.cache import cache, caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.services.config import allocation_spec_read
from reporting import selectors
from reporting.pages.performance import DEFAULT_WINDOW, SECTIONS
from risk.services import risk_spec_read

ROOT = Path(__file__).resolve().parents[2]
STORED = ROOT / "templates" / "reporting" / "stored"
PAGES = [
    "/",
    "/risk/",
    "/risk/?severity=high",
    "/performance/",
    "/performance/?section=trades",
    "/performance/?section=attribution",
    "/performance/?section=rolling",
    "/strategy/momentum_60/",
    "/strategy/mean_reversion_20/?page=2",
    "/?format=json",
    "/strategy/momentum_60/?format=json",
]
TOKEN = re.compile(r'(name=\\?"csrfmiddlewaretoken\\?" value=\\?")[^"\\]+')
TOKEN_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(settings):
    """The pages cache on (the test settings turn it off); yields the settings."""
    settings.QUANTSITE_HISTORY_CACHE = True
    cache.clear()
    caches["pages"].clear()
    yield settings
    cache.clear()
    caches["pages"].clear()


@pytest.fixture
def staff(django_user_model) -> Client:
    user = django_user_model.objects.create_user("ops", password="not-a-real-password-2")
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def _demo(as_of: date) -> None:
    portfolio_configure(
        spec=allocation_spec_read(ROOT / "config" / "strategy_allocation.yaml"),
        risk=risk_spec_read(ROOT / "config" / "risk_limits.yaml"),
        source="demo",
    )
    run_update(as_of=as_of, load_prices=False, warm_pages=False)


def _masked(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return TOKEN.sub(r"\1CSRF", response.content.decode())


def _stored_templates(response) -> set[str]:
    return {t.name for t in response.templates if t.name and "reporting/stored/" in t.name}


def _cached_html() -> list[str]:
    """Every rendered part the pages cache holds for the live portfolio."""
    pages = caches["pages"]
    pk = selectors.portfolio_live_get().pk
    keys = ["overview", "risk", *(f"performance:{DEFAULT_WINDOW}:{s}" for s in SECTIONS)]
    entries = [pages.get(f"reporting:{k}:{pk}") for k in keys]
    strategies = selectors.strategy_list(portfolio=selectors.portfolio_live_get())
    entries += [pages.get(f"reporting:strategy:{s.pk}::{pk}") for s in strategies]
    return [html for e in entries if e is not None for html in e[1]["html"].values()]


def test_the_stored_templates_read_nothing_of_the_request():
    names = sorted(STORED.glob("*.html"))
    assert len(names) == 5
    for path in names:
        text = path.read_text()
        for word in ("csrf_token", "user.", "request.", "messages", "perms"):
            assert word not in text, (path.name, word)


def test_a_page_is_the_same_bytes_with_the_html_cache_on_and_off(cached, staff):
    _demo(date(1990, 4, 30))
    cached.QUANTSITE_HISTORY_CACHE = False
    fresh = {url: _masked(staff, url) for url in PAGES}
    cached.QUANTSITE_HISTORY_CACHE = True
    built = []
    for url in PAGES:
        if _stored_templates(staff.get(url)):
            built.append(url)
        assert not _stored_templates(staff.get(url)), url  # a hit renders no stored part
        assert _masked(staff, url) == fresh[url], url
    # the risk page's filters and the JSON of a page share its stored part
    assert built == [u for u in PAGES if "format=json" not in u and "severity" not in u]
    assert 'data-live="key-metrics"' in fresh["/"] and 'data-figure="fig-equity"' in fresh["/"]
    assert staff.get("/?format=json").json()["fragments"]["key-metrics"].startswith("<section")


def test_a_new_bar_changes_the_cached_html(cached, logged_in):
    _demo(date(1990, 4, 30))
    before = logged_in.get("/strategy/momentum_60/").content.decode()
    assert '<span id="as-of">1990-04-30</span>' in logged_in.get("/").content.decode()
    run_update(as_of=date(1990, 5, 31), load_prices=False, warm_pages=False)
    after = logged_in.get("/strategy/momentum_60/")
    assert _stored_templates(after)  # a new state: built afresh
    assert "as of 1990-05-31" in after.content.decode() and "as of 1990-04-30" in before
    assert '<span id="as-of">1990-05-31</span>' in logged_in.get("/").content.decode()
    figure = logged_in.get("/?format=json").json()["figures"]["fig-equity"]
    assert max(figure["data"][0]["x"]).startswith("1990-05-31")


def test_each_user_sees_their_own_controls_and_token_whoever_built_the_entry(
    cached, staff, logged_in
):
    _demo(date(1990, 4, 30))
    for first, second in ((staff, logged_in), (logged_in, staff)):
        caches["pages"].clear()
        first.get("/strategy/mean_reversion_20/")
        page = {c: c.get("/strategy/mean_reversion_20/").content.decode() for c in (first, second)}
        assert 'class="note-edit"' in page[staff] and 'id="update-now"' in page[staff]
        assert 'class="note-edit"' not in page[logged_in]
        assert 'id="update-now"' not in page[logged_in]
        tokens = {c: set(TOKEN_VALUE.findall(page[c])) for c in (staff, logged_in)}
        assert tokens[staff] and tokens[logged_in] and not tokens[staff] & tokens[logged_in]
    logged_in.get("/")
    logged_in.get("/risk/")
    logged_in.get("/performance/")
    html = _cached_html()
    assert len(html) == 5  # overview, risk, performance, the strategy's 2 parts
    assert not any("csrfmiddlewaretoken" in h or "note-edit" in h for h in html)


def test_the_update_builds_the_html_and_a_warm_request_is_flat(cached, logged_in):
    _demo(date(1990, 3, 30))
    counts = []
    for as_of in (date(1990, 4, 30), date(1990, 6, 29)):
        run_update(as_of=as_of, load_prices=False)  # its warm-up builds the pages
        for url in ("/", "/risk/", "/performance/", "/strategy/momentum_60/"):
            first = logged_in.get(url)
            assert not _stored_templates(first), url  # the warm-up built it
            with CaptureQueriesContext(connection) as queries:
                logged_in.get(url)
            counts.append((url, len(queries)))
    assert counts[:4] == counts[4:]


def test_the_bars_stamp_is_the_count_and_highest_id_of_the_bars_up_to_a_date():
    from django.db.models import Count, Max

    from portfolio.models import PriceBar

    for end in (None, date(2020, 1, 2), date(1990, 1, 3), date(1980, 1, 1)):
        bars = PriceBar.objects.all() if end is None else PriceBar.objects.filter(date__lte=end)
        stamp = bars.order_by().aggregate(n=Count("id"), last=Max("id"))
        assert selectors.price_bar_stamp(end=end) == (stamp["n"], stamp["last"] or 0), end
    assert selectors.price_bar_stamp(end=date(1980, 1, 1)) == (0, 0)
    assert selectors.price_bar_stamp()[0] > 100_000
