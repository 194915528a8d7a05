"""Access: every route needs a signed-in user except the login, static files and the
health probes (a new view that forgets it fails here), and password checks are throttled
with a cool-off (django-axes) on the site login, the admin login and the API's token
login."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

PUBLIC = {
    "healthz",
    "readyz",
    "favicon.ico",  # an image browsers fetch on every page, the login page too
    "accounts/login/",
    "accounts/logout/",  # POST only; signs nobody in
    "admin/login/",
    "admin/logout/",
    "api/tokens/login/",  # the password-for-token exchange (throttled, tested below)
}
LIMIT = 5  # settings.AXES_FAILURE_LIMIT


def _routes(patterns=None, prefix=""):
    """Every route as a concrete path: each converter filled with a value it accepts."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route


def _concrete(route: str) -> str:
    route = route.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\.", ".")
    route = re.sub(r"<int:\w+>", "1", route)
    route = re.sub(r"<(?:str|slug|path):\w+>", "x", route)
    route = re.sub(r"<\w+>", "x", route)
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)  # the admin's and DRF's regexes
    route = re.sub(r"\(\?P<format>[^)]*\)", "", route)
    return "/" + route.replace("(?:", "").replace(")?", "").replace("/?", "/")


def test_every_route_but_login_static_and_health_needs_a_signed_in_user(client):
    checked = 0
    for route in sorted(set(_routes())):
        path = _concrete(route)
        if path.lstrip("/") in PUBLIC or "(" in path or "[" in path:
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            if response.status_code in (404, 405):
                continue  # the id does not exist or the method is not served: nothing leaks
            checked += 1
            location = response.get("Location", "")
            assert response.status_code in (401, 403) or (
                response.status_code == 302 and "login" in location
            ), (method, path, response.status_code, location)
    assert checked > 60, checked


def test_the_health_probes_and_the_login_page_are_public(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)
    assert client.get("/accounts/login/").status_code == 200


@pytest.fixture
def quant(django_user_model):
    return django_user_model.objects.create_user("quant", password="right-password-1")


def _fail(client, url, field="username", n=LIMIT, **extra):
    """``n`` wrong passwords; the LIMIT-th failure is itself answered with the lockout."""
    for i in range(1, n + 1):
        response = client.post(url, {field: "quant", "password": "wrong", **extra})
        assert response.status_code == (429 if i == LIMIT else 200), (i, response.status_code)


def test_the_site_login_locks_a_user_and_address_out_after_five_failures(quant):
    client = Client()
    _fail(client, "/accounts/login/")
    locked = client.post("/accounts/login/", {"username": "quant", "password": "right-password-1"})
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in client.session  # even the right password does not log in
    # another address is not locked out: the lockout is per user and address
    other = Client(REMOTE_ADDR="10.9.8.7")
    ok = other.post("/accounts/login/", {"username": "quant", "password": "right-password-1"})
    assert ok.status_code == 302 and "_auth_user_id" in other.session


def test_the_admin_login_is_throttled_too(quant):
    quant.is_staff = True
    quant.save()
    client = Client()
    _fail(client, "/admin/login/", next="/admin/")
    locked = client.post("/admin/login/", {"username": "quant", "password": "right-password-1"})
    assert locked.status_code == 429


def test_the_token_login_is_throttled_with_a_json_429(quant):
    client = Client()
    for i in range(1, LIMIT + 1):
        bad = client.post(
            "/api/tokens/login/",
            {"username": "quant", "password": "wrong"},
            content_type="application/json",
        )
        assert bad.status_code == (429 if i == LIMIT else 400), (i, bad.status_code)
    locked = client.post(
        "/api/tokens/login/",
        {"username": "quant", "password": "right-password-1"},
        content_type="application/json",
    )
    assert locked.status_code == 429 and "Too many failed logins" in locked.json()["detail"]
    assert "token" not in locked.json()


def test_a_success_before_the_limit_resets_the_count(quant):
    client = Client()
    _fail(client, "/accounts/login/", n=LIMIT - 1)
    assert (
        client.post(
            "/accounts/login/", {"username": "quant", "password": "right-password-1"}
        ).status_code
        == 302
    )
    client.logout()
    _fail(client, "/accounts/login/", n=LIMIT - 1)
    again = client.post("/accounts/login/", {"username": "quant", "password": "right-password-1"})
    assert again.status_code == 302
