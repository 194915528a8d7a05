from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from operations.demo import demo_setup
from portfolio.engine.errors import QuantsiteInputError
from quantsite.progress import Progress


class Command(BaseCommand):
    help = (
        "Set up the embedded demo (idempotent): load config/*.yaml, load the bundled prices "
        "minus the last --holdback bars, replay history, create the admin account "
        "(DJANGO_SUPERUSER_PASSWORD, or a random password printed once) and schedule updates."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--holdback",
            type=int,
            default=250,
            help="bars left for scheduled updates to replay (default 250)",
        )
        parser.add_argument("--admin", default=os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin"))

    def handle(self, *args, holdback, admin, **options):
        if holdback < 0:
            raise CommandError("--holdback must be >= 0")
        bars = Progress(self.stdout, label="demo: storing prices", unit="bars")
        dates = Progress(self.stdout, label="demo: applying history")
        try:
            r = demo_setup(
                holdback_bars=holdback,
                admin_user=admin,
                admin_password=os.environ.get("DJANGO_SUPERUSER_PASSWORD") or None,
                bars_progress=bars,
                dates_progress=dates,
            )
        except QuantsiteInputError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bars.close()
            dates.close()
        self.stdout.write(
            f"demo ready: {r.bars_added} bars loaded, {r.dates_applied} bar dates applied"
        )
        if r.admin_password:
            self.stdout.write(
                self.style.WARNING(
                    f"admin login: user {admin!r}, password {r.admin_password!r} "
                    "(shown once; change it in the admin)"
                )
            )
        elif r.admin_created:
            self.stdout.write(
                f"admin login: user {admin!r}, password from DJANGO_SUPERUSER_PASSWORD"
            )
        else:
            self.stdout.write(f"admin user {admin!r} already exists (password unchanged)")
