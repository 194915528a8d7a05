from __future__ import annotations

from django.core.management.base import BaseCommand

from risk.services.secrets import channel_secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt stored alert channel secrets with the first QUANTSITE_SECRETS_KEY key "
        "(after putting a new key first; the old key can then be dropped)."
    )

    def handle(self, *args, **options):
        count = channel_secrets_rotate()
        self.stdout.write(f"re-encrypted the secrets of {count} alert channel(s)")
