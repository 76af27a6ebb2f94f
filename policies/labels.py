"""The one place that turns the product's identifiers into the words people read.

States, outcomes, triggers, roles, audiences and communication templates are stored as identifiers
(`reviewer_error`, `customer_service`, `rollback_incident`); the console (the `label` template filter) and the
messages we send (email subjects and bodies) show them through `label`, so a name reads the same everywhere.
"""

# Names whose words are not just the identifier's: abbreviations and templates named after a trigger.
SPECIAL: dict[str, str] = {
    "sms": "SMS",
    "api": "API",
    "url": "URL",
}


def label(identifier: object) -> str:
    """`reviewer_error` -> "Reviewer error", `rollback_incident` -> "Rollback incident"; empty stays empty."""
    text = "" if identifier is None else str(identifier)
    if not text:
        return ""
    words = [SPECIAL.get(word, word) for word in text.replace("-", "_").split("_") if word]
    if not words:
        return text
    first = words[0]
    return " ".join([first if first.isupper() else first[:1].upper() + first[1:], *words[1:]])
