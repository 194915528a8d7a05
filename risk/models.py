"""Risk data model: limits, violations, alert channels and the alert outbox.

Limits are loaded from ``config/risk_limits.yaml`` and editable in the admin. Their
evaluation and the automatic actions belong to the risk manager (see risk/services).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from portfolio.models import ConfigChange, Instrument, Portfolio, Strategy
from quantsite.encryption import EncryptedJSONField
from risk.engine.channel_rules import channel_config_problem
from risk.engine.channel_secrets import config_masked


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class Action(models.TextChoices):
    LIQUIDATE_ALL = "liquidate_all", "Liquidate all"
    REDUCE_POSITIONS = "reduce_positions", "Reduce positions"
    PAUSE_STRATEGY = "pause_strategy", "Pause strategy"
    REDUCE_POSITION = "reduce_position", "Reduce position (that ticker, capped)"
    ALERT_ONLY = "alert_only", "Alert only"


class RiskLimit(models.Model):
    """One limit: a metric at a scope compared with a threshold, and what a breach does.

    ``direction`` says which side breaches: ``max`` breaches when value > threshold,
    ``min`` when value < threshold (drawdown limits are ``min``: -0.16 < -0.15 breaches).
    """

    class Scope(models.TextChoices):
        PORTFOLIO = "portfolio", "Portfolio"
        STRATEGY = "strategy", "Strategy"
        POSITION = "position", "Position"
        SECTOR = "sector", "Sector"
        ASSET_CLASS = "asset_class", "Asset class"

    class Direction(models.TextChoices):
        MAX = "max", "Upper bound"
        MIN = "min", "Lower bound"

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="risk_limits")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    strategy = models.ForeignKey(
        Strategy,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        help_text="Only this strategy (strategy scope); empty means every strategy.",
    )
    instrument = models.ForeignKey(
        Instrument,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        help_text="Only this ticker (position scope); empty means every ticker.",
    )
    group = models.CharField(
        max_length=100,
        blank=True,
        help_text="Only this sector or asset class (sector / asset_class scope); empty means "
        "every one without a limit of its own.",
    )
    metric = models.CharField(max_length=64)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    threshold = models.FloatField()
    severity = models.CharField(max_length=16, choices=Severity.choices)
    action = models.CharField(max_length=32, choices=Action.choices)
    recovery_threshold = models.FloatField(
        null=True, blank=True, help_text="Value at which a breach counts as recovered."
    )
    recovery_steps = models.JSONField(
        default=list,
        blank=True,
        help_text="Exposure fractions on successive bars, e.g. [0.25, 0.5, 1] "
        "(empty: 0.25, 0.5, 1).",
    )
    cooldown_bars = models.PositiveIntegerField(
        default=0, help_text="Bars a violation stays open at least, even if recovered."
    )
    enabled = models.BooleanField(default=True)
    source = models.CharField(max_length=500, blank=True, help_text="YAML path it came from.")

    class Meta:
        ordering = ["portfolio", "scope", "name"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "name"], name="risklimit_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.name}"


class RiskBook(models.Model):
    """The risk manager's own record of one portfolio: its settings and everything it
    carries from one bar to the next (DESIGN.md "Live equals replay").

    ``window_bars`` is the trailing return window of its measures (``risk_limits.yaml``
    ``measurement.window_bars``, default 60), independent of the allocation method's
    lookback; the window itself is never stored but rebuilt from
    ``StrategySnapshot.unit_return`` (doubles, unrounded). ``portfolio_scale`` and
    ``strategy_scales`` are the multipliers on exposure (1 normally, 0 after a critical
    liquidation, stepping back up on recovery); ``state`` holds the peaks the drawdown
    limits measure from, the open breaches, the recovery ramps and which breaches paused
    which strategy, as JSON (floats round-trip exactly). ``as_of`` is the last bar it saw.
    """

    portfolio = models.OneToOneField(
        Portfolio, on_delete=models.CASCADE, related_name="risk_book", primary_key=True
    )
    window_bars = models.PositiveIntegerField(
        default=60, help_text="Trailing bars of strategy returns the risk measures use."
    )
    portfolio_scale = models.FloatField(
        default=1.0, help_text="The risk manager's multiplier on every book's exposure."
    )
    strategy_scales = models.JSONField(
        default=dict, blank=True, help_text="Per strategy name: its own multiplier (default 1)."
    )
    state = models.JSONField(default=dict, blank=True)
    as_of = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(window_bars__gte=2), name="riskbook_window_min"),
            models.CheckConstraint(
                condition=Q(portfolio_scale__gte=0), name="riskbook_scale_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return f"risk book of {self.portfolio_id}"


class Violation(models.Model):
    """A breach of a limit, open until its recovery condition holds."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="violations")
    # RESTRICT: a limit with violations cannot be deleted on its own (disable it instead),
    # but deleting its portfolio deletes both (PROTECT made a portfolio with violations,
    # such as a re-run backtest, impossible to delete).
    limit = models.ForeignKey(RiskLimit, on_delete=models.RESTRICT, related_name="violations")
    severity = models.CharField(max_length=16, choices=Severity.choices)
    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, null=True, blank=True)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, null=True, blank=True)
    group = models.CharField(
        max_length=100, blank=True, help_text="The sector or asset class (group limits)."
    )
    date = models.DateField(help_text="Bar date of the breach.")
    value = models.FloatField()
    threshold = models.FloatField()
    action_taken = models.CharField(max_length=32, choices=Action.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    message = models.TextField(blank=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    resolved_on = models.DateField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    acknowledged_note = models.TextField(blank=True)
    # The post-violation review: the acknowledgement above (who, when, the note) plus the
    # operator's configuration changes that answer the violation (risk.services.controls.
    # violation_review: the portfolio's own, made at or after it opened, not the manager's).
    review_changes = models.ManyToManyField(
        ConfigChange,
        blank=True,
        related_name="reviewed_violations",
        help_text="Configuration changes made in answer to this violation.",
    )

    class Meta:
        ordering = ["-date", "-id"]
        indexes = [models.Index(fields=["portfolio", "status"])]

    def __str__(self) -> str:
        return f"{self.severity} {self.limit_id} {self.date}"

    @property
    def reviewed(self) -> bool:
        """Reviewed = acknowledged with a note (linked changes are optional)."""
        return self.acknowledged_at is not None


class AlertChannel(models.Model):
    """Where alerts go: email, a webhook (generic/Slack/Discord), SMS or PagerDuty."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook (JSON)"
        SLACK = "slack", "Slack"
        DISCORD = "discord", "Discord"
        SMS = "sms", "SMS"
        PAGERDUTY = "pagerduty", "PagerDuty (Events API v2)"

    portfolio = models.ForeignKey(
        Portfolio, on_delete=models.CASCADE, related_name="alert_channels", null=True, blank=True
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    min_severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.LOW)
    # URLs, headers, Twilio credentials, PagerDuty routing keys: encrypted at rest, shown masked
    # (risk.engine.channel_secrets), decrypted only in Python for the senders.
    config = EncryptedJSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "name"], name="alertchannel_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    def audit_value(self, field: str, value):
        """What the audit trail records for ``field``: the config with its secrets masked."""
        return config_masked(value) if field == "config" else value

    def clean(self) -> None:
        """The YAML's channel rules (``risk/engine/channel_rules.py``) for every form that
        edits a channel, e.g. the admin: a ``file://`` URL or an enabled webhook without one
        is refused on the config field, naming the key."""
        problem = channel_config_problem(self.kind, self.config, enabled=self.enabled)
        if problem:
            raise ValidationError({"config": f"config.{problem[0]}: {problem[1]}"})


class AlertDelivery(models.Model):
    """Outbox row: one alert for one channel, retried with backoff until sent.

    ``event`` is ``open`` for the alert of a new violation (every channel kind) and
    ``resolve`` for its recovery, which only channels that close what they opened get
    (PagerDuty: ``risk.alerts.RESOLVE_KINDS``); each is written at most once per channel
    and violation, so a restart never sends either twice."""

    class Event(models.TextChoices):
        OPEN = "open", "Violation opened"
        RESOLVE = "resolve", "Violation resolved"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (will retry)"

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    violation = models.ForeignKey(
        Violation, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    event = models.CharField(max_length=16, choices=Event.choices, default=Event.OPEN)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "violation", "event"],
                condition=Q(violation__isnull=False),
                name="alertdelivery_once_per_channel_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.status}"


class StressWindow(models.Model):
    """A named span of stored history a stress test replays today's books through
    (``risk.engine.stress``). Editable on the /scenarios/ page and in the admin; the
    bundled crises are created by migration 0010."""

    name = models.CharField(max_length=100, unique=True)
    start = models.DateField()
    end = models.DateField()
    description = models.CharField(max_length=300, blank=True)
    enabled = models.BooleanField(default=True, help_text="Run on the schedule.")

    class Meta:
        ordering = ["start", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gte=models.F("start")), name="stresswindow_end_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.start}..{self.end})"


class ShockScenario(models.Model):
    """A hypothetical instant move (``risk.engine.stress.Shock``): ``market`` for every
    ticker, overridden per sector (``sectors``: name -> fraction) and per ticker
    (``tickers``: ticker -> fraction); -0.2 is -20 %."""

    name = models.CharField(max_length=100, unique=True)
    market = models.FloatField(default=0.0)
    sectors = models.JSONField(default=dict, blank=True)
    tickers = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True, help_text="Run on the schedule.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from risk.engine.scenario_specs import shock_problems

        problems = shock_problems(market=self.market, sectors=self.sectors, tickers=self.tickers)
        if problems:
            raise ValidationError(problems)


class ScenarioRun(models.Model):
    """One stored scenario result of one portfolio at the bar ``as_of``: a stress window
    (hold or run mode), a shock, a Monte Carlo projection, a correlation regime check or a
    walk-forward comparison. ``params`` is what was asked, ``result`` the engine's
    ``to_dict()`` (JSON: ISO dates, floats), ``state_version`` the portfolio's
    ``StateVersion`` it was computed on (a newer state makes it stale)."""

    class Kind(models.TextChoices):
        STRESS = "stress", "Historical stress"
        SHOCK = "shock", "Hypothetical shock"
        MONTECARLO = "montecarlo", "Monte Carlo"
        REGIME = "regime", "Correlation regime"
        WALKFORWARD = "walkforward", "Walk-forward"

    class Status(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        PAGE = "page", "Page"
        API = "api", "API"
        COMMAND = "command", "Command"

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="scenarios")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200, help_text="Window, shock or run label.")
    params = models.JSONField(default=dict, blank=True)
    as_of = models.DateField(null=True, blank=True)
    state_version = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUCCESS)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["portfolio", "kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}@{self.as_of}"
