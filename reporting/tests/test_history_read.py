"""The pages' common history read: the column-speed selectors give the same frames as
the ORM ones, and the cached history (``history_load``) is never staler than the
committed state: a new bar, an operator's change or a deleted strategy is seen at once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from django.core.cache import cache, caches

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.models import Portfolio, PortfolioSnapshot, Strategy
from portfolio.services.config import allocation_spec_read
from portfolio.services.controls import Origin, strategy_pause
from reporting import selectors
from reporting.pages.common import history_load
from reporting.pages.performance import DEFAULT_WINDOW, SECTIONS
from risk.services import risk_spec_read

CONFIG = Path(__file__).resolve().parents[2] / "config"
pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(settings):
    """The pages cache on (the test settings turn it off); yields the settings."""
    settings.QUANTSITE_HISTORY_CACHE = True
    cache.clear()  # the strategy page's closes
    caches["pages"].clear()
    yield settings
    cache.clear()
    caches["pages"].clear()


def _demo(as_of: date) -> Portfolio:
    portfolio_configure(
        spec=allocation_spec_read(CONFIG / "strategy_allocation.yaml"),
        risk=risk_spec_read(CONFIG / "risk_limits.yaml"),
        source="demo",
    )
    run_update(as_of=as_of, load_prices=False)
    caches["pages"].clear()  # what the update built (test_an_update_builds_...): cold
    return _fresh()


def _fresh() -> Portfolio:
    """The live portfolio as a request loads it (with its state version)."""
    return selectors.portfolio_live_get()


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(a.dtypes) == list(b.dtypes)


def test_the_column_read_gives_the_orm_frames_value_for_value():
    portfolio = _demo(date(1990, 4, 30))
    snaps = selectors.portfolio_history_frame(portfolio=portfolio)
    assert len(snaps) == PortfolioSnapshot.objects.filter(portfolio=portfolio).count() > 80
    assert snaps["var_95"].isna().any() and snaps["var_95"].notna().any()  # NULL -> NaN
    _same(snaps, selectors.portfolio_snapshot_frame(portfolio=portfolio))
    _same(
        selectors.strategy_history_frame(portfolio=portfolio),
        selectors.strategy_snapshot_frame(portfolio=portfolio),
    )
    one = Strategy.objects.get(portfolio=portfolio, name="mean_reversion_20")
    _same(
        selectors.strategy_history_frame(portfolio=portfolio, strategy=one),
        selectors.strategy_snapshot_frame(portfolio=portfolio, strategy=one),
    )


def test_a_second_read_at_the_same_state_comes_from_the_cache(cached, django_assert_num_queries):
    portfolio = _demo(date(1990, 3, 30))
    # the strategies, the reference stamp's 2 (bars, instruments), both snapshot frames
    with django_assert_num_queries(5):
        first = history_load(portfolio=portfolio)
    fresh = _fresh()
    with django_assert_num_queries(3):  # the strategies and the stamp; snapshots cached
        again = history_load(portfolio=fresh)
    _same(again.snapshots, first.snapshots)
    _same(again.strategy_snapshots, first.strategy_snapshots)


def test_a_new_bar_is_read_at_once(cached):
    portfolio = _demo(date(1990, 3, 30))
    assert history_load(portfolio=portfolio).as_of == date(1990, 3, 30)
    run_update(as_of=date(1990, 4, 6), load_prices=False)
    portfolio = _fresh()
    history = history_load(portfolio=portfolio)
    assert history.as_of == date(1990, 4, 6)
    _same(history.snapshots, selectors.portfolio_snapshot_frame(portfolio=portfolio))
    _same(history.strategy_snapshots, selectors.strategy_snapshot_frame(portfolio=portfolio))


def test_an_operators_change_and_a_deleted_strategy_are_read_at_once(
    cached, django_assert_num_queries
):
    portfolio = _demo(date(1990, 3, 30))
    history_load(portfolio=portfolio)
    paused = Strategy.objects.get(portfolio=portfolio, name="momentum_60")
    strategy_pause(strategy=paused, origin=Origin(actor="quant", source="page"))
    fresh = _fresh()
    with django_assert_num_queries(5):  # the version moved: read from the database again
        history = history_load(portfolio=fresh)
    assert [s.status for s in history.strategies if s.name == "momentum_60"] == ["paused"]
    Strategy.objects.filter(pk=paused.pk).delete()  # no version bump: the ids changed
    history = history_load(portfolio=_fresh())
    assert "momentum_60" not in set(history.strategy_snapshots["strategy"])
    assert len(history.strategies) == 4


def test_before_the_first_commit_nothing_is_cached(cached):
    portfolio = portfolio_configure(
        spec=allocation_spec_read(CONFIG / "strategy_allocation.yaml"), source="demo"
    )
    assert selectors.state_stamp_get(portfolio=portfolio) is None
    assert history_load(portfolio=portfolio).snapshots.empty
    assert caches["pages"].get(f"reporting:history:{portfolio.pk}") is None


def test_the_page_shows_the_new_bar_after_an_update(cached, logged_in):
    _demo(date(1990, 3, 30))
    assert logged_in.get("/?format=json").json()["as_of"] == "1990-03-30"
    assert logged_in.get("/performance/?format=json").json()["as_of"] == "1990-03-30"
    run_update(as_of=date(1990, 4, 6), load_prices=False)
    assert logged_in.get("/?format=json").json()["as_of"] == "1990-04-06"
    assert logged_in.get("/performance/?format=json").json()["as_of"] == "1990-04-06"


def test_a_page_cached_at_a_state_follows_the_bars_the_instruments_and_its_own_rows(
    cached, logged_in
):
    """What a page reads besides the portfolio's rows changes without a commit of the
    update path: a bar stored, an instrument's sector edited in the admin, a strategy's
    parameters. The cached page follows each at once (``state_cached``'s stamp)."""
    from portfolio.models import Instrument, PriceBar

    _demo(date(1990, 3, 30))
    url = "/performance/?section=attribution"
    assert 'data-segment="Retail"' not in logged_in.get(url).content.decode()
    Instrument.objects.filter(ticker="AAPL").update(sector="Retail")
    assert 'data-segment="Retail"' in logged_in.get(url).content.decode()

    strategy = "/strategy/mean_reversion_20/"
    before = logged_in.get(strategy).content.decode()
    s = Strategy.objects.get(name="mean_reversion_20")
    s.parameters = {**s.parameters, "entry_z": 1.75}
    s.save(update_fields=["parameters"])
    after = logged_in.get(strategy).content.decode()
    assert "entry_z 1.75" in after and "entry_z 1.75" not in before

    portfolio = _fresh()
    assert logged_in.get("/").status_code == 200
    stamp = caches["pages"].get(f"reporting:overview:{portfolio.pk}")[0]
    PriceBar.objects.filter(pk=PriceBar.objects.latest("id").pk).delete()  # no commit
    assert logged_in.get("/").status_code == 200
    rebuilt = caches["pages"].get(f"reporting:overview:{portfolio.pk}")[0]
    assert rebuilt[:2] == stamp[:2] and rebuilt[2] != stamp[2]  # same state, bars moved


def _page_keys(portfolio: Portfolio) -> list[str]:
    keys = [f"reporting:{name}:{portfolio.pk}" for name in ("history", "overview", "risk")]
    keys += [f"reporting:performance:{DEFAULT_WINDOW}:{s}:{portfolio.pk}" for s in SECTIONS]
    keys += [f"reporting:strategy:{s.pk}::{portfolio.pk}" for s in portfolio.strategies.all()]
    return keys


def test_an_update_builds_every_page_before_it_returns(cached, logged_in):
    """``run_update`` builds the cached part of every page at the state it committed
    (``reporting.pages.warm``): the first request after a new bar is served from the cache
    (as few queries as the next one), with what a page built from the database shows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    portfolio = _demo(date(1990, 3, 30))
    assert all(caches["pages"].get(k) is None for k in _page_keys(portfolio))
    run_update(as_of=date(1990, 4, 6), load_prices=False)
    portfolio = _fresh()
    entries = [caches["pages"].get(k) for k in _page_keys(portfolio)]
    assert all(e is not None for e in entries), _page_keys(portfolio)
    assert {e[0][:2] for e in entries} == {selectors.state_stamp_get(portfolio=portfolio)}
    shown = ["/", "/risk/", "/strategy/momentum_60/"]
    for url in [*shown, *(f"/performance/?section={s}" for s in SECTIONS)]:
        with CaptureQueriesContext(connection) as first:
            assert logged_in.get(url).status_code == 200
        with CaptureQueriesContext(connection) as second:
            logged_in.get(url)
        assert len(first) == len(second), url
    warm = {u: logged_in.get(f"{u}?format=json").json() for u in ("/", "/performance/")}
    cached.QUANTSITE_HISTORY_CACHE = False
    for url, page in warm.items():
        assert logged_in.get(f"{url}?format=json").json() == page, url
        assert page["as_of"] == "1990-04-06"


def test_an_update_that_applies_nothing_builds_nothing(cached):
    portfolio = _demo(date(1990, 3, 30))
    run_update(as_of=date(1990, 3, 30), load_prices=False)
    assert all(caches["pages"].get(k) is None for k in _page_keys(portfolio))
