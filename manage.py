#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantsite.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as exc:
        # A database that cannot be reached (DATABASE_URL at a closed port, PostgreSQL
        # down) is one line, not a driver traceback; --traceback still shows it.
        if "--traceback" in sys.argv:
            raise
        reason = (str(exc).strip().splitlines() or [""])[0]
        sys.stderr.write(f"database unavailable: {reason}\n")
        sys.exit(1)
    except ImproperlyConfigured as exc:
        if settings.configured:  # raised by a command, not by reading the environment
            raise
        # a missing or malformed environment variable: its one-line message, no traceback
        sys.exit(f"quantsite: configuration error: {exc}")


if __name__ == "__main__":
    main()
