"""``quantsite.rows.rows_insert`` stores exactly what ``bulk_create`` of the same values
stores: every field of every row, read back, is equal (floats bit for bit), on SQLite
(executemany) and PostgreSQL (COPY)."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from portfolio.models import Instrument, Portfolio, PortfolioSnapshot, Strategy, Trade
from quantsite.rows import rows_insert

pytestmark = pytest.mark.django_db


def _books():
    portfolio = Portfolio.objects.create(name="rows", initial_capital=1_000_000)
    a, b = (
        Strategy.objects.create(
            portfolio=portfolio, name=n, signal_type="momentum", target_allocation=0.5
        )
        for n in ("a", "b")
    )
    instrument = Instrument.objects.create(ticker="ROWS")
    return portfolio, a, b, instrument


def _trades(strategy_id: int, instrument_id: int) -> list[dict]:
    odd = [0.1 + 0.2, 1 / 3, 1e-300, -0.0, math.inf, 123456789.123456789]
    rows = []
    for i, x in enumerate(odd):
        y = x if math.isfinite(x) else 0.5  # JSON holds no infinity
        row = {
            "strategy_id": strategy_id,
            "instrument_id": np.int64(instrument_id),
            "date": date(2024, 1, 1 + i),
            "side": "buy" if i % 2 else "sell",
            "quantity": np.float64(abs(x) + 1e-9) if i % 2 else abs(x) + 1e-9,
            "price": 100.0 + x if math.isfinite(x) else 1.0,
            "value": x,
            "cost": 0.25 if i == 2 else 0.0,
            "reason": "signal",
            "detail": "ε détail" if i == 1 else "",
            "sizing": None if i == 0 else {"stage": i, "w": [y / 7, None], "n": "é"},
        }
        if i != 3:  # otherwise the field's default
            row["realized_pnl"] = x / 3
        rows.append(row)
    return rows


def _stored(model, **filters) -> list[tuple]:
    skip = {"id", *(f"{k}_id" for k in filters)}
    keep = [f.attname for f in model._meta.concrete_fields if f.attname not in skip]
    return [
        tuple(_bits(v) for v in row)
        for row in model.objects.filter(**filters).order_by("id").values_list(*keep)
    ]


def _bits(v):
    """A float as its bits (so -0.0 differs from 0.0 and NaN equals NaN)."""
    return ("float", np.float64(v).tobytes()) if isinstance(v, float) else v


def test_rows_insert_stores_what_bulk_create_stores():
    _, a, b, instrument = _books()
    Trade.objects.bulk_create(Trade(**r) for r in _trades(a.id, instrument.id))
    rows_insert(Trade, _trades(b.id, instrument.id))
    via_orm, via_rows = _stored(Trade, strategy=a), _stored(Trade, strategy=b)
    assert len(via_rows) == 6
    assert via_rows == via_orm


def test_missing_keys_take_the_field_defaults_and_extra_keys_are_ignored():
    portfolio, *_ = _books()
    row = {
        "portfolio_id": portfolio.id,
        "date": date(2024, 2, 1),
        "name": "not a column",
        **dict.fromkeys(("equity", "cash", "long_exposure", "short_exposure", "net_exposure"), 1.5),
        **dict.fromkeys(("gross_exposure", "leverage", "daily_return", "drawdown"), 0.5),
        "positions_gross": np.int64(3),
        "positions_net": 2,
    }
    rows_insert(PortfolioSnapshot, [row])
    stored = PortfolioSnapshot.objects.get(portfolio=portfolio)
    assert (stored.risk, stored.exposure_scale, stored.var_95) == ({}, 1.0, None)
    assert (stored.positions_gross, stored.equity) == (3, 1.5)


def test_a_missing_required_field_is_refused_and_nothing_is_written():
    portfolio, *_ = _books()
    with pytest.raises(KeyError, match="equity"):
        rows_insert(PortfolioSnapshot, [{"portfolio_id": portfolio.id, "date": date(2024, 1, 1)}])
    assert not PortfolioSnapshot.objects.exists()
