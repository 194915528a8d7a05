"""Bring stored prices up to date from a provider, through validation.

Only bars after the last stored bar of each ticker are added: what is stored is never
overwritten. Every rejected or repaired bar is stored as a ``DataIssue`` and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Max

from portfolio.engine.bars import validate_bars
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
        timeout=settings.QUANTSITE_PRICE_TIMEOUT_SECONDS,
    )


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
) -> PricesLoadResult:
    """Validate the provider's bars and store the new ones (one transaction).

    ``strict``: any rejected bar refuses the whole load (``DataValidationError``), for files
    a user hands in. ``until``: ignore bars after this date. ``max_new_dates``: add at most
    this many new bar dates (the demo's one-bar-per-update replay).
    """
    provider = provider or provider_default()
    raw = provider.fetch()
    infos = provider.instruments()
    validated = validate_bars(
        raw, source=provider.source, known_tickers={i.ticker for i in infos}, strict=strict
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
        PriceBar.objects.bulk_create(_bar_rows(new, instruments, provider.name), batch_size=5000)
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
