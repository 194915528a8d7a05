"""Human annotations on the book: notes and tags on a position or a trade.

Notes are not book state: the update path never reads them and the live-equals-replay
digest leaves them out. A position's note is keyed by (strategy, ticker), not by the
Position row, which the book deletes and recreates as it trades; it survives a position
closed and reopened. A trade's note goes with its trade (deleting a backtest deletes both).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from portfolio.models import Strategy, Trade

TAG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"  # lower case, digits, "-" and "_", 1-32 chars
NOTE_MAX_CHARS = 2000
TAGS_MAX = 8


class Tag(models.Model):
    """A label from a small normalised set (lower case, ``TAG_PATTERN``)."""

    name = models.CharField(
        max_length=32,
        unique=True,
        validators=[RegexValidator(TAG_PATTERN, "1-32 of a-z, 0-9, '-' and '_'")],
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Note(models.Model):
    """A note on one trade (``trade``) or on a position key (``ticker``, trade empty)."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="notes")
    trade = models.OneToOneField(
        Trade, on_delete=models.CASCADE, null=True, blank=True, related_name="note"
    )
    ticker = models.CharField(max_length=32, blank=True, help_text="Position key (no trade).")
    text = models.TextField(max_length=NOTE_MAX_CHARS, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="notes")
    author = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["strategy", "ticker", "trade"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(trade__isnull=False) & Q(ticker=""))
                | (Q(trade__isnull=True) & ~Q(ticker="")),
                name="note_on_a_trade_or_a_position",
            ),
            models.UniqueConstraint(
                fields=["strategy", "ticker"],
                condition=Q(trade__isnull=True),
                name="one_note_per_position",
            ),
        ]

    def __str__(self) -> str:
        target = f"trade {self.trade_id}" if self.trade_id else self.ticker
        return f"{self.strategy_id} {target}"


class ExportJob(models.Model):
    """One export written in the background (``reporting.export_jobs``): a download too
    large to build inside a request. The task queue writes the file under
    ``DATA_DIR/exports`` and counts rows as it goes; only the user who asked may fetch it.
    A job whose worker died (no heartbeat for ``export_jobs.STALE_SECONDS``) is marked
    interrupted the next time any job is looked at, never left running forever."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        INTERRUPTED = "interrupted"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_jobs"
    )
    portfolio = models.ForeignKey(
        "portfolio.Portfolio", on_delete=models.CASCADE, related_name="export_jobs"
    )
    table = models.CharField(max_length=32)
    fmt = models.CharField(max_length=8)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=100, blank=True, help_text="Under DATA_DIR/exports.")
    download_name = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rows_done__lte=models.F("rows_total")), name="export_rows_done_le_total"
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.table}.{self.fmt} #{self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status not in (self.Status.QUEUED, self.Status.RUNNING)
