from __future__ import annotations

from django.core.management.base import BaseCommand

from operations.schedules import schedules_sync


class Command(BaseCommand):
    help = (
        "Make the django-q2 schedules match the ones declared in operations/schedules.py "
        "(idempotent; leaves schedules not named 'quantsite: ...' alone)."
    )

    def handle(self, *args, **options):
        r = schedules_sync()
        for label, names in (
            ("created", r.created),
            ("updated", r.updated),
            ("deleted", r.deleted),
            ("unchanged", r.unchanged),
        ):
            for name in names:
                self.stdout.write(f"{label}: {name}")
