"""Alert channel secrets: encrypted at rest, masked in the admin, the audit trail and the
API, kept by a save that leaves the mask alone, and still used in clear by the senders."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from portfolio.models import ConfigChange, Portfolio
from quantsite.encryption import SecretsKeyError
from quantsite.secret_keys import secrets_keys_load
from risk import alerts
from risk.engine.channel_secrets import config_masked, config_merge, secret_mask
from risk.models import AlertChannel, AlertDelivery
from risk.tests.test_alerts import Server

SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXXslack"
BEARER = "Bearer s3cr3t-token-0123456789"
TWILIO_TOKEN = "twilio-auth-token-0123456789abcdef"
PLAINTEXTS = ("XXXXsecretXXXXslack", "s3cr3t-token", "twilio-auth-token", "/hook-path-secret")
T0 = datetime(2024, 1, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def portfolio(db):
    return Portfolio.objects.create(name="Secrets test", initial_capital=1_000_000)


def _webhook(portfolio, url="http://127.0.0.1:9/hook-path-secret"):
    return AlertChannel.objects.create(
        portfolio=portfolio,
        name="ops hook",
        kind="webhook",
        config={"url": url, "headers": {"Authorization": BEARER}, "timeout": 2},
    )


def _raw_config(channel) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT config FROM risk_alertchannel WHERE id = %s", [channel.pk])
        return cursor.fetchone()[0]


def _config_textarea(page: str) -> dict:
    match = re.search(r'<textarea name="config"[^>]*>(.*?)</textarea>', page, re.S)
    return json.loads(html.unescape(match.group(1)))


def test_a_secret_shows_only_its_last_four_characters_and_a_short_one_nothing():
    assert secret_mask(SLACK_URL) == "••••lack"
    assert secret_mask("abc123") == "••••"
    assert config_masked({"url": SLACK_URL, "headers": {"X-Key": "k" * 20}, "timeout": 5}) == {
        "url": "••••lack",
        "headers": {"X-Key": "••••kkkk"},
        "timeout": 5,
    }


def test_a_mask_submitted_unchanged_keeps_the_secret_and_an_unknown_mask_is_reported():
    stored = {"url": SLACK_URL, "headers": {"Authorization": BEARER}}
    kept, bad = config_merge(config_masked(stored), stored)
    assert (kept, bad) == (stored, [])
    _, bad = config_merge({"url": "••••nope", "headers": {"X-Other": "••••6789"}}, stored)
    assert bad == ["url", "headers.X-Other"]


def test_the_database_column_holds_a_token_and_no_plaintext(portfolio):
    channel = AlertChannel.objects.create(
        name="sms",
        kind="sms",
        config={"twilio_sid": "AC0123456789", "twilio_token": TWILIO_TOKEN, "to": "+15550100"},
    )
    slack = AlertChannel.objects.create(name="slack", kind="slack", config={"url": SLACK_URL})
    for row in (channel, slack, _webhook(portfolio)):
        raw = _raw_config(row)
        assert raw.startswith("gAAAAA")
        assert not any(p in raw for p in PLAINTEXTS)
    assert AlertChannel.objects.get(pk=channel.pk).config["twilio_token"] == TWILIO_TOKEN


def test_the_admin_change_page_shows_the_secrets_masked_never_in_clear(portfolio, admin_client):
    channel = _webhook(portfolio)
    page = admin_client.get(reverse("admin:risk_alertchannel_change", args=[channel.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert not any(p in text for p in PLAINTEXTS)
    assert _config_textarea(text) == {
        "url": "••••cret",
        "headers": {"Authorization": "••••6789"},
        "timeout": 2,
    }


def _post_change(admin_client, channel, **changes):
    url = reverse("admin:risk_alertchannel_change", args=[channel.pk])
    shown = _config_textarea(admin_client.get(url).content.decode())
    data = {
        "portfolio": channel.portfolio_id or "",
        "name": channel.name,
        "kind": channel.kind,
        "enabled": "on",
        "min_severity": channel.min_severity,
        "config": json.dumps(shown, ensure_ascii=False),
    }
    data.update(changes)
    return admin_client.post(url, data)


def test_a_save_that_leaves_the_masked_config_alone_keeps_the_stored_secrets(
    portfolio, admin_client
):
    channel = _webhook(portfolio)
    before = AlertChannel.objects.get(pk=channel.pk).config

    response = _post_change(admin_client, channel, min_severity="high")

    assert response.status_code == 302
    saved = AlertChannel.objects.get(pk=channel.pk)
    assert (saved.config, saved.min_severity) == (before, "high")
    assert list(ConfigChange.objects.values_list("field", flat=True)) == ["min_severity"]


def test_a_new_secret_typed_in_full_is_stored_and_audited_masked_in_the_admin_and_the_api(
    portfolio, admin_client
):
    channel = _webhook(portfolio)
    new = {"url": "https://example.test/hook-path-secret-2", "headers": {"Authorization": BEARER}}

    response = _post_change(admin_client, channel, config=json.dumps(new))

    assert response.status_code == 302
    assert AlertChannel.objects.get(pk=channel.pk).config == new
    change = ConfigChange.objects.get(field="config")
    assert change.after == {"url": "••••et-2", "headers": {"Authorization": "••••6789"}}
    assert change.before["url"] == "••••cret"
    api = admin_client.get("/api/audit/", {"object_type": "AlertChannel"})
    assert api.status_code == 200 and "••••et-2" in api.content.decode()
    for body in (
        api.content.decode(),
        json.dumps(list(ConfigChange.objects.values()), default=str),
    ):
        assert not any(p in body for p in PLAINTEXTS)


def test_a_masked_value_that_matches_no_stored_secret_is_refused(portfolio, admin_client):
    channel = _webhook(portfolio)
    before = AlertChannel.objects.get(pk=channel.pk).config
    forged = {"url": "••••cret", "headers": {"X-Api-Key": "••••6789"}}

    response = _post_change(admin_client, channel, config=json.dumps(forged, ensure_ascii=False))

    assert response.status_code == 200  # the form again, with the error
    assert "headers.X-Api-Key: a masked value" in html.unescape(response.content.decode())
    assert AlertChannel.objects.get(pk=channel.pk).config == before


def test_the_delivery_uses_the_real_url_and_header(portfolio, server):
    channel = _webhook(portfolio, url=server.url("/hook-path-secret"))
    alerts.alert_channel_test(channel=channel)

    report = alerts.alerts_deliver(now=T0)

    (exchange,) = server.recorder.exchanges
    assert report.sent == 1
    assert exchange.path == "/hook-path-secret"
    assert exchange.headers["Authorization"] == BEARER
    assert AlertDelivery.objects.get().status == "sent"


def test_a_rotation_reads_with_the_old_key_and_rewrites_with_the_new_one(portfolio, settings):
    channel = _webhook(portfolio)
    old = settings.QUANTSITE_SECRETS_KEYS[0]
    new = Fernet.generate_key().decode()
    settings.QUANTSITE_SECRETS_KEYS = [new, old]
    assert AlertChannel.objects.get(pk=channel.pk).config["headers"]["Authorization"] == BEARER

    call_command("secrets_rotate", stdout=open("/dev/null", "w"))

    settings.QUANTSITE_SECRETS_KEYS = [new]  # the old key dropped
    assert AlertChannel.objects.get(pk=channel.pk).config["headers"]["Authorization"] == BEARER
    settings.QUANTSITE_SECRETS_KEYS = [old]
    with pytest.raises(SecretsKeyError, match="cannot be decrypted with any key"):
        AlertChannel.objects.get(pk=channel.pk)


def test_development_generates_a_0600_key_file_once_and_production_requires_the_key(
    tmp_path: Path,
):
    keys = secrets_keys_load("", data_dir=tmp_path, production=False)
    key_file = tmp_path / "secrets_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert secrets_keys_load("", data_dir=tmp_path, production=False) == keys
    Fernet(keys[0])
    with pytest.raises(ImproperlyConfigured, match="QUANTSITE_SECRETS_KEY must be set"):
        secrets_keys_load("", data_dir=tmp_path / "prod", production=True)
    assert not (tmp_path / "prod").exists()


def test_a_malformed_key_is_refused_by_position_without_echoing_it(tmp_path: Path):
    good = Fernet.generate_key().decode()
    with pytest.raises(ImproperlyConfigured) as caught:
        secrets_keys_load(f"{good}, not-a-key-hunter2", data_dir=tmp_path, production=True)
    assert "key 2 is not a Fernet key" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert secrets_keys_load(f" {good} ", data_dir=tmp_path, production=True) == [good]


@pytest.fixture(scope="module")
def prices_restored(django_db_blocker):
    """The transactional test below ends by emptying every table: put the prices back."""
    yield
    from portfolio.feeds import BundledProvider
    from portfolio.models import PriceBar
    from portfolio.services.prices import prices_load

    with django_db_blocker.unblock():
        if not PriceBar.objects.exists():
            prices_load(provider=BundledProvider(), strict=True)


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_plaintext_in_place_and_reverses(prices_restored):
    from django.db.migrations.executor import MigrationExecutor

    before, after = (
        ("risk", "0005_violation_acknowledge"),
        ("risk", "0006_alertchannel_config_encrypted"),
    )
    config = {"url": SLACK_URL, "headers": {"Authorization": BEARER}}
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO risk_alertchannel (name, kind, enabled, min_severity, config)"
                " VALUES (%s, %s, %s, %s, %s)",
                ["legacy", "slack", True, "low", json.dumps(config)],
            )
        executor = MigrationExecutor(connection)
        executor.migrate([after])
        channel = AlertChannel.objects.get(name="legacy")
        assert channel.config == config
        assert not any(p in _raw_config(channel) for p in PLAINTEXTS)

        executor = MigrationExecutor(connection)
        executor.migrate([before])
        raw = _raw_config(channel)
        assert (json.loads(raw) if isinstance(raw, str) else raw) == config
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
