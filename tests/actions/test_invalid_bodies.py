"""Whatever a client sends, a bad body gets a 400 naming the field, never a 500, and records nothing."""

import pytest

from actions.models import Action
from audit.models import AuditEvent
from tests.actions.conftest import action_body

pytestmark = pytest.mark.django_db
URL = "/api/v1/actions/"


def _without(key):
    body = action_body()
    del body[key]
    return body


def _nested(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return {"a": value}


CASES = [
    ("missing external_id", _without("external_id"), "external_id"),
    ("missing action_type", _without("action_type"), "action_type"),
    ("missing subject", _without("subject"), "subject"),
    ("missing executed_at", _without("executed_at"), "executed_at"),
    ("missing approved_by", _without("approved_by"), "approved_by"),
    ("missing approved_at", _without("approved_at"), "approved_at"),
    ("null external_id", action_body(external_id=None), "external_id"),
    ("blank external_id", action_body(external_id="   "), "external_id"),
    ("number as external_id", action_body(external_id=42), "external_id"),
    ("external_id too long", action_body(external_id="x" * 256), "external_id"),
    ("null character", action_body(subject="a\x00b"), "subject"),
    ("list as subject", action_body(subject=["a"]), "subject"),
    ("object as approved_by", action_body(approved_by={"name": "alice"}), "approved_by"),
    ("unknown approver", action_body(approved_by="mallory"), "approved_by"),
    ("unknown action type", action_body(action_type="nope"), "action_type"),
    ("naive executed_at", action_body(executed_at="2026-11-28T10:00:00"), "executed_at"),
    ("date only", action_body(approved_at="2026-11-28"), "approved_at"),
    ("not a date", action_body(executed_at="yesterday"), "executed_at"),
    ("number as date", action_body(executed_at=1764324000), "executed_at"),
    ("month 13", action_body(executed_at="2026-13-01T00:00:00Z"), "executed_at"),
    ("out of range after offset", action_body(approved_at="0001-01-01T00:00:00+01:00"), "approved_at"),
    ("too late for the window", action_body(executed_at="9999-12-31T00:00:00Z"), "executed_at"),
    ("payload a list", action_body(payload=[1, 2]), "payload"),
    ("payload a string", action_body(payload="{}"), "payload"),
    ("payload null", action_body(payload=None), "payload"),
    ("null character in payload", action_body(payload={"note": "a\x00"}), "payload"),
    ("null character in payload key", action_body(payload={"a\x00": 1}), "payload"),
    ("payload nested too deep", action_body(payload=_nested(40)), "payload"),
    ("approval_context a number", action_body(approval_context=3), "approval_context"),
    ("caused_by a string", action_body(caused_by="run-1"), "caused_by"),
    ("caused_by of numbers", action_body(caused_by=[1, 2]), "caused_by"),
    ("caused_by of blanks", action_body(caused_by=[""]), "caused_by"),
    ("caused_by unknown", action_body(caused_by=["never-recorded"]), "caused_by"),
    ("caused_by too long", action_body(caused_by=[f"x{i}" for i in range(1001)]), "caused_by"),
    ("unknown field", action_body(approvedBy="alice"), "approvedBy"),
    ("huge amount", action_body(payload={"amount": 10**20}), "payload/amount"),
    ("negative amount", action_body(payload={"amount": "-5"}), "payload/amount"),
    ("no amount", action_body(payload={"currency": "EUR"}), "payload/amount"),
    ("currency against the schema", action_body(payload={"amount": "5", "currency": "euro"}), "payload/currency"),
    ("approved after executed", action_body(approved_at="2026-11-28T10:00:01Z"), "approved_at"),
    ("executed in 2030", action_body(executed_at="2030-01-01T00:00:00Z"), "executed_at"),
]


@pytest.mark.parametrize(("case", "body", "field"), CASES, ids=[case for case, _, _ in CASES])
def test_a_bad_body_gets_a_400_naming_the_field(client_for, cast, case, body, field):
    counts = (Action.objects.count(), AuditEvent.objects.count())

    response = client_for(cast.shop).post(URL, body, format="json")

    assert response.status_code == 400, (case, response.content)
    assert field in response.json(), response.json()
    assert (Action.objects.count(), AuditEvent.objects.count()) == counts


RAW_CASES = [
    ("malformed JSON", b'{"external_id": '),
    ("a JSON array", b"[1, 2, 3]"),
    ("a JSON string", b'"hello"'),
    ("a JSON number", b"42"),
    ("null", b"null"),
    ("an empty body", b""),
    ("NaN", b'{"payload": {"amount": NaN}}'),
    ("a number too large for a float", b'{"payload": {"amount": 1e400}}'),
    ("a lone surrogate", b'{"subject": "\\ud800"}'),
    ("invalid UTF-8", b'{"subject": "\xff\xfe"}'),
    ("nesting deeper than the parser allows", b'{"payload": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ("a huge integer", b'{"payload": {"n": 1' + b"0" * 5000 + b"}}"),
]


@pytest.mark.parametrize(("case", "raw"), RAW_CASES, ids=[case for case, _ in RAW_CASES])
def test_a_body_that_is_not_an_action_object_gets_a_400(client_for, cast, case, raw):
    response = client_for(cast.shop).post(URL, raw, content_type="application/json")

    assert response.status_code == 400, (case, response.content)
    assert response.json()


def test_a_form_encoded_body_is_refused_as_unsupported(client_for, cast):
    response = client_for(cast.shop).post(URL, {"external_id": "x"})

    assert response.status_code == 415


def test_a_body_over_one_mebibyte_is_refused_with_413_before_it_is_read(client_for, cast):
    body = action_body(payload={"amount": "1", "blob": "x" * (1024 * 1024)})

    response = client_for(cast.shop).post(URL, body, format="json")

    assert response.status_code == 413
    assert "at most 1,048,576 bytes" in response.json()["detail"]
    assert not Action.objects.filter(external_id=body["external_id"]).exists()


def test_a_content_length_that_is_not_a_number_is_a_400(client_for, cast):
    response = client_for(cast.shop).post(URL, b"{}", content_type="application/json", CONTENT_LENGTH="lots")

    assert response.status_code == 400
    assert response.json() == {"detail": "Content-Length is not a number."}
