"""schemathesis over the API's own schema, with a staff token, against the demo: for every
operation a bounded number of generated requests, valid and invalid (negative data), and
every answer must be no 5xx and conform to the schema (status code documented, body
matching its response schema, content type).

The schema is fetched through the WSGI application as a client would (``/api/schema/``
with the token), and the calls go through the same application in this thread, so they
see the demo this test's transaction holds. Left out: the calls that would end the run
or leave it (revoking tokens, including the one in use; the password exchange, which is
throttled per address; Update now, which runs a whole update per call and has its own
tests in operations/tests/test_update_now.py).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import schemathesis
import schemathesis.checks
from django.conf import settings
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
EXAMPLES = 12  # per operation and mode
SKIPPED = {
    ("DELETE", "/api/tokens/{token_key}/"),
    ("POST", "/api/tokens/login/"),
    ("POST", "/api/update/"),
}


@pytest.fixture
def demo(db):
    from operations.config import portfolio_configure
    from operations.update import run_update
    from portfolio.services.config import allocation_spec_read
    from risk.services import risk_spec_read

    config = Path(settings.BASE_DIR) / "config"
    portfolio_configure(
        spec=allocation_spec_read(config / "strategy_allocation.yaml"),
        risk=risk_spec_read(config / "risk_limits.yaml"),
        source="fuzz",
    )
    run_update(as_of=date(1990, 6, 29), load_prices=False)


@pytest.fixture
def staff_token(django_user_model):
    from operations.tokens import api_token_create

    user = django_user_model.objects.create_user("fuzz", password="x-not-used-1", is_staff=True)
    return api_token_create(user=user).token


@pytest.fixture
def connection_kept():
    """Keep the test's database connection across the WSGI calls, as Django's test client
    does: the handler's request signals would close it (on PostgreSQL, inside the test's
    transaction, that loses the demo; SQLite's in-memory connection ignores the close)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_every_operation_answers_within_its_schema(demo, staff_token, connection_kept):
    # identity: schemathesis's WSGI transport does not undo gzip as an HTTP client does
    # (the site gzips for a client that accepts it, quantsite.compression)
    auth = {"Authorization": f"Token {staff_token}", "Accept-Encoding": "identity"}
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application(), headers=auth
    )
    checked, failures = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            run = _fuzzer(operation.as_strategy(generation_mode=mode), auth, _excluded(operation))
            try:
                run()
            except Unsatisfiable:
                continue  # nothing to make invalid (no parameters, no body)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all reported below
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
            checked += 1
    assert checked > 30, checked  # every read and command of the API was exercised
    assert not failures, "\n\n".join(failures)


def _fuzzer(strategy, auth: dict, excluded: list):
    """One operation's bounded, reproducible hypothesis run (derandomized, no example
    database): every generated case is called and validated."""

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        case.call_and_validate(headers=auth, excluded_checks=excluded)

    return run


def _excluded(operation) -> list:
    """Checks that do not apply: a command may refuse a well-formed body on the rules
    (an unknown strategy, an allocation sum, an order no longer awaiting a review: a
    documented 400 or 409), and /api/status/ answers 503, documented, while the scheduler
    is not running, which is the point of it."""
    out = []
    if operation.method.upper() == "POST":
        out.append(schemathesis.checks.positive_data_acceptance)
    if operation.path == "/api/status/":
        out.append(schemathesis.checks.not_a_server_error)
    return out
