"""API authentication: knox tokens (hashed, revocable, expiring) and the session (CSRF on
unsafe methods); HTTP Basic refused; every endpoint closed to anonymous callers; a plain
user's token reads, a staff token commands; throttles answer 429 with Retry-After."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from knox.models import AuthToken

from operations.config import portfolio_configure
from operations.tokens import api_token_create
from portfolio.models import Portfolio, RebalanceRequest
from portfolio.services.config import allocation_spec_read

DEMO = Path(settings.BASE_DIR) / "config" / "strategy_allocation.yaml"
PASSWORD = "not-a-real-password-1"
pytestmark = pytest.mark.django_db


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the schema, ids filled in."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method.upper(), path.replace("{id}", "1").replace("{token_key}", "abc"))
        for path, item in schema["paths"].items()
        for method in item
    ]


def _token_client(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {token}")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", password=PASSWORD, is_staff=True)


def _demo_portfolio() -> Portfolio:
    return portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")


def test_every_endpoint_answers_anonymous_callers_401(client):
    operations = _operations() + [("GET", "/api/schema/"), ("GET", "/api/docs/")]
    assert len(operations) >= 20
    refused = {}
    for method, path in operations:
        response = client.generic(method, path, "{}", content_type="application/json")
        refused[(method, path)] = response.status_code
    # The only door without a key: trading a password for a token (an empty body is a 400).
    assert refused.pop(("POST", "/api/tokens/login/")) == 400
    assert set(refused.values()) == {401}, {k: v for k, v in refused.items() if v != 401}
    assert client.get("/api/portfolios/")["WWW-Authenticate"] == "Token"


def test_http_basic_is_refused_even_with_the_right_password(client, user):
    credentials = base64.b64encode(f"quant:{PASSWORD}".encode()).decode()
    response = client.get("/api/portfolios/", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert response.status_code == 401


def test_a_token_from_the_login_endpoint_reads_the_api(client, user):
    _demo_portfolio()
    response = client.post(
        "/api/tokens/login/",
        {"username": "quant", "password": PASSWORD, "ttl_days": 7},
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("qs_") and body["token_key"] == body["token"][:15]
    row = AuthToken.objects.get()
    assert row.user == user
    assert abs(row.expiry - row.created - timedelta(days=7)) < timedelta(seconds=5)
    portfolios = _token_client(body["token"]).get("/api/portfolios/")
    assert portfolios.status_code == 200 and portfolios.json()["count"] == 1


def test_a_wrong_password_names_the_field_and_creates_nothing(client, user):
    response = client.post(
        "/api/tokens/login/",
        {"username": "quant", "password": "wrong"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {"password": ["wrong username or password"]}
    bad_ttl = client.post(
        "/api/tokens/login/",
        {"username": "quant", "password": PASSWORD, "ttl_days": 0},
        content_type="application/json",
    )
    assert bad_ttl.status_code == 400 and list(bad_ttl.json()) == ["ttl_days"]
    assert not AuthToken.objects.exists()


def test_the_database_holds_only_the_digest_never_the_token(user):
    issued = api_token_create(user=user)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AuthToken._meta.db_table}")
        stored = [str(value) for row in cursor.fetchall() for value in row]
    assert not any(issued.token in value for value in stored)
    row = AuthToken.objects.get()
    assert row.digest == hashlib.sha512(issued.token.encode()).hexdigest()
    assert row.token_key == issued.token[:15] and len(issued.token) == 3 + 64


def test_a_revoked_token_is_refused(user):
    issued = api_token_create(user=user)
    other = api_token_create(user=user)
    api = _token_client(issued.token)
    assert api.get("/api/tokens/").json() == [
        {
            "token_key": t.token_key,
            "created": t.created.isoformat().replace("+00:00", "Z"),
            "expiry": t.expiry.isoformat().replace("+00:00", "Z"),
        }
        for t in sorted([issued, other], key=lambda t: (-t.created.timestamp(), t.token_key))
    ]
    assert api.delete(f"/api/tokens/{issued.token_key}/").status_code == 204
    assert api.get("/api/portfolios/").status_code == 401
    assert _token_client(other.token).get("/api/portfolios/").status_code == 200
    # Somebody else's token cannot be named (404), and stays valid.
    stranger = api_token_create(user=type(user).objects.create_user("s", password=PASSWORD))
    assert (
        _token_client(other.token).delete(f"/api/tokens/{stranger.token_key}/").status_code == 404
    )
    assert _token_client(stranger.token).get("/api/portfolios/").status_code == 200


def test_an_expired_token_is_refused(user):
    issued = api_token_create(user=user, ttl_days=1)
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    assert _token_client(issued.token).get("/api/portfolios/").status_code == 401


def test_a_plain_users_token_reads_but_cannot_command(user):
    portfolio = _demo_portfolio()
    api = _token_client(api_token_create(user=user).token)
    assert api.get("/api/strategies/").status_code == 200
    url = f"/api/portfolios/{portfolio.pk}/rebalance/"
    assert api.post(url, {"request_key": "k"}, content_type="application/json").status_code == 403
    assert not RebalanceRequest.objects.exists()


def test_a_staff_token_commands_without_csrf(staff):
    portfolio = _demo_portfolio()
    api = Client(
        enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {api_token_create(user=staff).token}"
    )
    url = f"/api/portfolios/{portfolio.pk}/rebalance/"
    response = api.post(url, {"request_key": "k1"}, content_type="application/json")
    assert response.status_code == 202 and response.json()["requested_by"] == "ops"
    assert RebalanceRequest.objects.get().request_key == "k1"


def test_a_session_post_needs_the_csrf_token(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    refused = browser.post("/api/tokens/", {}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not AuthToken.objects.exists()
    browser.get("/accounts/login/")  # sets the csrftoken cookie
    csrf = browser.cookies["csrftoken"].value
    created = browser.post(
        "/api/tokens/", {}, content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert (
        created.status_code == 201
        and AuthToken.objects.get().token_key == created.json()["token_key"]
    )


def test_a_token_cannot_mint_more_tokens(user):
    api = _token_client(api_token_create(user=user).token)
    response = api.post("/api/tokens/", {}, content_type="application/json")
    assert response.status_code == 403 and "cannot create tokens" in response.json()["detail"]
    assert AuthToken.objects.count() == 1


def test_listing_tokens_costs_the_same_queries_for_one_or_many(user, django_assert_num_queries):
    api = _token_client(api_token_create(user=user).token)
    # knox: the token with its user, the user's tokens (expired ones are purged); the list
    with django_assert_num_queries(3):
        assert len(api.get("/api/tokens/").json()) == 1
    for _ in range(20):
        api_token_create(user=user)
    with django_assert_num_queries(3):
        assert len(api.get("/api/tokens/").json()) == 21


def _rates(**rates) -> dict:
    config = dict(settings.REST_FRAMEWORK)
    config["DEFAULT_THROTTLE_RATES"] = {**config["DEFAULT_THROTTLE_RATES"], **rates}
    return config


@pytest.fixture
def fresh_throttle_counts():
    """Empty the throttle counters this module's requests touch (never the whole cache:
    on Redis that would flush the suite's database)."""

    def clear(*idents):
        caches["throttle"].delete_many(
            [
                f"throttle_{scope}_{ident}"
                for scope in ("anon", "user", "token_login")
                for ident in idents
            ]
        )

    return clear


def test_a_user_over_the_rate_gets_429_with_retry_after(user, fresh_throttle_counts):
    api = _token_client(api_token_create(user=user).token)
    fresh_throttle_counts(user.pk)
    with override_settings(REST_FRAMEWORK=_rates(user="2/minute")):
        codes = [api.get("/api/portfolios/").status_code for _ in range(3)]
        throttled = api.get("/api/strategies/")
    assert codes == [200, 200, 429]
    assert throttled.status_code == 429 and 1 <= int(throttled["Retry-After"]) <= 60
    assert "throttled" in throttled.json()["detail"].lower()
    fresh_throttle_counts(user.pk)
    assert api.get("/api/portfolios/").status_code == 200  # the real (test) rate again


def test_password_guesses_are_throttled_per_client(client, user, fresh_throttle_counts):
    fresh_throttle_counts("127.0.0.1")
    with override_settings(REST_FRAMEWORK=_rates(token_login="3/hour")):
        codes = [
            client.post(
                "/api/tokens/login/",
                {"username": "quant", "password": f"guess{i}"},
                content_type="application/json",
            ).status_code
            for i in range(4)
        ]
    fresh_throttle_counts("127.0.0.1")
    assert codes == [400, 400, 400, 429]


def test_the_api_token_command_creates_lists_and_revokes(user):
    out, err = StringIO(), StringIO()
    call_command(
        "api_token", "create", "--user", "quant", "--ttl-days", "30", stdout=out, stderr=err
    )
    token = out.getvalue().strip()
    row = AuthToken.objects.get()
    assert (
        row.digest == hashlib.sha512(token.encode()).hexdigest() and row.token_key in err.getvalue()
    )
    listing = StringIO()
    call_command("api_token", "list", "--user", "quant", stdout=listing)
    assert listing.getvalue().startswith(row.token_key)
    call_command(
        "api_token", "revoke", "--user", "quant", "--key", row.token_key, stdout=StringIO()
    )
    assert not AuthToken.objects.exists()
    assert _token_client(token).get("/api/portfolios/").status_code == 401


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--user", "nobody"], "--user: no user 'nobody'"),
        (["create", "--user", "quant", "--ttl-days", "0"], "--ttl-days must be between"),
        (["revoke", "--user", "quant"], "exactly one of --key KEY or --all"),
        (["revoke", "--user", "quant", "--key", "nope"], "--key: quant has no token 'nope'"),
    ],
)
def test_the_api_token_command_refuses_bad_input_and_changes_nothing(user, args, message):
    api_token_create(user=user)
    with pytest.raises(CommandError, match=message):
        call_command("api_token", *args, stdout=StringIO(), stderr=StringIO())
    assert AuthToken.objects.count() == 1


def test_the_admin_creates_a_token_shows_it_once_and_stores_the_digest(admin_client, user):
    response = admin_client.post(
        "/admin/knox/authtoken/add/", {"user": user.pk, "expiry_0": "", "expiry_1": ""}, follow=True
    )
    shown = [str(m) for m in response.context["messages"] if str(m).startswith("TOKEN ")]
    assert len(shown) == 1
    token = shown[0].removeprefix("TOKEN ")
    row = AuthToken.objects.get(user=user)
    assert row.digest == hashlib.sha512(token.encode()).hexdigest()
    assert _token_client(token).get("/api/portfolios/").status_code == 200
