"""Portfolio data model: instruments, prices, strategies, books, trades, snapshots, runs.

Configuration (capital, costs, allocations, prices as loaded) is ``DecimalField``: what a
person typed or a file said. Every number the engine computes (book state, positions,
fills, snapshots, rebalances) is float64 in a ``FloatField`` (double precision on SQLite
and PostgreSQL), stored unrounded, so that what a new process reads back is bit for bit
what the engine carried ("live equals replay", DESIGN.md). Dates are bar dates
(``DateField``); timestamps are aware UTC datetimes.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from portfolio.engine import names

# Wide enough for float64's 15-17 significant digits on values up to 1e13.
MONEY = {"max_digits": 28, "decimal_places": 10}
RATIO = {"max_digits": 20, "decimal_places": 12}


class Instrument(models.Model):
    """A tradable (or benchmark) instrument. ``multiplier`` converts price to value."""

    class AssetClass(models.TextChoices):
        EQUITY = "equity", "Equity"
        ETF = "etf", "ETF"
        INDEX = "index", "Index"
        FUTURE = "future", "Future"
        FX = "fx", "FX"
        CRYPTO = "crypto", "Crypto"
        OTHER = "other", "Other"

    ticker = models.CharField(
        max_length=32,
        unique=True,
        validators=[RegexValidator(names.TICKER, names.TICKER_RULE)],
    )
    name = models.CharField(max_length=200, blank=True)
    sector = models.CharField(max_length=100, blank=True, default="Unknown")
    asset_class = models.CharField(
        max_length=16, choices=AssetClass.choices, default=AssetClass.EQUITY
    )
    multiplier = models.DecimalField(max_digits=18, decimal_places=6, default=Decimal("1"))
    is_benchmark = models.BooleanField(
        default=False, help_text="Benchmarks are priced and charted but never traded."
    )

    class Meta:
        ordering = ["ticker"]
        constraints = [
            models.CheckConstraint(condition=Q(multiplier__gt=0), name="instrument_multiplier_pos")
        ]

    def __str__(self) -> str:
        return self.ticker


class PriceBar(models.Model):
    """One daily bar. Only ``close`` is required; bundled data carries closes only."""

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="bars")
    date = models.DateField()
    open = models.DecimalField(**MONEY, null=True, blank=True)
    high = models.DecimalField(**MONEY, null=True, blank=True)
    low = models.DecimalField(**MONEY, null=True, blank=True)
    close = models.DecimalField(**MONEY)
    volume = models.BigIntegerField(null=True, blank=True)
    source = models.CharField(max_length=32, default="bundled")
    repaired = models.BooleanField(
        default=False, help_text="Set when a validation rule filled this bar (see DataIssue)."
    )

    class Meta:
        ordering = ["instrument", "date"]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "date"], name="pricebar_unique_day"),
            models.CheckConstraint(condition=Q(close__gt=0), name="pricebar_close_pos"),
        ]
        indexes = [models.Index(fields=["date"])]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.date} {self.close}"


class DataIssue(models.Model):
    """A bar that validation rejected or repaired, and the rule that decided it."""

    class Action(models.TextChoices):
        REJECTED = "rejected", "Rejected"
        REPAIRED = "repaired", "Repaired"

    created_at = models.DateTimeField(auto_now_add=True)
    provider = models.CharField(max_length=32)
    source = models.CharField(max_length=500, blank=True, help_text="File or URL")
    row = models.IntegerField(null=True, blank=True, help_text="1-based data row in the file")
    ticker = models.CharField(max_length=32, blank=True)
    date = models.DateField(null=True, blank=True)
    rule = models.CharField(max_length=64)
    action = models.CharField(max_length=16, choices=Action.choices)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return f"{self.action} {self.ticker} {self.date}: {self.rule}"


class Portfolio(models.Model):
    """A set of strategy books sharing capital, with allocation and rebalancing rules."""

    class AllocationMethod(models.TextChoices):
        STATIC = "static", "Static"
        INVERSE_VOLATILITY = "inverse_volatility", "Inverse volatility"
        RISK_PARITY = "risk_parity", "Risk parity"
        PERFORMANCE = "performance", "Performance-based"
        KELLY = "kelly", "Kelly"
        HIERARCHICAL = "hierarchical_risk_budget", "Hierarchical risk budget"

    class RebalanceTrigger(models.TextChoices):
        PERIODIC = "periodic", "Periodic"
        THRESHOLD = "threshold", "Drift threshold"
        MANUAL = "manual", "Manual only"

    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"
        QUARTERLY = "quarterly", "Quarterly"

    name = models.CharField(max_length=200, unique=True)
    initial_capital = models.DecimalField(**MONEY)
    leverage_target = models.DecimalField(
        max_digits=8,
        decimal_places=4,
        default=Decimal("1"),
        help_text="Allocations must sum to this (1 = 100%).",
    )
    allocation_method = models.CharField(
        max_length=32, choices=AllocationMethod.choices, default=AllocationMethod.STATIC
    )
    allocation_params = models.JSONField(default=dict, blank=True)
    rebalance_trigger = models.CharField(
        max_length=16, choices=RebalanceTrigger.choices, default=RebalanceTrigger.PERIODIC
    )
    rebalance_frequency = models.CharField(
        max_length=16, choices=Frequency.choices, default=Frequency.MONTHLY
    )
    rebalance_threshold = models.DecimalField(
        max_digits=8, decimal_places=6, default=Decimal("0.05")
    )

    class RebalanceMethod(models.TextChoices):
        CASH = "cash", "Cash transfers (sell pro rata only when short of cash)"
        PROPORTIONAL = "proportional", "Scale every position proportionally"
        LIQUIDATE = "liquidate", "Liquidate and re-buy"

    rebalance_method = models.CharField(
        max_length=16, choices=RebalanceMethod.choices, default=RebalanceMethod.CASH
    )
    rebalance_trading_day = models.PositiveSmallIntegerField(
        default=1, help_text="Periodic rebalance on the Nth bar of the period (1 = first)."
    )
    commission_bps = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    slippage_bps = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    whole_shares = models.BooleanField(default=False)
    trade_band = models.FloatField(
        default=0.0, help_text="Skip re-sizing a held position whose weight drifted less."
    )
    is_backtest = models.BooleanField(default=False)
    # Engine state: the last bar date applied, and the running equity peak for drawdown.
    last_applied_date = models.DateField(null=True, blank=True)
    peak_equity = models.FloatField(null=True, blank=True)
    last_equity = models.FloatField(null=True, blank=True)
    config_source = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(initial_capital__gt=0), name="portfolio_capital_pos"
            ),
            models.CheckConstraint(
                condition=Q(leverage_target__gt=0), name="portfolio_leverage_pos"
            ),
            models.CheckConstraint(
                condition=Q(commission_bps__gte=0) & Q(slippage_bps__gte=0),
                name="portfolio_costs_nonneg",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StateVersion(models.Model):
    """The portfolio's committed state version for the live pages: bumped by one in the
    transaction of every commit that changes what the pages show (a chunk of bars), so a
    page that has seen version N knows whether it is current. It counts commits, not bars
    (a 500-commit replay ends higher than a 1-commit one), so it is not part of the
    live-equals-replay digest. Its own table, so that saving a Portfolio loaded earlier
    can never write an older version back."""

    portfolio = models.OneToOneField(
        Portfolio, on_delete=models.CASCADE, primary_key=True, related_name="state_version"
    )
    version = models.PositiveBigIntegerField(default=0)
    as_of = models.DateField(null=True, blank=True, help_text="Last bar date of the commit.")
    committed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.portfolio_id} v{self.version}"


class Strategy(models.Model):
    """One paper-trading book inside a portfolio: signal, sizing rules and its state."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="strategies")
    name = models.CharField(
        max_length=100,
        validators=[RegexValidator(names.STRATEGY_NAME, names.STRATEGY_NAME_RULE)],
    )
    signal_type = models.CharField(max_length=64)
    parameters = models.JSONField(default=dict, blank=True)
    target_allocation = models.DecimalField(max_digits=10, decimal_places=6)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    risk_config = models.JSONField(default=dict, blank=True)
    retired_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Retired by an operator: paused for good, allocation 0, history kept.",
    )
    approval_required = models.BooleanField(
        default=False,
        help_text="Trade approval: the signal's orders wait for a staff approval and expire "
        "if not approved before the next bar (rebalance and risk fills are not gated).",
    )
    commission_bps = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Overrides the portfolio's commission when set.",
    )
    slippage_bps = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Overrides the portfolio's slippage when set.",
    )
    trade_band = models.FloatField(
        null=True, blank=True, help_text="Overrides the portfolio's trade band when set."
    )
    position_order = models.PositiveIntegerField(default=0)
    # Book state, written by the update path only.
    cash = models.FloatField(default=0.0)
    realized_pnl = models.FloatField(default=0.0)
    last_equity = models.FloatField(null=True, blank=True)
    nav = models.FloatField(default=1.0, help_text="Cumulative return index, flows excluded.")
    peak_nav = models.FloatField(default=1.0)
    pending_targets = models.JSONField(
        null=True, blank=True, help_text="Target weights decided on the last bar, to fill next."
    )
    pending_decided_on = models.DateField(null=True, blank=True)
    current_allocation = models.FloatField(
        null=True,
        blank=True,
        help_text="Allocation in force, set by the allocation method at the last rebalance "
        "(empty: the target allocation).",
    )
    history_days = models.PositiveIntegerField(
        default=0, help_text="Days of return history since the book's first non-zero return."
    )

    class Meta:
        ordering = ["portfolio", "position_order", "name"]
        verbose_name_plural = "strategies"
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "name"], name="strategy_unique_name"),
            # Upper bound checked against the portfolio's leverage target by the services.
            models.CheckConstraint(
                condition=Q(target_allocation__gte=0), name="strategy_allocation_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PendingOrder(models.Model):
    """The signal orders an approval-gated strategy decided at the close of ``decided_on``
    (``Strategy.approval_required``; the engine's ``OrderDecision``): the target weights and
    the orders they would make at that close. They wait for a staff review (approve or
    reject, ``reviewed_*``) and are resolved by the update path at the next bar
    (``resolved_on``): filled, rejected, or expired when not approved in time or no longer
    tradable (``cause``). ``orders``: ``[{"ticker", "side", "quantity", "price"}]`` at the
    decision's close, sells first; the fill is sized again at the next close."""

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting approval"
        APPROVED = "approved", "Approved (fills at the next bar)"
        REJECTED = "rejected", "Rejected"
        FILLED = "filled", "Filled"
        EXPIRED = "expired", "Expired"

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="orders")
    decided_on = models.DateField()
    targets = models.JSONField(default=dict, blank=True)
    orders = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    resolved_on = models.DateField(null=True, blank=True)
    cause = models.CharField(max_length=200, blank=True)
    fills_count = models.PositiveIntegerField(default=0)
    reviewed_by = models.CharField(max_length=150, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-decided_on", "strategy"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "decided_on"], name="pending_order_unique_decision"
            ),
        ]
        indexes = [models.Index(fields=["status", "decided_on"])]

    def __str__(self) -> str:
        return f"{self.strategy} orders of {self.decided_on} ({self.status})"


class Position(models.Model):
    """An open position of one strategy book. Signed quantity: negative is short."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="positions")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT)
    quantity = models.FloatField()
    avg_entry_price = models.FloatField()
    entry_date = models.DateField()

    class Meta:
        ordering = ["strategy", "instrument"]
        constraints = [
            models.UniqueConstraint(fields=["strategy", "instrument"], name="position_unique"),
            models.CheckConstraint(condition=~Q(quantity=0), name="position_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.strategy_id} {self.instrument_id} {self.quantity}"


class Trade(models.Model):
    """One fill. ``quantity`` is positive; ``side`` says the direction."""

    class Side(models.TextChoices):
        BUY = "buy", "Buy"
        SELL = "sell", "Sell"

    class Reason(models.TextChoices):
        SIGNAL = "signal", "Signal"
        REBALANCE = "rebalance", "Rebalance"
        RISK_ACTION = "risk_action", "Risk action"
        MANUAL = "manual", "Manual"
        RETIRE = "retire", "Retirement"

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="trades")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT)
    date = models.DateField()
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.FloatField()
    price = models.FloatField(help_text="Fill price, slippage included.")
    value = models.FloatField(help_text="quantity x price x multiplier")
    cost = models.FloatField(help_text="Commission plus slippage, in money.")
    realized_pnl = models.FloatField(default=0.0)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    detail = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="What a risk fill acted on (a stop-loss: its level and reference).",
    )
    sizing = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text="A signal fill's sizing inputs (portfolio/engine/cycle.py, sizing_detail): "
        "target weight, exposure scale, risk multipliers, capped weight, equity and close; "
        "NULL on other fills and on rows written before it existed.",
    )

    class Meta:
        ordering = ["date", "id"]
        indexes = [models.Index(fields=["strategy", "date"]), models.Index(fields=["date"])]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_qty_pos")]

    def __str__(self) -> str:
        return f"{self.date} {self.side} {self.quantity} {self.instrument_id}"


class StrategySnapshot(models.Model):
    """A strategy book at the close of one bar date."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="snapshots")
    date = models.DateField()
    equity = models.FloatField()
    cash = models.FloatField()
    long_exposure = models.FloatField()
    short_exposure = models.FloatField(help_text="Absolute value of shorts.")
    leverage = models.FloatField(help_text="gross exposure / equity")
    weight = models.FloatField(help_text="equity / portfolio equity")
    daily_return = models.FloatField(help_text="Simple return of equity vs. the prior bar.")
    drawdown = models.FloatField(help_text="equity / running peak - 1 (<= 0)")
    positions_count = models.PositiveIntegerField()
    realized_pnl = models.FloatField()
    unrealized_pnl = models.FloatField()
    status = models.CharField(max_length=16, default="active")
    allocation = models.FloatField(
        null=True, blank=True, help_text="Allocation in force at the close (after rebalancing)."
    )
    volatility = models.FloatField(
        null=True, blank=True, help_text="Rolling annualized vol, filled by the risk manager."
    )
    unit_return = models.FloatField(
        default=0.0,
        help_text="daily_return / the exposure the book held (portfolio exposure scale x "
        "risk multipliers): what the allocation methods and risk estimates read.",
    )
    flow = models.FloatField(
        default=0.0,
        help_text="Capital moved into the book at this close by funding, a rebalance "
        "or a retired book's wind-down (negative: out); daily_return = (equity - "
        "flow) / previous equity - 1.",
    )
    # Open-position figures of the close, after its fills (risk/engine/excursion.py has
    # the formulas). NULL on rows written before they existed, and for the weight of a
    # book holding positions with equity <= 0.
    max_position_weight = models.FloatField(
        null=True, blank=True, help_text="max |position value| / equity (0 when flat)"
    )
    open_mae = models.FloatField(
        null=True,
        blank=True,
        help_text="Largest adverse excursion of the open positions: worst close since entry "
        "vs. the average entry price, a fraction of it (0 when flat).",
    )

    class Meta:
        ordering = ["strategy", "date"]
        constraints = [
            models.UniqueConstraint(fields=["strategy", "date"], name="strategysnapshot_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.strategy_id} {self.date} {self.equity}"


class PortfolioSnapshot(models.Model):
    """The portfolio at the close of one bar date. ``equity`` is the sum of its books."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="snapshots")
    date = models.DateField()
    equity = models.FloatField()
    cash = models.FloatField()
    long_exposure = models.FloatField()
    short_exposure = models.FloatField()
    net_exposure = models.FloatField(help_text="Signed sum across books, netted.")
    gross_exposure = models.FloatField(help_text="Sum of |position| after netting.")
    leverage = models.FloatField(help_text="gross exposure (netted) / equity")
    daily_return = models.FloatField()
    drawdown = models.FloatField()
    positions_gross = models.PositiveIntegerField(help_text="Positions summed over books.")
    positions_net = models.PositiveIntegerField(help_text="Non-zero tickers after netting.")
    volatility = models.FloatField(null=True, blank=True, help_text="Filled by the risk manager.")
    var_95 = models.FloatField(null=True, blank=True, help_text="Filled by the risk manager.")
    # Risk metrics of the close, filled by the risk manager (risk/engine/metrics.py has the
    # formulas): positive loss fractions of equity, one day, historical over its window.
    var_99 = models.FloatField(null=True, blank=True)
    cvar_95 = models.FloatField(null=True, blank=True)
    cvar_99 = models.FloatField(null=True, blank=True)
    diversification_ratio = models.FloatField(null=True, blank=True)
    max_correlation = models.FloatField(null=True, blank=True)
    concentration_top5 = models.FloatField(null=True, blank=True)
    risk = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per-close detail: strategy correlation matrix, risk contributions, "
        "parametric VaR/CVaR, per-ticker net concentration.",
    )
    exposure_scale = models.FloatField(
        default=1.0,
        help_text="Sum of allocations in force during the day (the one its returns earned).",
    )
    open_mae = models.FloatField(
        null=True,
        blank=True,
        help_text="Largest open-position adverse excursion over every book, not netted "
        "(risk/engine/excursion.py); NULL on rows written before it existed.",
    )

    class Meta:
        ordering = ["portfolio", "date"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "date"], name="portfoliosnapshot_unique_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.date} {self.equity}"


class RebalanceEvent(models.Model):
    """Capital moved between books on one date, and why."""

    class Trigger(models.TextChoices):
        INITIAL = "initial", "Initial funding"
        PERIODIC = "periodic", "Periodic"
        THRESHOLD = "threshold", "Drift threshold"
        MANUAL = "manual", "Manual"
        RISK_BREACH = "risk_breach", "Risk breach"
        RETIRE = "retire", "Retired strategy wound down"

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="rebalances")
    date = models.DateField()
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    method = models.CharField(max_length=16, default="cash")
    weights_before = models.JSONField(default=dict)
    weights_after = models.JSONField(default=dict)
    capital_moved = models.FloatField()
    trades_count = models.PositiveIntegerField(default=0)
    cost = models.FloatField(default=0.0)
    request_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    allocation_method = models.CharField(max_length=32, blank=True)
    allocations_before = models.JSONField(default=dict, blank=True)
    allocations_after = models.JSONField(default=dict, blank=True)
    notes = models.JSONField(
        default=dict, blank=True, help_text="Per strategy: why it got its allocation."
    )
    stats = models.JSONField(
        default=dict, blank=True, help_text="Per strategy: the numbers the method used."
    )

    class Meta:
        ordering = ["portfolio", "date", "id"]

    def __str__(self) -> str:
        return f"{self.date} {self.trigger}"


class RebalanceRequest(models.Model):
    """An operator's request to rebalance (admin, API, config page). It applies at the
    first bar after ``after_date`` (the portfolio's last applied bar when it was made);
    requests waiting together make one rebalance. ``request_key`` makes a resubmission of
    the same request a no-op."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (applies at the next bar)"
        APPLIED = "applied", "Applied"

    portfolio = models.ForeignKey(
        Portfolio, on_delete=models.CASCADE, related_name="rebalance_requests"
    )
    request_key = models.CharField(max_length=100, unique=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    requested_by = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=32, default="api")
    method = models.CharField(
        max_length=16,
        choices=Portfolio.RebalanceMethod.choices,
        blank=True,
        help_text="Empty: the portfolio's rebalance method.",
    )
    after_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    event = models.ForeignKey(
        RebalanceEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="requests"
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["portfolio", "status"])]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.request_key} {self.status}"


class UpdateRun(models.Model):
    """One call of run_update (or a backtest replay): what it applied and how it ended."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued (waiting for a worker)"
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (already running)"

    portfolio = models.ForeignKey(
        Portfolio, on_delete=models.CASCADE, null=True, blank=True, related_name="runs"
    )
    trigger = models.CharField(max_length=32, default="command")
    as_of = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    first_date = models.DateField(null=True, blank=True)
    last_date = models.DateField(null=True, blank=True)
    dates_applied = models.PositiveIntegerField(default=0)
    bars_loaded = models.PositiveIntegerField(default=0)
    seconds_prices = models.FloatField(default=0)
    seconds_engine = models.FloatField(default=0)
    seconds_write = models.FloatField(default=0)
    error = models.TextField(blank=True)
    # Liveness, for the reaper: who runs it and when it last said so (queued: when queued).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    host = models.CharField(max_length=200, blank=True)

    IN_FLIGHT = (Status.QUEUED, Status.RUNNING)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} {self.status}"


class RunLock(models.Model):
    """A named lock row: whoever inserted it runs; everyone else says "already running"."""

    name = models.CharField(max_length=100, unique=True)
    owner = models.CharField(max_length=200)
    pid = models.IntegerField()
    host = models.CharField(max_length=200)
    acquired_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.owner}"


class ConfigChange(models.Model):
    """Audit trail: one changed configuration field, whatever the surface (``source``: yaml,
    page, admin, api, risk). Only configuration is recorded, never the book state the
    update path writes every bar."""

    at = models.DateTimeField(auto_now_add=True)
    portfolio = models.ForeignKey(
        Portfolio,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="config_changes",
        help_text="The portfolio the changed object belongs to (empty: global).",
    )
    actor = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=32)
    object_type = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    field = models.CharField(max_length=100)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    bar_date = models.DateField(
        null=True,
        blank=True,
        help_text="The bar at whose close the update path made the change (risk manager).",
    )
    applies_after = models.DateField(
        null=True,
        blank=True,
        help_text="An operator change (no bar_date): the portfolio's last applied bar when "
        "it was recorded; it takes effect at the first bar after this one.",
    )
    client_ip = models.GenericIPAddressField(
        null=True, blank=True, help_text="The client of the request (page, admin, API)."
    )

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_repr}.{self.field}"
