"""Settings come from the environment and fail loudly on a malformed value."""

from __future__ import annotations

import os

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from quantsite.env import env_bool, env_choice, env_int


def test_a_malformed_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("QS_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="QS_FLAG='maybe'"):
        env_bool("QS_FLAG")
    monkeypatch.setenv("QS_FLAG", "Yes")
    assert env_bool("QS_FLAG") is True


def test_a_malformed_or_too_small_integer_is_refused(monkeypatch):
    monkeypatch.setenv("QS_N", "ten")
    with pytest.raises(ImproperlyConfigured, match="expected an integer"):
        env_int("QS_N", 1)
    monkeypatch.setenv("QS_N", "0")
    with pytest.raises(ImproperlyConfigured, match=">= 1"):
        env_int("QS_N", 1, minimum=1)


def test_an_unknown_choice_lists_the_allowed_values(monkeypatch):
    monkeypatch.setenv("QS_P", "bloomberg")
    with pytest.raises(ImproperlyConfigured, match="bundled, csv"):
        env_choice("QS_P", "bundled", ("bundled", "csv"))


@pytest.mark.django_db
def test_the_suite_runs_on_the_database_database_url_names():
    expected = (
        "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else ("sqlite")
    )
    assert connection.vendor == expected


def test_every_model_is_registered_in_the_admin():
    missing = [
        m.__name__
        for app in ("portfolio", "risk")
        for m in apps.get_app_config(app).get_models()
        if not admin.site.is_registered(m)
    ]
    assert missing == []


def _settings_with(monkeypatch, tmp_path, **env) -> dict:
    import runpy

    monkeypatch.setenv("QUANTSITE_DATA_DIR", str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from pathlib import Path

    return runpy.run_path(str(Path(__file__).resolve().parents[1] / "settings.py"))


def test_the_task_timeout_is_below_retry_and_catch_up_is_off(monkeypatch, tmp_path):
    from django.conf import settings

    q = settings.Q_CLUSTER
    assert q["timeout"] < q["retry"] and q["catch_up"] is False and q["max_attempts"] == 1
    assert q["timeout"] >= 300  # above the longest update (a full bundled replay)
    q = _settings_with(monkeypatch, tmp_path, QUANTSITE_Q_TIMEOUT="3600")["Q_CLUSTER"]
    assert (q["timeout"], q["retry"]) == (3600, 3660)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QUANTSITE_Q_TIMEOUT": "900", "QUANTSITE_Q_RETRY": "900"}, "must be above"),
        ({"QUANTSITE_Q_RETRY": "600"}, "must be above"),
        ({"QUANTSITE_Q_TIMEOUT": "20"}, ">= 300"),
    ],
)
def test_an_override_cannot_put_the_timeout_at_or_above_retry(monkeypatch, tmp_path, env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        _settings_with(monkeypatch, tmp_path, **env)


def test_the_heartbeat_must_fit_several_times_in_the_stale_window(monkeypatch, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="3 x QUANTSITE_RUN_HEARTBEAT_SECONDS"):
        _settings_with(
            monkeypatch,
            tmp_path,
            QUANTSITE_RUN_HEARTBEAT_SECONDS="60",
            QUANTSITE_RUN_STALE_SECONDS="120",
        )


def test_a_throttle_rate_must_be_requests_per_period(monkeypatch):
    from quantsite.env import env_rate

    for bad in ("100", "0/minute", "ten/minute", "100/week", "5/m/x", "-1/s"):
        monkeypatch.setenv("QS_RATE", bad)
        with pytest.raises(ImproperlyConfigured, match=r"QS_RATE=.*<requests>/<period>"):
            env_rate("QS_RATE", "1/s")
    monkeypatch.setenv("QS_RATE", " 30/min ")
    assert env_rate("QS_RATE", "1/s") == "30/min"
    monkeypatch.delenv("QS_RATE")
    assert env_rate("QS_RATE", "60/minute") == "60/minute"


def test_the_api_throttle_rates_and_token_lifetime_come_from_the_environment(monkeypatch, tmp_path):
    conf = _settings_with(
        monkeypatch,
        tmp_path,
        QUANTSITE_API_THROTTLE_ANON="5/second",
        QUANTSITE_API_THROTTLE_USER="100/hour",
        QUANTSITE_API_THROTTLE_LOGIN="3/minute",
        QUANTSITE_API_TOKEN_TTL_DAYS="0",
    )
    rates = conf["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]
    assert rates == {"anon": "5/second", "user": "100/hour", "token_login": "3/minute"}
    assert conf["REST_KNOX"]["TOKEN_TTL"] is None  # 0: until revoked
    auth = conf["REST_FRAMEWORK"]["DEFAULT_AUTHENTICATION_CLASSES"]
    assert not any("Basic" in name for name in auth)
    with pytest.raises(ImproperlyConfigured, match="QUANTSITE_API_THROTTLE_USER='lots'"):
        _settings_with(monkeypatch, tmp_path, QUANTSITE_API_THROTTLE_USER="lots")


def test_a_generated_secret_key_is_readable_by_its_owner_only(monkeypatch, tmp_path):
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    first = _settings_with(monkeypatch, tmp_path)["SECRET_KEY"]
    key = tmp_path / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(first) > 40
    assert _settings_with(monkeypatch, tmp_path)["SECRET_KEY"] == first  # created once
    key.chmod(0o644)  # as an older version wrote it
    assert _settings_with(monkeypatch, tmp_path)["SECRET_KEY"] == first
    assert key.stat().st_mode & 0o777 == 0o600


def test_processes_started_at_once_on_a_new_data_folder_share_one_whole_key(tmp_path):
    # make run starts the web server and the worker together: on a new data folder both
    # create the keys. Each of 8 processes (real ones, released at one instant) must load
    # the settings and see the same non-empty keys, and no temporary file may be left.
    import subprocess
    import sys
    import time

    at = time.time() + 4  # every process has started Python by then
    code = (
        "import os, sys, time\n"
        f"while time.time() < {at}: time.sleep(0.0005)\n"
        "from django.conf import settings\n"
        "settings.SECRET_KEY\n"
        "print(settings.SECRET_KEY, settings.QUANTSITE_SECRETS_KEYS[0])\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SECRET_KEY", "QUANTSITE_SECRETS_KEY", "DATABASE_URL")
    }
    env.update(DJANGO_SETTINGS_MODULE="quantsite.settings", QUANTSITE_DATA_DIR=str(tmp_path))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(8)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outs
    lines = {out.strip() for out in outs}
    assert len(lines) == 1, lines
    secret, fernet = lines.pop().split()
    assert len(secret) > 40 and len(fernet) == 44
    names = {p.name for p in tmp_path.iterdir()}
    assert {"secret_key", "secrets_key"} <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary key file left
