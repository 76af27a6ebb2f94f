"""Who may open which console page, and what a refusal says."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent

from .conftest import record

PAGES = [
    "console:queue",
    "console:rollbacks",
    "console:inbox-counts",
    "console:actions",
    "console:bulk",
    "console:remediation",
    "console:metrics",
]


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES)
def test_an_anonymous_visitor_is_sent_to_the_login_page(browser_for, page):
    response = browser_for(None).get(reverse(page))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES)
def test_someone_without_a_role_is_refused_with_the_reason(cast, browser_for, page):
    response = browser_for(cast.nobody).get(reverse(page))
    assert response.status_code == 403
    assert b"You hold no role in Rollback Console" in response.content
    assert AuditEvent.objects.filter(kind="auth.forbidden", actor="nobody").exists()


@pytest.mark.django_db
def test_an_integrator_account_is_told_to_use_the_api(cast, browser_for):
    response = browser_for(cast.shop).get(reverse("console:queue"))
    assert response.status_code == 403
    assert b"service accounts" in response.content


@pytest.mark.django_db
def test_a_reviewer_cannot_open_metrics_or_remediation(cast, browser_for):
    client = browser_for(cast.alice)
    for page in ("console:metrics", "console:remediation"):
        response = client.get(reverse(page))
        assert response.status_code == 403
        assert b"sign off rollbacks" in response.content


@pytest.mark.django_db
def test_an_auditor_cannot_file_a_bulk_rollback(cast, browser_for):
    response = browser_for(cast.audrey).get(reverse("console:bulk"))
    assert response.status_code == 403
    assert b"do not file rollbacks" in response.content


@pytest.mark.django_db
def test_the_header_names_the_person_and_their_roles_and_only_their_pages(cast, browser_for):
    response = browser_for(cast.lex).get(reverse("console:queue"))
    html = response.content.decode()
    assert 'data-testid="signed-in-as">lex<' in html
    assert ">Executive<" in html and ">Legal<" in html
    assert reverse("console:metrics") in html
    reviewer_html = browser_for(cast.alice).get(reverse("console:rollbacks")).content.decode()
    assert reverse("console:metrics") not in reviewer_html
    assert reverse("console:actions") in reviewer_html
    verifier_html = browser_for(cast.vera).get(reverse("console:queue")).content.decode()
    assert reverse("console:bulk") not in verifier_html  # verifiers sign; they file nothing


@pytest.mark.django_db
def test_signing_in_with_the_login_form_leads_to_the_queue(cast, browser_for):
    from tests.conftest import PASSWORD

    client = browser_for(None)
    client.get("/accounts/login/")
    token = client.cookies["csrftoken"].value
    response = client.post("/accounts/login/", {"username": "vera", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == "/console/"
    assert client.get("/console/").status_code == 200


@pytest.mark.django_db
def test_a_wrong_password_is_refused_on_the_form(cast, browser_for):
    client = browser_for(None)
    client.get("/accounts/login/")
    token = client.cookies["csrftoken"].value
    response = client.post("/accounts/login/", {"username": "vera", "password": "nope", "csrfmiddlewaretoken": token})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


@pytest.mark.django_db
def test_signing_out_takes_a_post(cast, browser_for):
    client = browser_for(cast.vera)
    assert client.get("/accounts/logout/").status_code == 405
    client.get(reverse("console:queue"))
    token = client.cookies["csrftoken"].value
    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert browser_for(None).get(reverse("console:queue")).status_code == 302


@pytest.mark.django_db
def test_an_action_or_rollback_that_does_not_exist_is_a_404(cast, browser_for):
    client = browser_for(cast.vera)
    assert client.get(reverse("console:action", args=[999999])).status_code == 404
    assert client.get(reverse("console:rollback", args=[999999])).status_code == 404


@pytest.mark.django_db
def test_a_rollback_the_person_may_not_see_is_a_404(cast, browser_for):
    action = record(cast.shop)
    from rollbacks.services import request_rollback

    rollback = request_rollback(requester=cast.carl, trigger="customer_request", reason="asked", actions=[action.pk])
    assert browser_for(cast.vera).get(reverse("console:rollback", args=[rollback.pk])).status_code == 404


@pytest.mark.django_db
def test_opening_every_page_changes_nothing(cast, browser_for, reviewer_error):
    from .conftest import snapshot

    action_id = reviewer_error.plan["action_ids"][0]
    urls = [
        reverse("console:queue"),
        reverse("console:rollbacks"),
        reverse("console:inbox-counts"),
        reverse("console:actions"),
        reverse("console:action", args=[action_id]),
        reverse("console:bulk"),
        reverse("console:rollback", args=[reviewer_error.pk]),
        reverse("console:rollback-progress", args=[reviewer_error.pk]),
        reverse("console:remediation"),
        reverse("console:metrics"),
    ]
    client = browser_for(cast.lena)  # legal: signs, files, reads metrics and remediation
    client.get(urls[0])
    before = snapshot()
    for url in urls:
        assert client.get(url).status_code in (200, 404), url  # lena does not see a reviewer_error: 404
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["console:bulk", "console:remediation-done"])
def test_other_posts_without_the_csrf_token_are_refused(cast, browser_for, name):
    from .conftest import snapshot

    args = [1] if name == "console:remediation-done" else []
    before = snapshot()
    response = browser_for(cast.ines).post(
        reverse(name, args=args), {"trigger": "incident", "reason": "x", "action_type": "refund.issue", "note": "x"}
    )
    assert response.status_code == 403
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "page",
    [
        "console:queue",
        "console:rollbacks",
        "console:inbox-counts",
        "console:actions",
        "console:bulk",
        "console:metrics",
    ],
)
def test_pages_answer_other_methods_with_405(cast, page):
    from django.test import Client

    client = Client()  # no CSRF check, so the method itself is what is refused
    client.force_login(cast.lena)
    assert client.put(reverse(page)).status_code == 405
    assert client.delete(reverse(page)).status_code == 405
