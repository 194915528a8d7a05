"""Project-wide fixtures: the test database holds the bundled real prices (loaded once
per session, through the same validated path as production), and a logged-in client."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from portfolio.feeds import BundledProvider
    from portfolio.services.prices import prices_load

    with django_db_blocker.unblock():
        prices_load(provider=BundledProvider(), strict=True)


@pytest.fixture
def user(db, django_user_model):
    return django_user_model.objects.create_user("quant", password="not-a-real-password-1")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client
