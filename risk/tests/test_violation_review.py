"""Post-violation review: an operator acknowledges a violation with a note and links the
configuration changes that answer it (the portfolio's own, made at or after it opened, by
an operator), on the risk page, through the API and in the admin; the violation log shows
reviewed or unreviewed and filters the unreviewed. A second review amends the first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from portfolio.engine.errors import ConfigError
from portfolio.models import ConfigChange, Portfolio
from portfolio.services.controls import Origin
from risk.models import RiskLimit, Violation
from risk.services import violation_review

pytestmark = pytest.mark.django_db
OPENED = datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
PAGE = Origin(actor="quant", source="page")


@dataclass
class Cast:
    portfolio: Portfolio
    violation: Violation
    other: Violation  # a second, unreviewed violation of the same portfolio
    before: ConfigChange  # made an hour before the violation opened
    answer: ConfigChange  # the threshold raised an hour after
    pause: ConfigChange  # the risk manager's own pause, after
    elsewhere: ConfigChange  # another portfolio's change, after


def _change(portfolio, at: datetime, *, source="page", field="threshold", before=0.1, after=0.12):
    row = ConfigChange.objects.create(
        portfolio=portfolio,
        actor="risk manager" if source == "risk" else "quant",
        source=source,
        object_type="RiskLimit",
        object_repr="max_weight_per_ticker",
        field=field,
        before=before,
        after=after,
    )
    ConfigChange.objects.filter(pk=row.pk).update(at=at)  # auto_now_add: set it after
    row.refresh_from_db()
    return row


def _violation(portfolio, limit, day: date) -> Violation:
    v = Violation.objects.create(
        portfolio=portfolio,
        limit=limit,
        severity="low",
        date=day,
        value=0.1234,
        threshold=0.10,
        action_taken="alert_only",
    )
    Violation.objects.filter(pk=v.pk).update(opened_at=OPENED)
    v.refresh_from_db()
    return v


@pytest.fixture
def cast(db) -> Cast:
    portfolio = Portfolio.objects.create(name="Review test", initial_capital=Decimal("1000000"))
    other_portfolio = Portfolio.objects.create(name="Other", initial_capital=Decimal("1000000"))
    limit = RiskLimit.objects.create(
        portfolio=portfolio,
        name="max_weight_per_ticker",
        scope="position",
        metric="ticker_weight",
        direction="max",
        threshold=0.10,
        severity="low",
        action="alert_only",
    )
    hour = timedelta(hours=1)
    return Cast(
        portfolio=portfolio,
        violation=_violation(portfolio, limit, date(2024, 1, 2)),
        other=_violation(portfolio, limit, date(2024, 1, 1)),
        before=_change(portfolio, OPENED - hour),
        answer=_change(portfolio, OPENED + hour),
        pause=_change(portfolio, OPENED + hour, source="risk", field="status"),
        elsewhere=_change(other_portfolio, OPENED + hour),
    )


@pytest.fixture
def staff(logged_in, user):
    user.is_staff = True
    user.is_superuser = True  # the admin needs model permissions too
    user.save()
    return logged_in


# --- the service ---------------------------------------------------------------------------


def test_a_review_acknowledges_with_the_note_and_links_the_answering_change(cast):
    first = violation_review(
        violation=cast.violation, note=" raised the cap ", change_ids=[cast.answer.pk], origin=PAGE
    )

    v = Violation.objects.get(pk=cast.violation.pk)
    assert first is True
    assert (v.acknowledged_by, v.acknowledged_note, v.reviewed) == ("quant", "raised the cap", True)
    assert list(v.review_changes.all()) == [cast.answer]


@pytest.mark.parametrize(
    ("which", "rule"),
    [
        ("before", "was made before the violation opened"),
        ("elsewhere", "belongs to another portfolio"),
        ("pause", "is the risk manager's, not an operator's"),
    ],
)
def test_a_review_refuses_a_change_that_cannot_answer_the_violation(cast, which, rule):
    bad = getattr(cast, which)
    with pytest.raises(ConfigError) as refused:
        violation_review(
            violation=cast.violation, note="n", change_ids=[cast.answer.pk, bad.pk], origin=PAGE
        )
    assert (refused.value.where, refused.value.rule) == (
        "changes",
        f"config change {bad.pk} {rule}",
    )
    v = Violation.objects.get(pk=cast.violation.pk)
    assert v.acknowledged_at is None and not v.review_changes.exists()  # nothing changed


def test_a_review_refuses_an_unknown_change_id_and_an_empty_note(cast):
    with pytest.raises(ConfigError) as unknown:
        violation_review(violation=cast.violation, note="n", change_ids=[999_999], origin=PAGE)
    with pytest.raises(ConfigError) as no_note:
        violation_review(violation=cast.violation, note="  ", change_ids=[], origin=PAGE)
    assert (unknown.value.where, unknown.value.rule) == (
        "changes",
        "config change 999999 does not exist",
    )
    assert (no_note.value.where, no_note.value.rule) == ("note", "a review needs a note")


def test_a_second_review_amends_the_note_the_reviewer_and_the_linked_set(cast):
    violation_review(violation=cast.violation, note="first look", change_ids=[], origin=PAGE)
    later = Origin(actor="risk officer", source="api")

    first = violation_review(
        violation=cast.violation, note="cap raised", change_ids=[cast.answer.pk], origin=later
    )
    emptied = violation_review(
        violation=cast.violation, note="cap raised, reverted", change_ids=[], origin=later
    )

    v = Violation.objects.get(pk=cast.violation.pk)
    assert (first, emptied) == (False, False)
    assert (v.acknowledged_by, v.acknowledged_note) == ("risk officer", "cap raised, reverted")
    assert not v.review_changes.exists()


def test_a_review_records_no_audit_row_as_an_acknowledgement_records_none(cast):
    count = ConfigChange.objects.count()
    violation_review(violation=cast.violation, note="n", change_ids=[cast.answer.pk], origin=PAGE)
    assert ConfigChange.objects.count() == count


# --- the risk page -------------------------------------------------------------------------


def _review_post(client, cast, **data):
    body = {"next": "risk", "violation": cast.violation.pk, **data}
    return client.post(f"/config/{cast.portfolio.pk}/review/", body)


def test_the_risk_page_reviews_a_violation_and_shows_who_when_the_note_and_the_count(staff, cast):
    html = staff.get(f"/risk/?portfolio={cast.portfolio.pk}").content.decode()
    form = html.split(f'id="review-{cast.violation.pk}"')[1].split("</td>")[0]
    # the form offers the operator's change after the violation opened, nothing else
    assert f'name="change" value="{cast.answer.pk}"' in form
    for other in (cast.before, cast.pause, cast.elsewhere):
        assert f'name="change" value="{other.pk}"' not in form
    assert "RiskLimit max_weight_per_ticker.threshold: 0.1 → 0.12 (quant, page," in form

    response = _review_post(staff, cast, note="raised the cap", change=[cast.answer.pk])

    assert response.status_code == 302
    assert response["Location"] == f"/risk/?portfolio={cast.portfolio.pk}#violations"
    page = staff.get(response["Location"]).content.decode()
    v = Violation.objects.get(pk=cast.violation.pk)
    when = v.acknowledged_at.strftime("%Y-%m-%d %H:%M")
    assert f"reviewed by quant at {when}: raised the cap; 1 change linked" in page
    assert f"violation {v.pk} reviewed: 1 change linked" in page


def test_the_violation_log_filters_the_unreviewed(staff, cast):
    violation_review(violation=cast.violation, note="seen", change_ids=[], origin=PAGE)

    unreviewed = staff.get(f"/risk/?portfolio={cast.portfolio.pk}&review=unreviewed")
    reviewed = staff.get(f"/risk/?portfolio={cast.portfolio.pk}&review=reviewed")

    assert [v.pk for v in unreviewed.context["violations"]] == [cast.other.pk]
    assert [v.pk for v in reviewed.context["violations"]] == [cast.violation.pk]
    assert "unreviewed" in unreviewed.content.decode()


def test_a_refused_review_on_the_page_names_the_field_and_changes_nothing(staff, cast):
    response = _review_post(staff, cast, note="n", change=[cast.before.pk])
    page = staff.get(response["Location"]).content.decode()
    assert "Refused, nothing changed: changes: config change" in page
    assert Violation.objects.get(pk=cast.violation.pk).acknowledged_at is None


def test_a_plain_user_sees_no_review_form_and_gets_403(logged_in, cast):
    html = logged_in.get(f"/risk/?portfolio={cast.portfolio.pk}").content.decode()
    assert "Save review" not in html and "unreviewed" in html
    assert _review_post(logged_in, cast, note="n").status_code == 403
    assert Violation.objects.get(pk=cast.violation.pk).acknowledged_at is None


def test_a_review_needs_the_csrf_token(staff, user, cast):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert _review_post(strict, cast, note="n").status_code == 403
    html = strict.get(f"/risk/?portfolio={cast.portfolio.pk}").content.decode()
    assert "csrfmiddlewaretoken" in html and "Save review" in html
    assert Violation.objects.get(pk=cast.violation.pk).acknowledged_at is None


# --- the REST API --------------------------------------------------------------------------


def _api(client, cast, body):
    url = f"/api/violations/{cast.violation.pk}/review/"
    return client.post(url, body, content_type="application/json")


def test_the_api_reviews_a_violation_and_lists_the_review_with_it(staff, cast):
    done = _api(staff, cast, {"note": "raised the cap", "changes": [cast.answer.pk]})
    again = _api(staff, cast, {"note": "raised the cap", "changes": [cast.answer.pk]})
    listed = staff.get(f"/api/violations/?portfolio={cast.portfolio.pk}&reviewed=true").json()

    assert done.status_code == 200 and done.json()["changed"] is True
    assert again.json()["changed"] is False  # amended
    (row,) = listed["results"]
    review = row["review"]
    assert (row["id"], review["reviewed"], review["by"], review["note"]) == (
        cast.violation.pk,
        True,
        "quant",
        "raised the cap",
    )
    (change,) = review["changes"]
    assert (change["id"], change["field"], change["before"], change["after"]) == (
        cast.answer.pk,
        "threshold",
        0.1,
        0.12,
    )
    unreviewed = staff.get(f"/api/violations/?portfolio={cast.portfolio.pk}&reviewed=false")
    assert [r["id"] for r in unreviewed.json()["results"]] == [cast.other.pk]
    assert unreviewed.json()["results"][0]["review"]["changes"] == []


@pytest.mark.parametrize("which", ["before", "elsewhere", "pause"])
def test_the_api_refuses_a_change_that_cannot_answer_it_naming_the_field(staff, cast, which):
    bad = getattr(cast, which).pk
    response = _api(staff, cast, {"note": "n", "changes": [bad]})
    assert response.status_code == 400
    (message,) = response.json()["changes"]
    assert message.startswith(f"config change {bad} ")
    assert Violation.objects.get(pk=cast.violation.pk).acknowledged_at is None


def test_the_api_refuses_an_unknown_or_malformed_change_id(staff, cast):
    unknown = _api(staff, cast, {"note": "n", "changes": [999_999]})
    malformed = _api(staff, cast, {"note": "n", "changes": ["abc"]})
    assert unknown.json() == {"changes": ["config change 999999 does not exist"]}
    assert malformed.status_code == 400 and "changes" in malformed.json()


def test_the_api_review_is_refused_to_anonymous_and_plain_users(client, logged_in, cast):
    assert _api(client, cast, {"note": "n"}).status_code in (401, 403)
    assert _api(logged_in, cast, {"note": "n"}).status_code == 403
    assert Violation.objects.get(pk=cast.violation.pk).acknowledged_at is None


# --- the admin -----------------------------------------------------------------------------


def test_the_admin_lists_the_review_and_filters_the_unreviewed(staff, cast):
    violation_review(violation=cast.violation, note="cap", change_ids=[cast.answer.pk], origin=PAGE)

    listing = staff.get("/admin/risk/violation/").content.decode()
    unreviewed = staff.get("/admin/risk/violation/?reviewed=no").content.decode()
    detail = staff.get(f"/admin/risk/violation/{cast.violation.pk}/change/").content.decode()

    assert "reviewed by quant at" in listing and ": cap; 1 change linked" in listing
    assert "reviewed by quant" not in unreviewed and "unreviewed" in unreviewed
    assert f"#{cast.answer.pk} RiskLimit max_weight_per_ticker.threshold: 0.1 -&gt; 0.12" in detail
