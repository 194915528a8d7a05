"""SMTP outages (issue 15, point 5): a mail server that refuses the connection or
accepts it and never answers is a failed delivery with the reason, retried with backoff,
and sent once the server answers. Webhook outages (refused, 500, hanging) are in
test_alerts.py (test_a_webhook_that_is_down..., ..._answering_500..., a_slow_webhook...)."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from datetime import timedelta

import pytest

from risk import alerts
from risk.models import AlertChannel, AlertDelivery
from risk.tests import test_alerts
from risk.tests.test_alerts import T0, _closed_port

cast = test_alerts.cast  # the shared cast of violations (a fixture)


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP to take one message: greet, 250 everything, DATA up to '.'."""

    def handle(self):
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line.strip().upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                body = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    body.append(chunk)
                self.server.messages.append(b"".join(body))
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            elif verb.startswith(b"EHLO"):
                self.wfile.write(b"250 test\r\n")
            else:
                self.wfile.write(b"250 ok\r\n")


class SmtpServer:
    def __init__(self, port: int = 0):
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", port), _Smtp)
        self.server.daemon_threads = True
        self.server.messages = []
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smtp_backend(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def _mail_channel(port: int, timeout: float = 1.0) -> AlertChannel:
    return AlertChannel.objects.create(
        name="ops mail",
        kind="email",
        config={
            "recipients": ["ops@example.com"],
            "smtp_server": f"127.0.0.1:{port}",
            "timeout": timeout,
        },
    )


def test_an_smtp_server_that_refuses_fails_the_delivery_and_it_is_sent_when_it_is_back(
    cast, smtp_backend
):
    port = _closed_port()
    channel = _mail_channel(port)
    alerts.alerts_enqueue(violations=[cast.critical])

    first = alerts.alerts_deliver(now=T0)

    failed = AlertDelivery.objects.get(channel=channel)
    assert first == alerts.DeliveryReport(attempted=1, sent=0, failed=1)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.last_error.startswith("ConnectionRefusedError: ")
    assert failed.next_attempt_at == T0 + timedelta(minutes=1)
    assert alerts.alerts_deliver(now=T0 + timedelta(seconds=30)).attempted == 0  # backing off

    server = SmtpServer(port)
    try:
        later = alerts.alerts_deliver(now=T0 + timedelta(minutes=1))
    finally:
        server.stop()
    sent = AlertDelivery.objects.get(channel=channel)
    assert later == alerts.DeliveryReport(attempted=1, sent=1, failed=0)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, "")
    (message,) = server.server.messages
    assert b"max_drawdown breached" in message


def test_an_smtp_server_that_never_answers_times_out_and_backs_off(cast, smtp_backend):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # accepts (the kernel does) and never greets
    channel = _mail_channel(silent.getsockname()[1], timeout=0.5)
    alerts.alerts_enqueue(violations=[cast.critical])
    try:
        started = time.monotonic()
        alerts.alerts_deliver(now=T0)
        alerts.alerts_deliver(now=T0 + timedelta(minutes=1))
        elapsed = time.monotonic() - started
    finally:
        silent.close()

    delivery = AlertDelivery.objects.get(channel=channel)
    assert elapsed < 3  # two attempts, each bounded by the channel's 0.5 s timeout
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert "timed out" in delivery.last_error
    assert delivery.next_attempt_at == T0 + timedelta(minutes=3)  # 1 min, then 2 more
