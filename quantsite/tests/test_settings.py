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
