"""The alert outbox: who gets a delivery, what each channel receives on the wire, and
that a webhook which is down, slow or failing delays nothing else and loses no alert.

The network is a real HTTP server on 127.0.0.1 (one thread per request); email goes to
Django's locmem backend. ``now`` is passed explicitly so retry times are exact.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from django.urls import reverse

from portfolio.models import Instrument, Portfolio, Strategy
from risk import alerts
from risk.alerts import outbox
from risk.engine.alert_formats import backoff_seconds, severity_admits
from risk.models import AlertChannel, AlertDelivery, RiskLimit, Violation
from risk.tasks import deliver_alerts

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2024, 1, 2, 9, 30, tzinfo=UTC)
TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_PATH = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"

CRITICAL_SUBJECT = (
    "[CRITICAL] Alerts test: max_drawdown breached at portfolio, -0.162 vs -0.15 on 2020-03-16"
)


# --- a recording HTTP server --------------------------------------------------------------


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Route:
    status: int = 200
    body: bytes = b"ok"
    content_type: str = "text/plain"
    delay: float = 0.0


@dataclass
class Recorder:
    routes: dict[str, Route] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)

    def to(self, path: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.path == path]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        recorder = self.server.recorder
        recorder.exchanges.append(Exchange("POST", self.path, dict(self.headers), body))
        route = recorder.routes.get(self.path, Route())
        time.sleep(route.delay)
        try:
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args):
        pass


class Server:
    def __init__(self, port: int = 0, recorder: Recorder | None = None):
        self.recorder = recorder or Recorder()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.httpd.recorder = self.recorder
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the cast -----------------------------------------------------------------------------


@dataclass
class Cast:
    portfolio: Portfolio
    strategy: Strategy
    critical: Violation
    low: Violation


@pytest.fixture
def cast(db) -> Cast:
    portfolio = Portfolio.objects.create(name="Alerts test", initial_capital=Decimal("1000000"))
    strategy = Strategy.objects.create(
        portfolio=portfolio,
        name="momentum_120",
        signal_type="MomentumSignalV2",
        target_allocation=Decimal("0.5"),
    )
    drawdown = RiskLimit.objects.create(
        portfolio=portfolio,
        name="max_drawdown",
        scope="portfolio",
        metric="drawdown",
        direction="min",
        threshold=-0.15,
        severity="critical",
        action="liquidate_all",
    )
    weight = RiskLimit.objects.create(
        portfolio=portfolio,
        name="max_weight_per_ticker",
        scope="position",
        metric="ticker_weight",
        direction="max",
        threshold=0.10,
        severity="low",
        action="alert_only",
    )
    critical = Violation.objects.create(
        portfolio=portfolio,
        limit=drawdown,
        severity="critical",
        date=date(2020, 3, 16),
        value=-0.162,
        threshold=-0.15,
        action_taken="liquidate_all",
    )
    low = Violation.objects.create(
        portfolio=portfolio,
        limit=weight,
        severity="low",
        strategy=strategy,
        instrument=Instrument.objects.get(ticker="AAPL"),
        date=date(2020, 3, 17),
        value=0.1234,
        threshold=0.10,
        action_taken="alert_only",
    )
    return Cast(portfolio, strategy, critical, low)


def _channel(name, kind, config, *, portfolio=None, **extra) -> AlertChannel:
    return AlertChannel.objects.create(
        name=name, kind=kind, config=config, portfolio=portfolio, **extra
    )


def _delivery(channel: AlertChannel) -> AlertDelivery:
    return AlertDelivery.objects.get(channel=channel)


# --- engine -------------------------------------------------------------------------------


def test_backoff_doubles_from_one_minute_and_caps_at_one_hour():
    # 1, 2, 4, 8, 16, 32 min; 64 min would pass the 60 min cap.
    expected = [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert [backoff_seconds(n) for n in range(1, 9)] == expected
    assert backoff_seconds(10_000) == 3600


def test_a_channel_floor_admits_its_severity_and_above():
    assert severity_admits("high", "critical") and severity_admits("high", "high")
    assert not severity_admits("high", "medium") and not severity_admits("high", "low")
    assert severity_admits("low", "low")


# --- enqueue ------------------------------------------------------------------------------


def test_each_violation_is_alerted_once_per_admitting_enabled_channel(cast):
    everyone = _channel("ops mail", "email", {"recipients": ["ops@example.com"]})
    high_only = _channel(
        "pager", "webhook", {"url": "http://x"}, portfolio=cast.portfolio, min_severity="high"
    )
    _channel("muted", "slack", {"webhook_url": "http://x"}, enabled=False)
    other = Portfolio.objects.create(name="Other book", initial_capital=Decimal("1"))
    _channel("other book", "discord", {"webhook_url": "http://x"}, portfolio=other)

    created = alerts.alerts_enqueue(violations=[cast.critical, cast.low])
    again = alerts.alerts_enqueue(violations=[cast.critical, cast.low])

    pairs = set(AlertDelivery.objects.values_list("channel__name", "violation_id"))
    assert created == 3 and again == 0
    assert pairs == {
        ("ops mail", cast.critical.pk),
        ("ops mail", cast.low.pk),
        ("pager", cast.critical.pk),
    }
    assert AlertDelivery.objects.filter(channel=high_only, violation=cast.low).count() == 0
    assert set(AlertDelivery.objects.values_list("status", "attempts")) == {("pending", 0)}
    assert everyone.deliveries.count() == 2


def test_the_subject_and_body_name_the_breach(cast):
    _channel("ops mail", "email", {"recipients": ["ops@example.com"]})
    alerts.alerts_enqueue(violations=[cast.low])
    delivery = AlertDelivery.objects.get()
    assert delivery.subject == (
        "[LOW] Alerts test: max_weight_per_ticker breached at "
        "position/momentum_120/AAPL, 0.1234 vs 0.1 on 2020-03-17"
    )
    assert delivery.body == (
        "Risk limit breached: max_weight_per_ticker\n\n"
        "Portfolio: Alerts test\n"
        "Limit: max_weight_per_ticker\n"
        "Severity: low\n"
        "Scope: position\n"
        "Strategy / ticker: momentum_120 / AAPL\n"
        "Value: 0.1234 (above the threshold 0.1)\n"
        "Threshold: 0.1\n"
        "Action taken: alert_only\n"
        "Bar date: 2020-03-17\n"
        "Status: open\n"
    )


def test_backtest_violations_page_nobody(cast):
    _channel("ops mail", "email", {"recipients": ["ops@example.com"]})
    Portfolio.objects.filter(pk=cast.portfolio.pk).update(is_backtest=True)
    assert alerts.alerts_enqueue(violations=[cast.critical]) == 0


def test_enqueue_sends_nothing_and_queues_one_task_after_commit(
    cast, monkeypatch, django_capture_on_commit_callbacks, mailoutbox
):
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *a, **k: queued.append(func))
    _channel("ops mail", "email", {"recipients": ["ops@example.com"]})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alerts.alerts_enqueue(violations=[cast.critical])
        alerts.alerts_enqueue(violations=[cast.low])
    assert mailoutbox == [] and queued == []
    assert len(callbacks) == 1  # one kick per transaction, however many enqueues
    callbacks[0]()
    assert queued == ["risk.tasks.deliver_alerts"]


def test_a_broker_failure_after_commit_is_logged_not_raised(cast, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr("django_q.tasks.async_task", broken)
    outbox._queue_delivery()
    assert "every-minute schedule will deliver" in caplog.text


# --- what each channel receives -------------------------------------------------------------


def test_webhook_slack_and_discord_receive_their_exact_shapes(cast, server):
    _channel(
        "generic",
        "webhook",
        {"url": server.url("/hook"), "headers": {"Authorization": "Bearer s3cret"}},
    )
    _channel("slack", "slack", {"webhook_url": server.url("/slack")})
    _channel("discord", "discord", {"webhook_url": server.url("/discord")})
    alerts.alerts_enqueue(violations=[cast.critical])

    report = alerts.alerts_deliver(now=T0)

    assert report == alerts.DeliveryReport(attempted=3, sent=3, failed=0)
    (hook,) = server.recorder.to("/hook")
    assert hook.headers["Authorization"] == "Bearer s3cret"
    assert hook.headers["Content-Type"] == "application/json"
    assert hook.json() == {
        "event": "risk.violation",
        "violation_id": cast.critical.pk,
        "portfolio": "Alerts test",
        "limit": "max_drawdown",
        "severity": "critical",
        "scope": "portfolio",
        "strategy": None,
        "ticker": None,
        "value": -0.162,
        "threshold": -0.15,
        "action": "liquidate_all",
        "date": "2020-03-16",
        "status": "open",
    }
    fields = [
        ("Portfolio", "Alerts test"),
        ("Limit", "max_drawdown"),
        ("Severity", "critical"),
        ("Scope", "portfolio"),
        ("Strategy / ticker", "- / -"),
        ("Value", "-0.162 (below the threshold -0.15)"),
        ("Threshold", "-0.15"),
        ("Action taken", "liquidate_all"),
        ("Bar date", "2020-03-16"),
        ("Status", "open"),
    ]
    (slack,) = server.recorder.to("/slack")
    assert slack.json() == {
        "text": CRITICAL_SUBJECT,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": CRITICAL_SUBJECT}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "Quantsite risk manager"}],
            },
        ],
    }
    (discord,) = server.recorder.to("/discord")
    assert discord.json() == {
        "content": CRITICAL_SUBJECT,
        "embeds": [
            {
                "title": "Risk limit breached: max_drawdown",
                "description": "max_drawdown at portfolio: -0.162 (below the threshold -0.15);"
                " action: liquidate_all",
                "color": 0xD32F2F,
                "fields": [{"name": k, "value": v, "inline": True} for k, v in fields],
            }
        ],
    }
    assert set(AlertDelivery.objects.values_list("status", "attempts", "sent_at")) == {
        ("sent", 1, T0)
    }


def test_twilio_gets_a_form_post_with_basic_auth_and_its_201_counts_as_sent(cast, server):
    recorded = (FIXTURES / "twilio_message_created.json").read_bytes()
    server.recorder.routes[TWILIO_PATH] = Route(201, recorded, "application/json")
    sms = _channel(
        "sms",
        "sms",
        {
            "twilio_sid": TWILIO_SID,
            "twilio_token": "tok3n",
            "phone_number": "+15558675310",
            "from_number": "+15005550006",
            "api_base": server.url(""),
        },
    )
    alerts.alerts_enqueue(violations=[cast.critical])

    report = alerts.alerts_deliver(now=T0)

    (exchange,) = server.recorder.exchanges
    assert report.sent == 1 and _delivery(sms).status == "sent"
    assert exchange.path == TWILIO_PATH
    assert exchange.headers["Content-Type"] == "application/x-www-form-urlencoded"
    token = base64.b64encode(f"{TWILIO_SID}:tok3n".encode()).decode()
    assert exchange.headers["Authorization"] == f"Basic {token}"
    assert parse_qs(exchange.body.decode(), strict_parsing=True) == {
        "To": ["+15558675310"],
        "From": ["+15005550006"],
        "Body": [CRITICAL_SUBJECT],
    }
    reply = json.loads(recorded)  # the recorded answer is Twilio's documented shape
    assert (reply["status"], reply["api_version"], reply["account_sid"]) == (
        "queued",
        "2010-04-01",
        TWILIO_SID,
    )
    assert reply["sid"].startswith("SM") and len(reply["sid"]) == 34


def test_a_twilio_refusal_is_a_failure_with_its_error_code(cast, server):
    refusal = {
        "code": 21211,
        "message": "The 'To' number +1555 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    server.recorder.routes[TWILIO_PATH] = Route(
        400, json.dumps(refusal).encode(), "application/json"
    )
    sms = _channel(
        "sms",
        "sms",
        {
            "twilio_sid": TWILIO_SID,
            "twilio_token": "tok3n",
            "phone_number": "+1555",
            "from_number": "+15005550006",
            "api_base": server.url(""),
        },
    )
    alerts.alerts_enqueue(violations=[cast.critical])
    alerts.alerts_deliver(now=T0)
    delivery = _delivery(sms)
    assert delivery.status == "failed"
    assert delivery.last_error.startswith("HTTP 400 from 127.0.0.1: ")
    assert "21211" in delivery.last_error


def test_email_goes_through_the_configured_mail_backend(cast, mailoutbox, settings):
    settings.DEFAULT_FROM_EMAIL = "risk@quantsite.test"
    _channel("ops mail", "email", {"recipients": ["ops@example.com", "cio@example.com"]})
    alerts.alerts_enqueue(violations=[cast.critical])

    assert alerts.alerts_deliver(now=T0).sent == 1

    (mail,) = mailoutbox
    assert mail.subject == CRITICAL_SUBJECT
    assert mail.to == ["ops@example.com", "cio@example.com"]
    assert mail.from_email == "risk@quantsite.test"
    assert "Value: -0.162 (below the threshold -0.15)\n" in mail.body
    assert "Action taken: liquidate_all\n" in mail.body


# --- acceptance: a bad webhook delays nothing else and loses no alert ---------------------


def test_a_webhook_that_is_down_is_retried_and_delivered_when_it_comes_back(
    cast, server, mailoutbox
):
    port = _closed_port()
    down = _channel("down", "webhook", {"url": f"http://127.0.0.1:{port}/hook"})
    up = _channel("up", "slack", {"webhook_url": server.url("/slack")})
    _channel("ops mail", "email", {"recipients": ["ops@example.com"]})
    alerts.alerts_enqueue(violations=[cast.critical])

    first = alerts.alerts_deliver(now=T0)

    failed = _delivery(down)
    assert first == alerts.DeliveryReport(attempted=3, sent=2, failed=1)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.next_attempt_at == T0 + timedelta(minutes=1)
    assert "cannot reach 127.0.0.1" in failed.last_error
    assert "refused" in failed.last_error.lower()
    assert _delivery(up).status == "sent" and len(mailoutbox) == 1

    assert alerts.alerts_deliver(now=T0 + timedelta(seconds=59)).attempted == 0  # not due

    revived = Server(port=port)
    try:
        later = alerts.alerts_deliver(now=T0 + timedelta(minutes=1))
    finally:
        revived.stop()
    delivered = _delivery(down)
    assert later == alerts.DeliveryReport(attempted=1, sent=1, failed=0)
    assert (delivered.status, delivered.attempts, delivered.last_error) == ("sent", 2, "")
    assert delivered.sent_at == T0 + timedelta(minutes=1)
    (exchange,) = revived.recorder.exchanges
    assert exchange.json()["limit"] == "max_drawdown"
    assert len(server.recorder.to("/slack")) == 1 and len(mailoutbox) == 1  # no re-sends


def test_a_slow_webhook_times_out_without_holding_up_the_other_channels(cast, server, mailoutbox):
    server.recorder.routes["/slow"] = Route(delay=2.0)
    slow = _channel("slow", "webhook", {"url": server.url("/slow"), "timeout": 0.5})
    fast = _channel("fast", "webhook", {"url": server.url("/fast")})
    _channel("ops mail", "email", {"recipients": ["ops@example.com"]})
    alerts.alerts_enqueue(violations=[cast.critical])

    started = time.monotonic()
    report = alerts.alerts_deliver(now=T0)
    elapsed = time.monotonic() - started

    timed_out = _delivery(slow)
    assert report == alerts.DeliveryReport(attempted=3, sent=2, failed=1)
    assert elapsed < 1.9  # the run waited for the timeout, not for the slow server
    assert timed_out.status == "failed"
    assert timed_out.last_error == "timed out after 0.5 s (127.0.0.1)"
    assert timed_out.next_attempt_at == T0 + timedelta(minutes=1)
    assert _delivery(fast).status == "sent" and len(mailoutbox) == 1

    server.recorder.routes["/slow"] = Route()
    assert alerts.alerts_deliver(now=T0 + timedelta(minutes=1)).sent == 1
    assert _delivery(slow).status == "sent"


def test_a_webhook_answering_500_backs_off_and_is_sent_once_it_answers_200(cast, server):
    server.recorder.routes["/hook"] = Route(500, b"upstream exploded\n")
    hook = _channel("hook", "webhook", {"url": server.url("/hook")})
    alerts.alerts_enqueue(violations=[cast.critical])

    alerts.alerts_deliver(now=T0)
    first = _delivery(hook)
    alerts.alerts_deliver(now=T0 + timedelta(minutes=1))
    second = _delivery(hook)
    server.recorder.routes["/hook"] = Route(200)
    alerts.alerts_deliver(now=T0 + timedelta(minutes=2))  # not due yet: 1 + 2 min
    alerts.alerts_deliver(now=T0 + timedelta(minutes=3))
    third = _delivery(hook)

    assert (first.status, first.attempts) == ("failed", 1)
    assert first.last_error == "HTTP 500 from 127.0.0.1: upstream exploded"
    assert first.next_attempt_at == T0 + timedelta(minutes=1)
    assert (second.attempts, second.next_attempt_at) == (2, T0 + timedelta(minutes=3))
    assert (third.status, third.attempts, third.sent_at) == ("sent", 3, T0 + timedelta(minutes=3))
    assert len(server.recorder.to("/hook")) == 3


def test_a_misconfigured_channel_fails_alone(cast, server):
    no_url = _channel("no url", "webhook", {})
    local_file = _channel("file", "slack", {"webhook_url": "file:///etc/passwd"})
    no_sender = _channel("sms", "sms", {"twilio_sid": TWILIO_SID, "twilio_token": "t"})
    ok = _channel("ok", "discord", {"webhook_url": server.url("/discord")})
    alerts.alerts_enqueue(violations=[cast.critical])

    report = alerts.alerts_deliver(now=T0)

    assert report == alerts.DeliveryReport(attempted=4, sent=1, failed=3)
    assert _delivery(no_url).last_error == "channel config needs url"
    assert _delivery(local_file).last_error.startswith("URL must be http or https")
    assert _delivery(no_sender).last_error == "channel config needs from_number"
    assert _delivery(ok).status == "sent"


def test_a_claimed_delivery_is_not_picked_up_by_a_second_runner(cast):
    _channel("hook", "webhook", {"url": "http://127.0.0.1:9/"})
    alerts.alerts_enqueue(violations=[cast.critical])
    (claimed,) = outbox._claim(now=T0, limit=10)  # a runner mid-send holds the lease
    assert alerts.alerts_deliver(now=T0 + timedelta(minutes=14)).attempted == 0
    assert alerts.alerts_deliver(now=T0 + alerts.CLAIM_LEASE).attempted == 1  # lease over


def test_the_task_delivers_and_reports(cast, server):
    _channel("hook", "webhook", {"url": server.url("/hook")})
    alerts.alerts_enqueue(violations=[cast.critical])
    assert deliver_alerts() == "alerts: 1 sent, 0 failed of 1"


# --- admin --------------------------------------------------------------------------------


def test_the_admin_sends_a_test_alert_on_a_channel(cast, admin_client, server):
    channel = _channel("hook", "webhook", {"url": server.url("/hook")}, portfolio=cast.portfolio)
    url = reverse("admin:risk_alertchannel_changelist")
    response = admin_client.post(
        url, {"action": "send_test_alert", "_selected_action": [channel.pk]}
    )
    assert response.status_code == 302
    delivery = AlertDelivery.objects.get(channel=channel)
    assert delivery.violation is None
    assert delivery.subject == "[TEST] Quantsite alert channel test (Alerts test)"

    alerts.alerts_deliver(now=T0)
    (exchange,) = server.recorder.exchanges
    assert exchange.json()["event"] == "risk.test"
    assert exchange.json()["portfolio"] == "Alerts test"


def test_the_admin_retries_failed_deliveries_now_and_lists_their_errors(cast, admin_client):
    channel = _channel("hook", "webhook", {"url": "http://127.0.0.1:9/"})
    alerts.alerts_enqueue(violations=[cast.critical])
    AlertDelivery.objects.update(
        status="failed", attempts=4, last_error="HTTP 503", next_attempt_at=T0 + timedelta(days=9)
    )
    url = reverse("admin:risk_alertdelivery_changelist")
    listing = admin_client.get(url)
    response = admin_client.post(
        url, {"action": "retry_now", "_selected_action": [_delivery(channel).pk]}
    )
    assert listing.status_code == 200 and b"HTTP 503" in listing.content
    assert response.status_code == 302
    assert _delivery(channel).next_attempt_at <= datetime.now(UTC)


def test_risk_limits_yaml_channels_may_set_timeouts_and_the_sms_api_base():
    from risk.engine.limits_config import parse_risk_config

    spec = parse_risk_config(
        {
            "alert_settings": {
                "webhook": {"url": "https://example.com/hook", "timeout": 2},
                "sms": {
                    "twilio_sid": TWILIO_SID,
                    "twilio_token": "t",
                    "phone_number": "+15558675310",
                    "from_number": "+15005550006",
                    "api_base": "http://127.0.0.1:8081",
                },
            }
        },
        source="risk_limits.yaml",
    )
    configs = {c.kind: c.config for c in spec.channels}
    assert configs["webhook"]["timeout"] == 2
    assert configs["sms"]["api_base"] == "http://127.0.0.1:8081"


# --- PagerDuty (Events API v2) ------------------------------------------------------------

PD_KEY = "R0123456789abcdef0123456789abcde"
PD_RECORDED = json.loads((FIXTURES / "pagerduty_events_v2.json").read_text())


def _pd_answer(name: str, status: int, dedup_key: str = "") -> Route:
    body = json.dumps(PD_RECORDED[name]).replace("DEDUP_KEY", dedup_key).encode()
    return Route(status, body, "application/json")


def _pd_expected(name: str, violation: Violation) -> dict:
    text = json.dumps(PD_RECORDED[name])
    text = text.replace("DEDUP_KEY", f"quantsite-violation-{violation.pk}")
    text = text.replace("TIMESTAMP", violation.opened_at.isoformat())
    return json.loads(text.replace('"VIOLATION_ID"', str(violation.pk)))


def _pagerduty(server, **extra) -> AlertChannel:
    config = {"routing_key": PD_KEY, "api_base": server.url("")}
    return _channel("pager", "pagerduty", config, **extra)


def _resolve(violation: Violation, day: date) -> None:
    violation.status, violation.resolved_on = "resolved", day
    violation.save(update_fields=["status", "resolved_on"])


def test_pagerduty_gets_a_trigger_keyed_by_the_violation_and_its_202_counts_as_sent(cast, server):
    key = f"quantsite-violation-{cast.critical.pk}"
    server.recorder.routes["/v2/enqueue"] = _pd_answer("accepted_202", 202, key)
    pager = _pagerduty(server)
    alerts.alerts_enqueue(violations=[cast.critical])

    report = alerts.alerts_deliver(now=T0)

    (exchange,) = server.recorder.to("/v2/enqueue")
    assert report.sent == 1 and _delivery(pager).status == "sent"
    assert exchange.headers["Content-Type"] == "application/json"
    assert exchange.json() == _pd_expected("trigger_request", cast.critical)


def test_pagerduty_severities_map_critical_high_medium_low_to_its_four():
    from risk.engine.alert_formats import AlertMessage, pagerduty_payload

    def severity(level):
        msg = AlertMessage(portfolio="P", limit="l", severity=level, violation_id=1)
        event = pagerduty_payload(
            msg, routing_key="k", action="trigger", dedup_key="d", timestamp="t"
        )
        return event["payload"]["severity"]

    assert [severity(s) for s in ("critical", "high", "medium", "low")] == [
        "critical",
        "error",
        "warning",
        "info",
    ]


def test_pagerduty_summary_is_cut_to_1024_characters():
    from risk.engine.alert_formats import AlertMessage, pagerduty_payload

    msg = AlertMessage(portfolio="P" * 2000, limit="l", severity="low", violation_id=1)
    event = pagerduty_payload(msg, routing_key="k", action="trigger", dedup_key="d", timestamp="t")
    # the subject itself is cut to AlertDelivery.subject's 300 characters first
    assert len(event["payload"]["summary"]) == 300


def test_a_resolved_violation_sends_pagerduty_one_resolve_with_the_same_key(cast, server):
    key = f"quantsite-violation-{cast.critical.pk}"
    server.recorder.routes["/v2/enqueue"] = _pd_answer("accepted_202", 202, key)
    pager = _pagerduty(server)
    hook = _channel("hook", "webhook", {"url": server.url("/hook")})
    alerts.alerts_enqueue(violations=[cast.critical])
    alerts.alerts_deliver(now=T0)
    _resolve(cast.critical, date(2020, 3, 20))

    created = alerts.alerts_enqueue_resolved(violations=[cast.critical])
    again = alerts.alerts_enqueue_resolved(violations=[cast.critical])  # a restart
    report = alerts.alerts_deliver(now=T0 + timedelta(minutes=1))

    # the webhook is told of openings only; PagerDuty gets its resolve once
    assert (created, again) == (1, 0)
    assert report == alerts.DeliveryReport(attempted=1, sent=1, failed=0)
    resolve = AlertDelivery.objects.get(channel=pager, event="resolve")
    assert resolve.status == "sent"
    assert resolve.subject == (
        "[RESOLVED] Alerts test: max_drawdown at portfolio recovered on 2020-03-20"
    )
    assert not AlertDelivery.objects.filter(channel=hook, event="resolve").exists()
    trigger, resolved = (e.json() for e in server.recorder.to("/v2/enqueue"))
    assert trigger["event_action"] == "trigger"
    assert resolved == _pd_expected("resolve_request", cast.critical)


def test_a_violation_pagerduty_never_got_sends_no_resolve(cast, server):
    _pagerduty(server, min_severity="critical")
    alerts.alerts_enqueue(violations=[cast.low])  # below the floor: no trigger
    _resolve(cast.low, date(2020, 3, 20))

    assert alerts.alerts_enqueue_resolved(violations=[cast.low]) == 0


def test_a_pagerduty_resolve_waits_for_its_throttled_trigger(cast, server):
    server.recorder.routes["/v2/enqueue"] = _pd_answer("throttled_429", 429)
    pager = _pagerduty(server)
    alerts.alerts_enqueue(violations=[cast.critical])
    _resolve(cast.critical, date(2020, 3, 20))
    alerts.alerts_enqueue_resolved(violations=[cast.critical])

    first = alerts.alerts_deliver(now=T0)  # the trigger is throttled; the resolve waits
    trigger = AlertDelivery.objects.get(channel=pager, event="open")
    key = f"quantsite-violation-{cast.critical.pk}"
    server.recorder.routes["/v2/enqueue"] = _pd_answer("accepted_202", 202, key)
    second = alerts.alerts_deliver(now=T0 + timedelta(minutes=1))  # the trigger goes out
    third = alerts.alerts_deliver(now=T0 + timedelta(minutes=1))  # then the resolve

    assert (first.attempted, second.attempted, third.attempted) == (1, 1, 1)
    assert trigger.status == "failed" and trigger.last_error.startswith("HTTP 429 from")
    assert trigger.next_attempt_at == T0 + timedelta(minutes=1)  # the usual backoff
    actions = [e.json()["event_action"] for e in server.recorder.to("/v2/enqueue")]
    assert actions == ["trigger", "trigger", "resolve"]
    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_pagerduty_invalid_event_is_a_failure_with_its_reason(cast, server):
    server.recorder.routes["/v2/enqueue"] = _pd_answer("invalid_400", 400)
    pager = _pagerduty(server)
    alerts.alerts_enqueue(violations=[cast.critical])

    alerts.alerts_deliver(now=T0)

    delivery = _delivery(pager)
    assert delivery.status == "failed"
    assert delivery.last_error.startswith("HTTP 400 from 127.0.0.1: ")
    assert "Event object is invalid" in delivery.last_error
    assert PD_KEY not in delivery.last_error


def test_a_pagerduty_202_without_success_is_a_failure(cast, server):
    server.recorder.routes["/v2/enqueue"] = Route(202, b"{}", "application/json")
    pager = _pagerduty(server)
    alerts.alerts_enqueue(violations=[cast.critical])

    alerts.alerts_deliver(now=T0)

    assert _delivery(pager).last_error == ("PagerDuty answered 202 without status success: {}")


def test_the_pagerduty_routing_key_is_a_masked_secret():
    from risk.engine.channel_secrets import config_masked

    assert config_masked({"routing_key": PD_KEY}) == {"routing_key": "••••bcde"}


def test_risk_limits_yaml_takes_a_pagerduty_channel_and_refuses_one_without_a_key():
    from portfolio.engine.errors import ConfigError
    from risk.engine.limits_config import parse_risk_config

    spec = parse_risk_config(
        {"alert_settings": {"pagerduty": {"enabled": False, "routing_key": ""}}},
        source="risk_limits.yaml",
    )
    assert [(c.kind, c.enabled) for c in spec.channels] == [("pagerduty", False)]
    with pytest.raises(ConfigError) as refused:
        parse_risk_config(
            {"alert_settings": {"pagerduty": {"enabled": True}}}, source="risk_limits.yaml"
        )
    assert "alert_settings.pagerduty.routing_key" in str(refused.value)
    assert "is required for an enabled pagerduty channel" in str(refused.value)
