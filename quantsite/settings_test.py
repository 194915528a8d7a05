"""Test settings: the real settings, with fast password hashing and an isolated data dir."""

import os
import tempfile

os.environ.setdefault("QUANTSITE_DATA_DIR", tempfile.mkdtemp(prefix="quantsite-test-"))
# No heartbeat thread: its own connection to the shared in-memory test database would
# find the tables locked by the test's transaction (the subprocess tests run it for real).
os.environ.setdefault("QUANTSITE_RUN_HEARTBEAT_SECONDS", "0")
# The suite makes thousands of API requests from one address and a handful of users: no
# accidental 429 (test_api_auth checks the 429 itself with a tiny rate).
for _scope in ("ANON", "USER", "LOGIN"):
    os.environ.setdefault(f"QUANTSITE_API_THROTTLE_{_scope}", "1000000/minute")

from quantsite.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
QUANTSITE_REPLAY_BARS_PER_UPDATE = 0
# Pages read their history from the database in every test (the pinned query counts are
# those of a cold read); reporting/tests/test_history_read.py turns the cache on.
QUANTSITE_HISTORY_CACHE = False
# The scenarios after an update are tested on their own
# (operations/tests/test_scenario_schedule.py): elsewhere a worker would spend its time on
# them after every update a test makes.
QUANTSITE_SCENARIOS_AFTER_UPDATE = False
# This process's memory: the suite's databases are per run, a file cache would outlive them.
CACHES["pages"] = {  # noqa: F405
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "pages",
}
