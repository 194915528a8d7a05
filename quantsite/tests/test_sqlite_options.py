"""SQLite gets WAL, IMMEDIATE transactions and the 30 s busy timeout however its path is
given: the default file in QUANTSITE_DATA_DIR or ``DATABASE_URL=sqlite:///path`` (which
dj-database-url parses into a dict without OPTIONS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.db import connection
db = settings.DATABASES["default"]
with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    journal = cursor.fetchone()[0]
    cursor.execute("PRAGMA busy_timeout")
    busy = cursor.fetchone()[0]
print(json.dumps({
    "name": str(db["NAME"]),
    "options": db["OPTIONS"],
    "conn_max_age": db["CONN_MAX_AGE"],
    "journal_mode": journal,
    "busy_timeout": busy,
    "immediate": connection.transaction_mode,
}))
"""


def _probe(tmp_path: Path, **env: str) -> dict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "QUANTSITE_SQLITE_PATH")
    }
    clean.update(
        DJANGO_SETTINGS_MODULE="quantsite.settings", QUANTSITE_DATA_DIR=str(tmp_path), **env
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_sqlite_database_url_gets_the_same_options_as_the_default_path(tmp_path):
    default = _probe(tmp_path / "a")
    path = tmp_path / "b" / "by-url.sqlite3"
    path.parent.mkdir()
    by_url = _probe(tmp_path / "b", DATABASE_URL=f"sqlite:///{path}")
    assert by_url["name"] == str(path)
    for probe in (default, by_url):
        assert probe["journal_mode"] == "wal"
        assert probe["busy_timeout"] == 30000
        assert probe["immediate"] == "IMMEDIATE"
    assert by_url["options"] == default["options"]
    assert by_url["conn_max_age"] == default["conn_max_age"]
    assert default["options"]["timeout"] == 30
