"""Bring stored prices up to date from a provider, through validation.

Only bars after the last stored bar of each ticker are added: what is stored is never
overwritten. Every rejected or repaired bar is stored as a ``DataIssue`` and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Max

from portfolio.engine.bars import Plausibility, validate_bars
from portfolio.engine.errors import ConfigError
from portfolio.engine.names import ticker_problem
from portfolio.feeds import InstrumentInfo, PriceProvider, provider_for
from portfolio.models import DataIssue, Instrument, PriceBar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PricesLoadResult:
    bars_added: int
    issues: int
    first_date: date | None
    last_date: date | None


def provider_default() -> PriceProvider:
    return provider_for(
        settings.QUANTSITE_DATA_PROVIDER,
        csv_path=settings.QUANTSITE_DATA_CSV,
        max_bytes=price_file_max_bytes(),
        timeout=settings.QUANTSITE_PRICE_TIMEOUT_SECONDS,
    )


def price_file_max_bytes() -> int:
    return settings.QUANTSITE_PRICE_FILE_MAX_MB * 1024 * 1024


def plausibility_default() -> Plausibility:
    return Plausibility(
        min_price=settings.QUANTSITE_PRICE_MIN,
        max_price=settings.QUANTSITE_PRICE_MAX,
        max_jump=settings.QUANTSITE_PRICE_MAX_JUMP,
    )


def tickers_check(tickers: list[str] | None, *, where: str = "--add-tickers") -> set[str]:
    """The tickers a user adds explicitly, each checked against the ticker character set."""
    for t in tickers or []:
        problem = ticker_problem(t)
        if problem:
            raise ConfigError(where, problem)
    return set(tickers or [])


def known_infos(
    provider: PriceProvider, add_tickers: set[str] | None = None
) -> list[InstrumentInfo]:
    """The instruments a load may touch. A provider's own list is trusted (the bundled
    set, the tickers asked of Yahoo); a user's file may only name tickers that exist or
    that the user adds explicitly, so a stray or hostile column (``=HYPERLINK(...)``)
    never becomes a tradable instrument: its rows are rejected as ``unknown_ticker``."""
    infos = provider.instruments()
    if not getattr(provider, "user_file", False):
        return infos
    allowed = set(add_tickers or ()) | set(
        Instrument.objects.filter(ticker__in=[i.ticker for i in infos]).values_list(
            "ticker", flat=True
        )
    )
    return [i for i in infos if i.ticker in allowed]


def instruments_sync(infos: list[InstrumentInfo]) -> dict[str, Instrument]:
    """Create instruments the provider knows and the database does not. Existing rows keep
    their (possibly admin-edited) metadata."""
    existing = {
        i.ticker: i for i in Instrument.objects.filter(ticker__in=[x.ticker for x in infos])
    }
    new = [
        Instrument(
            ticker=x.ticker,
            name=x.name,
            sector=x.sector,
            asset_class=x.asset_class,
            multiplier=x.multiplier,
            is_benchmark=x.is_benchmark,
        )
        for x in infos
        if x.ticker not in existing
    ]
    Instrument.objects.bulk_create(new)
    return {i.ticker: i for i in Instrument.objects.filter(ticker__in=[x.ticker for x in infos])}


def prices_load(
    *,
    provider: PriceProvider | None = None,
    strict: bool = False,
    until: date | None = None,
    max_new_dates: int | None = None,
    add_tickers: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PricesLoadResult:
    """Validate the provider's bars and store the new ones (one transaction).

    ``strict``: any rejected bar refuses the whole load (``DataValidationError``), for files
    a user hands in. ``until``: ignore bars after this date. ``max_new_dates``: add at most
    this many new bar dates (the demo's one-bar-per-update replay). ``add_tickers``: new
    tickers a user's file may add (see ``known_infos``). ``progress(done, total)``, when
    given, is called with the bars stored so far, every 5,000 bars (nothing is printed
    here; ``quantsite.progress`` writes it).
    """
    provider = provider or provider_default()
    added = tickers_check(add_tickers)
    raw = provider.fetch()
    infos = known_infos(provider, added)
    validated = validate_bars(
        raw,
        source=provider.source,
        known_tickers={i.ticker for i in infos},
        strict=strict,
        plausibility=plausibility_default(),
    )
    bars = validated.bars
    last_stored = dict(PriceBar.objects.values_list("instrument__ticker").annotate(m=Max("date")))
    cutoff = bars["ticker"].map(last_stored)
    new = bars[cutoff.isna() | (bars["date"] > cutoff.fillna(date.min))]
    if until is not None:
        new = new[new["date"] <= until]
    if max_new_dates is not None:
        keep = sorted(new["date"].unique())[:max_new_dates]
        new = new[new["date"].isin(keep)]
    issues = [
        i
        for i in validated.issues
        if i.date is None or i.ticker not in last_stored or i.date > last_stored[i.ticker]
    ]
    with transaction.atomic():
        instruments = instruments_sync(infos)
        _bars_store(new, instruments, provider.name, progress)
        DataIssue.objects.bulk_create(
            [
                DataIssue(
                    provider=provider.name,
                    source=i.source,
                    row=i.row,
                    ticker=i.ticker,
                    date=i.date,
                    rule=i.rule,
                    action=i.action,
                    detail=i.detail,
                )
                for i in issues
            ]
        )
    for i in issues:
        log.warning("price data %s", i.message())
    dates = new["date"]
    return PricesLoadResult(
        bars_added=len(new),
        issues=len(issues),
        first_date=dates.min() if len(new) else None,
        last_date=dates.max() if len(new) else None,
    )


def _bars_store(frame: pd.DataFrame, instruments, source: str, progress) -> None:
    batch, total = 5000, len(frame)
    if progress is not None and total:
        progress(0, total)
    for k in range(0, total, batch):
        part = frame.iloc[k : k + batch]
        PriceBar.objects.bulk_create(_bar_rows(part, instruments, source), batch_size=batch)
        if progress is not None:
            progress(k + len(part), total)


def _bar_rows(frame: pd.DataFrame, instruments: dict[str, Instrument], source: str):
    def num(v):
        return None if pd.isna(v) else float(v)

    for row in frame.itertuples(index=False):
        yield PriceBar(
            instrument=instruments[row.ticker],
            date=row.date,
            open=num(row.open),
            high=num(row.high),
            low=num(row.low),
            close=float(row.close),
            volume=None if pd.isna(row.volume) else int(row.volume),
            source=source,
            repaired=bool(row.repaired),
        )
