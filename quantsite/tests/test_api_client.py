"""A Python client generated from the schema (openapi-python-client, test-only, no network)
reads the demo through a live server with a token and gets what the database holds.

live_server needs transactional database access, whose teardown flushes every table,
including the bundled prices the session loaded once (conftest.py): ``prices_restored``
reloads them after this module, as in reporting/tests/test_browser.py.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

AS_OF = date(1990, 4, 30)
PACKAGE = "quantsite_client"


@pytest.fixture(scope="module")
def prices_restored(django_db_blocker):
    yield
    from portfolio.feeds import BundledProvider
    from portfolio.services.prices import prices_load

    with django_db_blocker.unblock():
        prices_load(provider=BundledProvider(), strict=True)


@pytest.fixture
def demo(prices_restored, transactional_db):
    from operations.config import portfolio_configure
    from operations.update import run_update
    from portfolio.feeds import BundledProvider
    from portfolio.services.config import allocation_spec_read
    from portfolio.services.prices import prices_load

    prices_load(provider=BundledProvider(), strict=True, until=AS_OF)  # no-op if present
    config = Path(settings.BASE_DIR) / "config"
    portfolio_configure(
        spec=allocation_spec_read(config / "strategy_allocation.yaml"), source="client-test"
    )
    run_update(as_of=AS_OF, load_prices=False)


@pytest.fixture
def generated(tmp_path):
    """The client package generated from the schema, imported; unloaded afterwards."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    (tmp_path / "schema.json").write_bytes(OpenApiJsonRenderer().render(schema))
    (tmp_path / "config.json").write_text(
        json.dumps({"post_hooks": [], "package_name_override": PACKAGE})
    )
    done = subprocess.run(
        [
            *(sys.executable, "-m", "openapi_python_client", "generate"),
            *("--path", str(tmp_path / "schema.json"), "--meta", "none"),
            *("--output-path", str(tmp_path / PACKAGE), "--config", str(tmp_path / "config.json")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _every_page(operation, page_class, **params) -> list:
    """Follow ``next`` (offset or cursor pagination alike) and return every result."""
    results = []
    while True:
        page = operation.sync(**params)
        assert isinstance(page, page_class), page
        results += page.results
        if not page.next_:
            return results
        params |= {
            k: int(v) if v.isdigit() else v for k, v in parse_qsl(urlsplit(page.next_).query)
        }


@pytest.mark.slow
def test_a_generated_client_reads_portfolios_strategies_and_trades(
    demo, live_server, generated, django_user_model
):
    from operations.tokens import api_token_create
    from portfolio.models import Portfolio, Strategy, Trade

    user = django_user_model.objects.create_user("notebook", password="not-a-real-password-1")
    api = generated.AuthenticatedClient(
        base_url=live_server.url, token=api_token_create(user=user).token, prefix="Token"
    )
    endpoints = importlib.import_module(f"{PACKAGE}.api")
    models = importlib.import_module(f"{PACKAGE}.models")
    portfolios_list = importlib.import_module(f"{endpoints.__name__}.portfolios.portfolios_list")
    strategies_list = importlib.import_module(f"{endpoints.__name__}.strategies.strategies_list")
    trades_list = importlib.import_module(f"{endpoints.__name__}.trades.trades_list")

    portfolios = _every_page(portfolios_list, models.PaginatedPortfolioList, client=api)
    db = Portfolio.objects.get()
    assert [
        (p.id, p.name, Decimal(str(p.initial_capital)), p.last_applied_date) for p in portfolios
    ] == [(db.pk, db.name, db.initial_capital, db.last_applied_date)]
    strategies = _every_page(strategies_list, models.PaginatedStrategyList, client=api, limit=2)
    assert sorted((s.id, s.name, s.cash, s.status.value) for s in strategies) == sorted(
        Strategy.objects.values_list("id", "name", "cash", "status")
    )
    trades = _every_page(trades_list, models.PaginatedTradeList, client=api, page_size=50)
    expected = Trade.objects.values_list(
        "id", "strategy__name", "instrument__ticker", "date", "side", "quantity", "price"
    )
    assert len(expected) > 50  # several pages
    assert sorted(
        (t.id, t.strategy, t.ticker, t.date, t.side.value, t.quantity, t.price) for t in trades
    ) == sorted(expected)
