"""What the views do but do not each document, added to the OpenAPI schema: the error answers every operation
can give (the contract's "Errors" paragraph), so clients and schemathesis know a 404 or a 400 is a real answer;
and that a list's filter given empty (`?subject=`, as a search form sends it) is no filter."""

from typing import Any

ERROR = {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}
PAGING = {"limit", "offset"}
DESCRIPTIONS = {
    "400": "Bad input: the body names each field and its problem.",
    "401": "No credentials, or a bad or expired token.",
    "403": "Signed in, but not allowed to do this.",
    "404": "No such object, or one the caller may not see.",
    "409": "The object's state forbids this now, or a conflicting replay.",
    "429": "Throttled: the caller's rate (per token, person or address) is spent; `detail` says when to retry.",
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            codes = ["400", "401", "403", "429"]
            if "{" in path:
                codes.append("404")
            if method == "post":
                codes.append("409")
            if method == "get":
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "query" and parameter["name"] not in PAGING:
                        parameter["allowEmptyValue"] = True
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, {"description": DESCRIPTIONS[code], "content": ERROR})
    return result
