"""The console's batch decision (console:batch_decide): ticked requests of one trigger approved or rejected with
one comment; the page says which were signed and which refused and why, and bad input is a clear 400."""

import pytest
from django.urls import reverse

from rollbacks.models import Rollback, RollbackState, SignOff
from rollbacks.services import request_rollback, sign_off

from .conftest import csrf_token, record, snapshot

pytestmark = pytest.mark.django_db
URL = reverse("console:batch_decide")


def reviewer_errors(cast, count):
    return [
        request_rollback(
            requester=cast.bob, trigger="reviewer_error", reason=f"wrong refund {n}", actions=[record(cast.shop).pk]
        )
        for n in range(count)
    ]


def post(client, data):
    token = csrf_token(client, reverse("console:rollbacks"))  # every signed-in page has one; not all have a queue
    return client.post(URL, {**data, "csrfmiddlewaretoken": token})


def test_the_queue_puts_each_request_in_the_batch_form_with_its_trigger(cast, browser_for):
    (rollback,) = reviewer_errors(cast, 1)
    html = browser_for(cast.vera).get(reverse("console:queue")).content.decode()
    assert f'<form id="batch-decision" method="post" action="{URL}">' in html
    assert f'data-inbox-row data-href="{reverse("console:rollback", args=[rollback.pk])}"' in html
    assert f'name="rollback" value="{rollback.pk}" data-trigger="reviewer_error"' in html
    assert 'name="decision" value="approve"' in html and 'name="decision" value="reject"' in html
    assert "console/shortcuts.js" in html and 'id="shortcuts"' in html


def test_a_verifier_approves_several_and_the_page_says_which_were_refused_and_why(
    cast, browser_for, no_workers, django_capture_on_commit_callbacks
):
    first, taken, third = reviewer_errors(cast, 3)
    sign_off(taken.pk, signer=cast.victor, decision="approve")  # a colleague signed it meanwhile
    client = browser_for(cast.vera)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client, {"rollback": [first.pk, taken.pk, third.pk], "decision": "approve", "comment": "checked the orders"}
        )
    assert response.status_code == 200
    html = response.content.decode()
    assert "You approved 2 of 3 reviewer error requests; 1 refused." in html
    refused = html.split('data-testid="batch-refused"')[1].split("</table>")[0]
    assert f"#{taken.pk}" in refused and "it takes sign-offs only while pending_authorization" in refused
    signed = html.split('data-testid="batch-signed"')[1].split("</table>")[0]
    assert f"#{first.pk}" in signed and f"#{third.pk}" in signed
    assert sorted(no_workers) == sorted([first.pk, third.pk])  # each queued after its own commit
    assert set(SignOff.objects.filter(signer=cast.vera).values_list("comment", flat=True)) == {"checked the orders"}


def test_a_person_who_may_not_sign_gets_the_refusals_not_an_error(cast, browser_for):
    filed = reviewer_errors(cast, 2)
    response = post(browser_for(cast.audrey), {"rollback": [r.pk for r in filed], "decision": "approve"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("Only verifier sign off this rollback.") == 2
    assert "You approved 0 of 2" in html
    assert not SignOff.objects.exists()


def test_a_person_without_a_role_is_refused_the_page(cast, browser_for):
    (rollback,) = reviewer_errors(cast, 1)
    client = browser_for(cast.nobody)
    before = snapshot()
    response = client.post(URL, {"rollback": [rollback.pk], "decision": "approve"})
    assert response.status_code == 403  # CSRF first: no token, no entry
    token = csrf_token(client, "/accounts/login/")
    response = client.post(URL, {"rollback": [rollback.pk], "decision": "approve", "csrfmiddlewaretoken": token})
    assert response.status_code == 403
    assert snapshot()[1:] == before[1:]  # only the refusal's audit event


def test_anonymous_callers_are_sent_to_sign_in_and_get_is_not_served(cast, browser_for):
    assert browser_for(None).get(URL).status_code == 405
    response = browser_for(None).post(URL, {"rollback": ["1"], "decision": "approve"})
    assert response.status_code in (302, 403)  # the CSRF check or the sign-in page, never a decision


def test_a_post_without_the_csrf_token_is_refused(cast, browser_for):
    (rollback,) = reviewer_errors(cast, 1)
    response = browser_for(cast.vera).post(URL, {"rollback": [rollback.pk], "decision": "approve"})
    assert response.status_code == 403
    assert not SignOff.objects.exists()


def test_requests_of_different_triggers_are_a_clear_error_and_nothing_is_signed(cast, browser_for):
    (reviewer_error,) = reviewer_errors(cast, 1)
    incident = request_rollback(
        requester=cast.ines, trigger="incident", reason="outage", actions=[record(cast.shop, "wire.transfer").pk]
    )
    response = post(browser_for(cast.audrey), {"rollback": [reviewer_error.pk, incident.pk], "decision": "approve"})
    assert response.status_code == 400
    assert "A batch decision covers requests of one trigger; these are incident and reviewer_error." in (
        response.content.decode()
    )
    assert not SignOff.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"decision": "approve"}, "Select at least one request."),
        ({"rollback": ["12abc"], "decision": "approve"}, "“12abc” is not a rollback number."),
        ({"rollback": ["-3"], "decision": "approve"}, "“-3” is not a rollback number."),
        ({"rollback": [str(2**64)], "decision": "approve"}, "is not a rollback number."),
        ({"rollback": ["1"], "decision": "maybe"}, "Select a valid choice. maybe is not one of the available choices."),
        ({"rollback": ["1"]}, "Choose Approve or Reject."),
        ({"rollback": ["1"], "decision": "approve", "comment": "x" * 10_001}, "at most 10000 characters"),
        ({"rollback": ["999999"], "decision": "approve"}, "No rollback you may see has the number #999999"),
    ],
)
def test_bad_input_is_a_clear_400(cast, browser_for, data, message):
    reviewer_errors(cast, 1)
    before = snapshot()
    response = post(browser_for(cast.vera), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "Nothing was signed." in response.content.decode()
    assert snapshot() == before


def test_a_rollback_the_signer_may_not_see_is_named_like_one_that_does_not_exist(cast, browser_for):
    incident = request_rollback(
        requester=cast.ines, trigger="incident", reason="SECRET outage", actions=[record(cast.shop, "wire.transfer").pk]
    )
    response = post(browser_for(cast.carl), {"rollback": [incident.pk], "decision": "approve"})
    assert response.status_code == 400
    html = response.content.decode()
    assert f"No rollback you may see has the number #{incident.pk}" in html and "SECRET" not in html
    assert Rollback.objects.get(pk=incident.pk).state == RollbackState.PENDING_AUTHORIZATION
