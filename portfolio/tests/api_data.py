"""A small cast for the API read tests: one live portfolio with two books (momo, carry),
``days`` consecutive snapshots each and ``trades`` fills, built with bulk_create so the
same tests run on 10 and 1,000 rows. Instruments come from the session's bundled prices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from portfolio.models import (
    Instrument,
    Portfolio,
    PortfolioSnapshot,
    Position,
    Strategy,
    StrategySnapshot,
    Trade,
)

START = date(2020, 1, 1)
TICKERS = ("AAPL", "AMD")


@dataclass
class Cast:
    portfolio: Portfolio
    momo: Strategy
    carry: Strategy
    days: int

    def day(self, i: int) -> date:
        return START + timedelta(days=i)


def equity_at(i: int) -> float:
    """A curve with a known peak (day 3) and trough (day 7) inside every window."""
    return 1_000_000.0 + {3: 50_000.0, 7: -80_000.0}.get(i % 10, 0.0) + i


def cast_build(*, days: int = 10, trades: int = 10, name: str = "Live") -> Cast:
    portfolio = Portfolio.objects.create(
        name=name, initial_capital=1_000_000, last_applied_date=START + timedelta(days - 1)
    )
    Portfolio.objects.filter(pk=portfolio.pk).update(last_equity=equity_at(days - 1))
    portfolio.refresh_from_db()
    momo, carry = (
        Strategy.objects.create(
            portfolio=portfolio,
            name=n,
            signal_type="momentum",
            target_allocation=0.5,
            position_order=i,
            nav=1.1 if n == "momo" else 0.95,
        )
        for i, n in enumerate(("momo", "carry"))
    )
    cast = Cast(portfolio, momo, carry, days)
    PortfolioSnapshot.objects.bulk_create(
        PortfolioSnapshot(
            portfolio=portfolio,
            date=cast.day(i),
            equity=equity_at(i),
            cash=0.0,
            long_exposure=1.0,
            short_exposure=0.0,
            net_exposure=1.0,
            gross_exposure=1.0,
            leverage=1.0,
            daily_return=0.001 * (i % 3),
            drawdown=-0.01 * (i % 5),
            positions_gross=2,
            positions_net=2,
            volatility=0.1 + i / 1e4,
            var_95=0.02,
            var_99=0.03,
            cvar_95=0.025,
            cvar_99=0.035,
            diversification_ratio=1.2,
            max_correlation=0.4,
            concentration_top5=0.6,
            risk={"var_95_parametric": 0.021},
        )
        for i in range(days)
    )
    StrategySnapshot.objects.bulk_create(
        StrategySnapshot(
            strategy=s,
            date=cast.day(i),
            equity=equity_at(i) / 2 + k,
            cash=0.0,
            long_exposure=1.0,
            short_exposure=0.0,
            leverage=1.0,
            weight=0.5,
            daily_return=0.002 * k,
            drawdown=-0.02 * k,
            positions_count=1,
            realized_pnl=0.0,
            unrealized_pnl=0.0,
            allocation=0.4 + 0.2 * k,
        )
        for i in range(days)
        for k, s in enumerate((momo, carry))
    )
    aapl, amd = (Instrument.objects.get(ticker=t) for t in TICKERS)
    Trade.objects.bulk_create(
        Trade(
            strategy=momo if i % 2 == 0 else carry,
            instrument=aapl if i % 4 < 2 else amd,
            date=cast.day(i % days),
            side="buy" if i % 3 else "sell",
            quantity=1.0 + i,
            price=100.0,
            value=100.0 * (1 + i),
            cost=0.1,
            reason="rebalance" if i % 5 == 0 else "signal",
        )
        for i in range(trades)
    )
    Position.objects.bulk_create(
        [
            Position(
                strategy=momo, instrument=aapl, quantity=10, avg_entry_price=50, entry_date=START
            ),
            Position(
                strategy=carry, instrument=aapl, quantity=-4, avg_entry_price=60, entry_date=START
            ),
            Position(
                strategy=carry, instrument=amd, quantity=2, avg_entry_price=5, entry_date=START
            ),
        ]
    )
    return cast


def books_add(cast: Cast, n: int) -> list[Strategy]:
    """``n`` more books in the cast's portfolio, each with one snapshot on the last day
    and one AAPL position (bulk-created: for the query-count tests)."""
    books = Strategy.objects.bulk_create(
        Strategy(
            portfolio=cast.portfolio,
            name=f"book{i:04d}",
            signal_type="momentum",
            target_allocation=0,
            position_order=10 + i,
        )
        for i in range(n)
    )
    aapl = Instrument.objects.get(ticker="AAPL")
    last = cast.day(cast.days - 1)
    StrategySnapshot.objects.bulk_create(
        StrategySnapshot(
            strategy=s, date=last, equity=1.0, cash=1.0, long_exposure=0.0, short_exposure=0.0,
            leverage=0.0, weight=0.0, daily_return=0.0, drawdown=0.0, positions_count=1,
            realized_pnl=0.0, unrealized_pnl=0.0,
        )
        for s in books
    )  # fmt: skip
    Position.objects.bulk_create(
        Position(strategy=s, instrument=aapl, quantity=1, avg_entry_price=1, entry_date=START)
        for s in books
    )
    return books
