"""A large export from the dashboard in real headless Chromium: the overview's "all tables
(Excel)" link answers the page saying the export is large, whose "Prepare the file" button
(a POST with the CSRF token, as a real browser sends it) starts the job and lands on its
page. Nothing is queued before the click."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from reporting.tests.test_browser import (  # noqa: F401  (a fixture, used by name)
    CHROMIUM,
    CHROMIUM_ARGS,
    prices_restored,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


def in_thread(query):
    """``query()`` in a thread of its own, its connection closed after: Playwright's sync
    API runs an event loop in the test's thread, where Django refuses the ORM."""

    def run():
        try:
            return query()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def test_the_dashboard_link_to_a_large_export_starts_its_job_in_two_clicks(
    prices_restored,  # noqa: F811
    transactional_db,
    live_server,
    settings,
    tmp_path,
    django_user_model,
    client,
):
    from playwright.sync_api import sync_playwright

    from reporting.models import ExportJob
    from reporting.tests.test_exports import make_portfolio

    settings.DATA_DIR = tmp_path
    settings.QUANTSITE_EXPORT_DIRECT_ROWS = 10
    portfolio = make_portfolio()
    client.force_login(django_user_model.objects.create_user("viewer", password="x-pass-1"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context()
        cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value}
        context.add_cookies([{**cookie, "url": live_server.url}])
        page = context.new_page()
        page.goto(live_server.url + "/", wait_until="load")
        page.get_by_role("link", name="all tables (Excel)").click()
        page.wait_for_selector("#export-start")
        assert re.search(r"This export is large \(\d+ rows\)", page.inner_text("#export-large"))
        assert in_thread(ExportJob.objects.count) == 0  # the link (a GET) queued nothing
        page.get_by_role("button", name="Prepare the file").click()
        page.wait_for_selector("#export-job")
        job = in_thread(ExportJob.objects.get)
        assert page.url == f"{live_server.url}/export/jobs/{job.pk}/"
        assert (job.table, job.fmt, job.portfolio_id) == ("all", "xlsx", portfolio.pk)
        browser.close()
