"""The deployment files agree with each other, with the code and with README "Deployment":
the compose file's structure (and ``docker compose config`` where the compose plugin
exists), the systemd units (and ``systemd-analyze verify`` where it exists), the
Dockerfile, the proxies' websocket and forwarded-proto rules, the env example and the
container healthcheck. Nothing is built or started: no image, no network."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import get_commands
from django.urls import resolve

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
SERVICES = {"postgres", "redis", "migrate", "web", "worker", "caddy"}
LONG_RUNNING = {"postgres", "redis", "web", "worker", "caddy"}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key == key.strip() and key not in pairs, line
            pairs[key] = value
    return pairs


def q_timeout() -> int:
    """The task timeout the deployment runs with: the example's, else the settings' default."""
    return int(env_example().get("QUANTSITE_Q_TIMEOUT", settings.Q_TIMEOUT))


def seconds(duration: str) -> int:
    """A compose (``1h2m3s``) or systemd (``31min``, ``90s``, ``1h 30min``) duration."""
    units = {"h": 3600, "min": 60, "m": 60, "s": 1, "": 1}
    parts = re.findall(r"(\d+)\s*(h|min|m|s|)", duration)
    assert parts and re.fullmatch(r"(\s*\d+\s*(h|min|m|s)?)+\s*", duration), duration
    return sum(int(n) * units[u] for n, u in parts)


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as section -> key -> values (a key may repeat, as ExecStart does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in (UNITS / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def readme_deployment() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Deployment\n")
    return text[start : text.index("\n## ", start + 1)]


def readme_commands() -> list[str]:
    """The shell lines of the Deployment section's code blocks, continuations joined."""
    blocks = re.findall(r"```sh\n(.*?)```", readme_deployment(), re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [line.split("  #")[0].strip() for line in lines if line.strip()]


# --- docker-compose.yml -------------------------------------------------------------------


def test_the_compose_file_runs_migrate_once_before_web_and_worker():
    services = compose()["services"]
    assert set(services) == SERVICES
    migrate = services["migrate"]
    assert migrate["command"][-1] == (
        "python manage.py migrate --noinput && python manage.py sync_schedules"
    )
    assert migrate["restart"] == "no"  # a one-shot: done once, not restarted
    for name in ("web", "worker"):
        needs = services[name]["depends_on"]
        assert needs["migrate"] == {"condition": "service_completed_successfully"}
        assert needs["postgres"] == needs["redis"] == {"condition": "service_healthy"}
    assert set(migrate["depends_on"]) == {"postgres", "redis"}


def test_the_compose_services_have_healthchecks_volumes_and_restart_policies():
    services = compose()["services"]
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "redisdata:/data" in services["redis"]["volumes"]
    assert set(compose()["volumes"]) >= {"pgdata", "redisdata"}
    # web keeps the image's HEALTHCHECK (/healthz); the caddy proxy waits for it
    assert "healthcheck" not in services["web"]
    assert services["caddy"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
    for name in ("migrate", "web", "worker"):
        assert services[name]["env_file"] == [".env"]
        assert services[name]["build"] == "."


def test_the_worker_may_finish_a_task_before_it_is_killed():
    worker = compose()["services"]["worker"]
    assert worker["command"] == ["python", "manage.py", "qcluster"]
    assert seconds(worker["stop_grace_period"]) > q_timeout() >= settings.Q_TIMEOUT


def _compose_cli() -> list[str] | None:
    for cli in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cli[0]):
            probe = subprocess.run([*cli, "version"], capture_output=True, text=True)
            if probe.returncode == 0:
                return cli
    return None


def test_docker_compose_config_accepts_the_compose_file(tmp_path):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no compose: `docker compose version` fails and docker-compose is absent")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    shutil.copy(DEPLOY / "env.example", tmp_path / ".env")  # the README's first step
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    args = [*cli, "--profile", "proxy", "config", "--quiet"]
    out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# --- Dockerfile, .dockerignore, healthcheck -----------------------------------------------


def dockerfile() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_the_dockerfile_installs_pinned_collects_static_and_runs_daphne_unprivileged():
    lines = dockerfile()
    assert lines[0] == "FROM python:3.11-slim-bookworm"
    assert "RUN pip install -r requirements.txt -c constraints.txt" in lines
    user = [i for i, line in enumerate(lines) if line.startswith("USER ")]
    assert [lines[i] for i in user] == ["USER quantsite"]
    collect = [i for i, line in enumerate(lines) if "manage.py collectstatic --noinput" in line]
    assert collect and collect[0] > user[0]  # static files owned by the site user, at build
    assert (
        "find /app/var -mindepth 1 -maxdepth 1 ! -name staticfiles -exec rm -rf {} +"
        in (lines[collect[0]])
    )  # no generated key file left in the image
    cmd = next(line for line in lines if line.startswith("CMD "))
    module, attr = settings.ASGI_APPLICATION.rsplit(".", 1)
    assert cmd == f'CMD ["daphne", "--bind", "0.0.0.0", "--port", "8000", "{module}:{attr}"]'
    health = next(line for line in lines if line.startswith("HEALTHCHECK "))
    assert health.endswith('CMD ["python", "deploy/healthcheck.py"]')
    assert resolve("/healthz").url_name == "healthz"


def test_the_dockerignore_keeps_secrets_and_state_out_but_not_what_the_image_needs():
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and p[0] != "#"]

    def ignored(path: str) -> bool:
        return any(
            Path(path).match(p.removeprefix("**/")) or path.split("/")[0] == p for p in patterns
        )

    for path in (".env", "var", ".git", ".venv", "quantsite.sqlite3", "backups"):
        assert ignored(path), path
    for path in (
        "requirements.txt", "constraints.txt", "manage.py", "deploy/healthcheck.py",
        "quantsite/settings.py", "static/js/live.js", "config/risk_limits.yaml",
    ):  # fmt: skip
        assert not ignored(path), path


class _Healthz(BaseHTTPRequestHandler):
    status = 200
    seen: list[dict] = []

    def do_GET(self):
        self.seen.append({"path": self.path, **dict(self.headers)})
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def _healthcheck(port: int, allowed_hosts: str) -> int:
    env = {"QUANTSITE_HEALTHCHECK_PORT": str(port), "DJANGO_ALLOWED_HOSTS": allowed_hosts}
    script = str(DEPLOY / "healthcheck.py")
    return subprocess.run([sys.executable, script], env=env, capture_output=True).returncode


def test_the_container_healthcheck_asks_healthz_as_the_proxy_would():
    server = HTTPServer(("127.0.0.1", 8331), _Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert _healthcheck(8331, ".example.com, quantsite.example.com") == 0
        assert _Healthz.seen[-1]["path"] == "/healthz"
        assert _Healthz.seen[-1]["Host"] == "example.com"
        assert _Healthz.seen[-1]["X-Forwarded-Proto"] == "https"
        _Healthz.status = 503
        assert _healthcheck(8331, "quantsite.example.com") == 1
    finally:
        server.shutdown()
        server.server_close()
    assert _healthcheck(8331, "quantsite.example.com") == 1  # nothing listening


# --- systemd ------------------------------------------------------------------------------

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/quantsite",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
}


def test_the_systemd_units_order_migrate_first_and_give_the_worker_its_grace_period():
    migrate, web, worker = (unit(f"quantsite-{n}.service") for n in ("migrate", "web", "worker"))
    assert migrate["Service"]["Type"] == ["oneshot"]
    assert migrate["Service"]["ExecStart"] == [
        "/opt/quantsite/.venv/bin/python manage.py migrate --noinput",
        "/opt/quantsite/.venv/bin/python manage.py sync_schedules",
    ]
    assert migrate["Unit"]["Before"] == ["quantsite-web.service quantsite-worker.service"]
    for service in (web, worker):
        assert service["Unit"]["Requires"] == ["quantsite-migrate.service"]
        assert "quantsite-migrate.service" in service["Unit"]["After"][0].split()
        assert service["Service"]["Restart"] == ["always"]
    module, attr = settings.ASGI_APPLICATION.rsplit(".", 1)
    assert web["Service"]["ExecStart"] == [
        f"/opt/quantsite/.venv/bin/daphne --bind 127.0.0.1 --port 8000 {module}:{attr}"
    ]
    assert worker["Service"]["ExecStart"] == ["/opt/quantsite/.venv/bin/python manage.py qcluster"]
    assert worker["Service"]["KillMode"] == ["mixed"]
    [stop] = worker["Service"]["TimeoutStopSec"]
    assert seconds(stop) > q_timeout()


@pytest.mark.parametrize(
    "name", ["migrate", "web", "worker", "backup"], ids=lambda n: f"quantsite-{n}.service"
)
def test_every_systemd_service_is_hardened_and_reads_the_environment_file(name):
    service = unit(f"quantsite-{name}.service")["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], key
    assert service["User"] == ["quantsite"]
    assert service["EnvironmentFile"] == ["/etc/quantsite/quantsite.env"]
    assert service["Environment"] == ["QUANTSITE_DATA_DIR=/var/lib/quantsite"]
    assert service["WorkingDirectory"] == ["/opt/quantsite"]


def test_the_backup_timer_runs_the_backup_command_nightly():
    timer = unit("quantsite-backup.timer")
    assert timer["Timer"]["OnCalendar"] == ["*-*-* 03:15:00 UTC"]
    assert timer["Timer"]["Persistent"] == ["true"]
    backup = unit("quantsite-backup.service")["Service"]
    assert backup["ExecStart"] == [
        "/opt/quantsite/.venv/bin/python manage.py backup /var/lib/quantsite/backups/"
    ]


def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    """On copies whose executables and paths exist on this machine (the venv's python and
    daphne, this checkout, an empty environment file): ``verify`` checks that every
    ExecStart binary exists, and /opt/quantsite is not installed here."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    bin_dir = Path(sys.executable).parent
    env_file = tmp_path / "quantsite.env"
    env_file.write_text("DJANGO_ENV=production\n")
    for path in UNITS.iterdir():
        text = (
            path.read_text()
            .replace("/opt/quantsite/.venv/bin/", f"{bin_dir}/")
            .replace("/opt/quantsite", str(ROOT))
            .replace("/etc/quantsite/quantsite.env", str(env_file))
        )
        (tmp_path / path.name).write_text(text)
    units = sorted(str(p) for p in tmp_path.glob("quantsite-*"))
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True
    )
    # any line is a warning (an unknown key, a bad value, a missing unit): none allowed
    assert (out.returncode, out.stdout + out.stderr) == (0, "")


# --- proxies ------------------------------------------------------------------------------


def _ws_prefix() -> str:
    from reporting.routing import websocket_urlpatterns

    return "/" + str(websocket_urlpatterns[0].pattern).split("/")[0] + "/"


def test_the_proxies_pass_the_websocket_and_overwrite_the_forwarded_proto():
    header = env_example()["DJANGO_SECURE_PROXY_SSL_HEADER"]
    assert header == "X-Forwarded-Proto"
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert _ws_prefix() == "/ws/"
    ws = re.search(r"location /ws/ \{(.*?)\}", nginx, re.S).group(1)
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    for block in (ws, re.search(r"location / \{(.*?)\}", nginx.split("listen 443")[1], re.S)[1]):
        assert f"proxy_set_header {header} $scheme;" in block
        assert "proxy_pass http://quantsite;" in block
    assert "return 301 https://$host$request_uri;" in nginx
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert f"header_up {header} {{scheme}}" in caddy
    assert "reverse_proxy {$QUANTSITE_UPSTREAM:127.0.0.1:8000}" in caddy
    assert compose()["services"]["caddy"]["environment"] == {"QUANTSITE_UPSTREAM": "web:8000"}


@pytest.mark.parametrize("tool", ["nginx", "caddy"])
def test_the_proxy_configuration_parses_with_the_proxy_itself(tool, tmp_path):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")
    if tool == "caddy":
        args = ["caddy", "adapt", "--config", str(DEPLOY / "Caddyfile")]
    else:  # the server blocks inside a minimal main configuration; certificates unchecked
        conf = tmp_path / "nginx.conf"
        site = (DEPLOY / "nginx.conf").read_text()
        site = re.sub(r"\s*ssl_certificate(_key)? .*;", "", site).replace(" ssl;", ";")
        conf.write_text(f"events {{}}\nhttp {{\n{site}\n}}\n")
        args = ["nginx", "-t", "-q", "-c", str(conf), "-p", str(tmp_path)]
    out = subprocess.run(args, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# --- the environment and README "Deployment" ----------------------------------------------


def test_the_env_example_describes_one_consistent_production_site():
    env = env_example()
    assert env["DJANGO_ENV"] == "production"
    # production refuses to start until these are set: no shared example key
    assert env["DJANGO_SECRET_KEY"] == env["QUANTSITE_SECRETS_KEY"] == ""
    host = env["DJANGO_ALLOWED_HOSTS"].split(",")[0]
    assert (
        env["DJANGO_CSRF_TRUSTED_ORIGINS"] == f"https://{host}" and env["QUANTSITE_DOMAIN"] == host
    )
    db = urllib.parse.urlsplit(env["DATABASE_URL"])
    assert (db.scheme, db.hostname, db.port) == ("postgres", "postgres", 5432)
    assert (db.username, db.password, db.path) == (
        env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], "/" + env["POSTGRES_DB"]
    )  # fmt: skip
    assert urllib.parse.urlsplit(env["REDIS_URL"]).hostname == "redis"
    assert {"postgres", "redis"} <= set(compose()["services"])


def test_the_readme_lists_exactly_the_env_example_keys():
    section = readme_deployment()
    table = section[section.index("### Environment") : section.index("### Docker Compose")]
    listed = set()
    for row in re.findall(r"^\| (`.*?) \|", table, re.M):
        listed |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row))
    assert listed == set(env_example())


def test_the_readme_deployment_commands_name_what_exists():
    services = set(compose()["services"])
    commands = get_commands()
    units = {p.name for p in UNITS.iterdir()}
    lines = readme_commands()
    assert lines
    for line in lines:
        for name in re.findall(r"manage\.py (\w+)", line):
            assert name in commands, line
        for service in re.findall(
            r"docker compose (?:exec|run --rm --no-deps|stop|cp) (\w+)", line
        ):
            assert service in services, line
        if m := re.match(r"docker compose stop (.*)", line):
            assert set(m[1].split()) <= services, line
        for name in re.findall(r"\b(quantsite-[a-z]+(?:\.timer|\.service)?)\b", line):
            name = name if "." in name else f"{name}.service"
            assert name in units, line
        for path in re.findall(r"\b(deploy/[\w./*-]+)", line):
            assert list(ROOT.glob(path)), line
    # the systemd route installs exactly what the image installs
    pip = "pip install -r requirements.txt -c constraints.txt"
    assert any(pip in line for line in lines) and f"RUN {pip}" in dockerfile()
    # the compose route's first step is the env file the compose file reads
    assert "cp deploy/env.example .env" in lines
    assert "docker compose up -d --build" in lines


def test_the_env_example_with_a_secret_key_passes_the_deploy_check(tmp_path):
    """The example's production environment, as written (only the keys filled in), gives a
    configuration Django's deploy check finds nothing to warn about."""
    if not hasattr(settings, "DJANGO_ENV"):
        pytest.skip("production mode (DJANGO_ENV, issue 15 point 6) is not in this tree")
    env = {
        **env_example(),
        "DJANGO_SECRET_KEY": "Xk3v9Qp2Lm8Zr4Tn6Wb1Yc7Hd5Fg0Js2Ae9Ku3Po8Ri1Vl6Mx4Nz7",
        "QUANTSITE_SECRETS_KEY": Fernet.generate_key().decode(),
        "QUANTSITE_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    args = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
