"""Alert channel secrets: re-encryption after a key rotation (``quantsite.secret_keys``)."""

from __future__ import annotations

from django.db import transaction

from risk.models import AlertChannel


def channel_secrets_rotate() -> int:
    """Re-encrypt every channel's config with the newest key; the number of channels. Each
    row is read with whichever configured key encrypted it and written with the first."""
    with transaction.atomic():
        channels = list(AlertChannel.objects.select_for_update().order_by("pk"))
        for channel in channels:
            channel.save(update_fields=["config"])
    return len(channels)
