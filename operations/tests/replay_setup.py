"""The configuration the live-equals-replay and crash-resume tests replay: the demo's
strategies with ``config/risk_limits.yaml`` (limits that fire: drawdown and correlation
pauses, leverage reductions, concentration alerts) and one webhook alert channel (and a
PagerDuty one in ``replay_tables``, so recoveries are alerted), under a chosen allocation
method. Shared by the in-process paths and the subprocess harness (whose
driver imports it), so both replay exactly the same book."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from operations.config import portfolio_configure
from operations.digest import portfolio_tables
from portfolio.engine.config_schema import parse_allocation_config
from portfolio.models import ConfigChange, Portfolio
from risk.models import AlertChannel
from risk.services import risk_spec_read

ROOT = Path(__file__).resolve().parents[2]
END = date(1991, 6, 28)  # ~375 bars: every kind of limit in risk_limits.yaml has fired
METHODS = {
    "static": {},
    "inverse_volatility": {"lookback": 20},
    "risk_parity": {"lookback": 63},
    "performance": {"lookback": 63, "metric": "sharpe"},
}
HOOK_URL = "http://127.0.0.1:9/"  # nothing listens: deliveries stay in the outbox


def replay_configure(
    method: str, *, hook_url: str = HOOK_URL, pagerduty: bool = False
) -> Portfolio:
    """A fresh demo portfolio allocated by ``method``, with a webhook channel (and a
    PagerDuty one, which also gets a delivery per recovery, when ``pagerduty``)."""
    data = yaml.safe_load((ROOT / "config" / "strategy_allocation.yaml").read_text())
    data["portfolio"]["allocation_method"] = method
    data["portfolio"]["allocation_params"] = METHODS[method]
    spec = parse_allocation_config(data, source=f"demo ({method})")
    risk = risk_spec_read(ROOT / "config" / "risk_limits.yaml")
    portfolio = portfolio_configure(spec=spec, risk=risk, source="live-equals-replay")
    AlertChannel.objects.create(
        portfolio=portfolio, name="hook", kind="webhook", config={"url": hook_url}
    )
    if pagerduty:
        AlertChannel.objects.create(
            portfolio=portfolio,
            name="pager",
            kind="pagerduty",
            config={"routing_key": "R" * 32, "api_base": hook_url},
        )
    return portfolio


def replay_tables(method: str, apply, *, end: date = END) -> dict[str, list[tuple]]:
    """``configured_tables`` of the replay configuration under ``method`` (with PagerDuty)."""
    return configured_tables(lambda: replay_configure(method, pagerduty=True), apply, end=end)


def configured_tables(configure, apply, *, end: date = END) -> dict[str, list[tuple]]:
    """Configure a fresh portfolio (``configure()``), feed it the bars up to ``end`` with
    ``apply``, read every table, and delete it again (so the next path starts from the
    same empty database)."""
    portfolio = configure()
    apply(portfolio)
    portfolio.refresh_from_db()
    assert portfolio.last_applied_date == end
    tables = portfolio_tables(portfolio)
    portfolio.delete()
    ConfigChange.objects.all().delete()
    return tables


def killed_then_resumed(closes, monkeypatch, *, chunk_dates: int, end: date = END):
    """A path that dies (``KeyboardInterrupt``) in the third chunk's write, then resumes
    from what was committed."""
    import pytest

    from operations import update as update_service
    from operations.update import portfolio_apply

    def apply(portfolio):
        real, calls = update_service.chunk_save, {"n": 0}

        def dying(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt("killed in the third chunk")
            return real(*args, **kwargs)

        monkeypatch.setattr(update_service, "chunk_save", dying)
        with pytest.raises(KeyboardInterrupt):
            portfolio_apply(portfolio=portfolio, closes=closes, as_of=end, chunk_dates=chunk_dates)
        monkeypatch.setattr(update_service, "chunk_save", real)
        portfolio.refresh_from_db()
        assert portfolio.last_applied_date is not None and portfolio.last_applied_date < end
        portfolio_apply(portfolio=portfolio, closes=closes, as_of=end, chunk_dates=chunk_dates)

    return apply
