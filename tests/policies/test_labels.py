"""Identifiers become the words people read in one place (policies.labels), used by the console and the emails."""

import pytest

from policies.labels import label


@pytest.mark.parametrize(
    ("identifier", "words"),
    [
        ("reviewer_error", "Reviewer error"),
        ("customer_service", "Customer service"),
        ("not_reversible", "Not reversible"),
        ("rollback_incident", "Rollback incident"),
        ("sms", "SMS"),
        ("executive", "Executive"),
        ("", ""),
        (None, ""),
    ],
)
def test_an_identifier_reads_as_words(identifier, words):
    assert label(identifier) == words
