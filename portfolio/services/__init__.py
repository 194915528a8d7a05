"""Write-side services of the portfolio app. ``run_update`` is the one update path."""

from portfolio.services.update import portfolio_apply, run_update

__all__ = ["portfolio_apply", "run_update"]
