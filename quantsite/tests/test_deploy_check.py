"""Production mode (``DJANGO_ENV=production``, README "Production settings").

Django's deploy check passes with only the required environment, and fails without it (the
negative control: development mode still reports what production turns on); startup stops
with one line naming the missing or weak variable, from ``manage.py`` and from daphne; the
settings production computes; and a production daphne answering over plain http and
through a TLS-terminating proxy, headers and cookie flags as a browser receives them.

Every command runs in a subprocess with the real settings module (not the test settings)
and a data folder of its own; the database and Redis URLs of the run pass through, no
database is touched.
"""

from __future__ import annotations

import http.client
import os
import runpy
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOST = "quantsite.example.com"
PORT = 8322
ONE_YEAR = 365 * 24 * 3600


def _env(tmp_path: Path, **extra: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "QUANTSITE_")) or k == "QUANTSITE_DATA_DIR"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="quantsite.settings",
        QUANTSITE_DATA_DIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def _production(tmp_path: Path, **extra: str) -> dict:
    return _env(
        tmp_path,
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS=HOST,
        QUANTSITE_SECRETS_KEY=Fernet.generate_key().decode(),
        **extra,
    )


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deploy_check_passes_in_production_with_only_the_required_environment(tmp_path):
    done = _manage(_production(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_the_deploy_check_fails_in_development_on_what_production_turns_on(tmp_path):
    # the negative control: the same check, the default mode, every warning still there
    done = _manage(_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode != 0
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in done.stderr, (code, done.stderr)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("DJANGO_SECRET_KEY", "DJANGO_ENV=production needs DJANGO_SECRET_KEY"),
        ("DJANGO_ALLOWED_HOSTS", "DJANGO_ENV=production needs DJANGO_ALLOWED_HOSTS"),
        ("QUANTSITE_SECRETS_KEY", "QUANTSITE_SECRETS_KEY must be set in production"),
    ],
)
def test_production_startup_stops_with_one_line_naming_the_missing_variable(
    tmp_path, drop, message
):
    env = _production(tmp_path)
    del env[drop]
    done = _manage(env, "check")
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()  # one line: no traceback
    assert line.startswith("quantsite: configuration error: " + message), line


def test_daphne_refuses_to_serve_production_without_a_secret_key(tmp_path):
    env = _production(tmp_path)
    del env["DJANGO_SECRET_KEY"]
    done = subprocess.run(
        [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(PORT), "quantsite.asgi:application"],
        cwd=BASE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "DJANGO_ENV=production needs DJANGO_SECRET_KEY" in done.stderr


def _settings(monkeypatch, tmp_path, **env: str) -> dict:
    for name in list(os.environ):
        if name.startswith("DJANGO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QUANTSITE_DATA_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(BASE / "quantsite" / "settings.py"))


def _production_settings(monkeypatch, tmp_path, **env: str) -> dict:
    required = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "QUANTSITE_SECRETS_KEY": Fernet.generate_key().decode(),
    }
    return _settings(monkeypatch, tmp_path, **({"DJANGO_ENV": "production"} | required | env))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_SECRET_KEY": "ab" * 30}, "DJANGO_SECRET_KEY is too weak"),
        ({"DJANGO_SECRET_KEY": "short-key-1"}, "at least 50 characters"),
        ({"DJANGO_SECRET_KEY": "django-insecure-" + "k" * 60}, "'django-insecure-'"),
        ({"DJANGO_ALLOWED_HOSTS": " , "}, "needs DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_DEBUG": "1"}, "DJANGO_DEBUG must be off"),
        ({"DJANGO_ENV": "prod"}, "DJANGO_ENV='prod': expected one of development, production"),
        ({"DJANGO_SECURE_PROXY_SSL_HEADER": "X Forwarded"}, "DJANGO_SECURE_PROXY_SSL_HEADER="),
    ],
)
def test_production_refuses_a_weak_key_no_hosts_debug_or_a_malformed_value(
    monkeypatch, tmp_path, env, message
):
    with pytest.raises(ImproperlyConfigured, match=message):
        _production_settings(monkeypatch, tmp_path, **env)


def test_production_turns_on_https_only_cookies_the_redirect_and_a_year_of_hsts(
    monkeypatch, tmp_path
):
    conf = _production_settings(monkeypatch, tmp_path)
    assert (conf["DEBUG"], conf["ALLOWED_HOSTS"]) == (False, [HOST])
    assert conf["SESSION_COOKIE_SECURE"] and conf["CSRF_COOKIE_SECURE"]
    assert conf["SESSION_COOKIE_HTTPONLY"] and conf["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert conf["SECURE_SSL_REDIRECT"] and conf["SECURE_HSTS_SECONDS"] == ONE_YEAR
    assert conf["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and not conf["SECURE_HSTS_PRELOAD"]
    assert conf["SECURE_PROXY_SSL_HEADER"] is None  # only when a proxy is named
    assert conf["SECRET_KEY"] == os.environ["DJANGO_SECRET_KEY"]
    assert not (tmp_path / "secret_key").exists()  # never generated in production


def test_the_proxy_header_redirect_and_hsts_options_come_from_the_environment(
    monkeypatch, tmp_path
):
    conf = _production_settings(
        monkeypatch,
        tmp_path,
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        DJANGO_SECURE_SSL_REDIRECT="off",
        DJANGO_SECURE_HSTS_SECONDS="600",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="no",
        DJANGO_SECURE_HSTS_PRELOAD="yes",
    )
    assert conf["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert not conf["SECURE_SSL_REDIRECT"] and conf["SECURE_HSTS_SECONDS"] == 600
    assert not conf["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and conf["SECURE_HSTS_PRELOAD"]
    assert "security.W021" not in conf["SILENCED_SYSTEM_CHECKS"]  # preload on: nothing to hide
    header = "X-Forwarded-Ssl=on"
    conf = _production_settings(monkeypatch, tmp_path, DJANGO_SECURE_PROXY_SSL_HEADER=header)
    assert conf["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_SSL", "on")


def test_development_keeps_plain_http_on_localhost(monkeypatch, tmp_path):
    conf = _settings(monkeypatch, tmp_path)
    assert conf["DJANGO_ENV"] == "development" and "127.0.0.1" in conf["ALLOWED_HOSTS"]
    assert not (conf["SESSION_COOKIE_SECURE"] or conf["CSRF_COOKIE_SECURE"])
    assert not conf["SECURE_SSL_REDIRECT"] and conf["SECURE_HSTS_SECONDS"] == 0
    assert (tmp_path / "secret_key").exists()  # generated, as before
    # the CSP applies in both modes
    directives = conf["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    assert directives["script-src"] == ["'self'"]


def _get(path: str, **headers: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    connection.request("GET", path, headers={"Host": HOST, **headers})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def _wait_until_served(process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            _get("/healthz")
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("daphne did not answer within 30 s:\n" + log.read_text())


def test_a_production_server_redirects_http_and_sends_hsts_secure_cookies_and_csp(tmp_path):
    env = _production(tmp_path, DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    log = tmp_path / "daphne.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(PORT), "quantsite.asgi:application"],
            cwd=BASE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_served(process, log)
        plain = _get("/accounts/login/")
        assert plain.status == 301
        assert plain.getheader("Location") == f"https://{HOST}/accounts/login/"
        assert _get("/healthz").status == 200  # probes over plain http are not redirected

        page = _get("/accounts/login/", **{"X-Forwarded-Proto": "https"})
        assert page.status == 200
        assert page.getheader("Strict-Transport-Security") == (
            f"max-age={ONE_YEAR}; includeSubDomains"
        )
        csp = dict(
            part.strip().split(" ", 1)
            for part in page.getheader("Content-Security-Policy").split(";")
        )
        assert csp["script-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
        assert csp["connect-src"] == f"'self' wss://{HOST}"
        assert page.getheader("X-Frame-Options") == "DENY"
        assert page.getheader("X-Content-Type-Options") == "nosniff"
        assert page.getheader("Referrer-Policy") == "same-origin"
        assert "camera=()" in page.getheader("Permissions-Policy")
        cookie = page.getheader("Set-Cookie")
        assert cookie.startswith("csrftoken=") and "; Secure" in cookie
        assert "SameSite=Lax" in cookie
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_every_response_names_its_own_websocket_origin_in_connect_src(client):
    csp = client.get("/accounts/login/")["Content-Security-Policy"]
    assert "connect-src 'self' ws://testserver;" in csp + ";"
    assert (
        "wss://testserver" in client.get("/accounts/login/", secure=True)["Content-Security-Policy"]
    )
    # a host outside ALLOWED_HOSTS is a plain 400, not an error while building the header
    assert client.get("/accounts/login/", HTTP_HOST="evil.example").status_code == 400
