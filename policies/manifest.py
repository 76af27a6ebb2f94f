"""Parsing and validating the TOML policy manifest (the contract's "The policy manifest").

`parse_manifest` either returns a Manifest or raises ManifestError listing every error by key path: a policy
owner fixes a file once, not once per error.
"""

import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from policies.methods import METHODS
from policies.roles import AUDIENCES, ROLES, TRIGGERS

DEFAULT_MAX_CASCADE_DEPTH = 3
# Signers of a pending request are warned this long before its earliest reversal window closes, unless the
# trigger says otherwise (the contract's "People are told").
DEFAULT_WARN_BEFORE_WINDOW = timedelta(hours=24)
# Bounds that keep a manifest's numbers inside what the columns and Python hold: a rollback's depths and a
# sign-off count are small integer columns (and confirm-cascade accepts depths up to 1,000), and a duration
# past datetime's range would overflow when added to a time.
MAX_CASCADE_DEPTH = 1000
MAX_SIGNOFF_COUNT = 100
MAX_DURATION = timedelta(days=3660)
# Bounds of an integrator's call limits (the contract's "Execution at real latency"): more calls in flight than a
# worker has threads, or a pause longer than a day, is a typing error rather than a plan.
MAX_IN_FLIGHT = 1024
MAX_TRIP_AFTER = 10_000
MIN_COOL_DOWN = timedelta(seconds=1)
MAX_COOL_DOWN = timedelta(days=1)
MAX_NESTING = 64
REVERSIBILITY_CLASSES = ("full", "partial", "irreversible")
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ManifestError(Exception):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True)
class SignoffRequirement:
    role: str
    count: int


@dataclass(frozen=True)
class Compensation:
    notify: str
    template: str


@dataclass(frozen=True)
class ActionTypePolicy:
    name: str
    reversibility: str
    method: str | None
    reversal: Mapping[str, Any]
    window: timedelta | None
    window_text: str | None
    prerequisites: tuple[str, ...]
    side_effects: tuple[str, ...]
    compensations: tuple[Compensation, ...]
    cascades_to: tuple[str, ...]
    amount_field: str | None
    # Compiled once per parsed manifest, and manifests are parsed once per policy version: intake only runs it.
    payload_validator: Draft202012Validator | None = field(default=None, compare=False, repr=False)
    # The same schema compiled by fastjsonschema when it means the same in draft 7: raises on a payload it does
    # not accept, and intake then asks payload_validator for the errors. None: jsonschema alone.
    payload_fast_check: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def operation(self) -> str:
        return str(self.reversal.get("operation", ""))


@dataclass(frozen=True)
class TriggerPolicy:
    name: str
    signoffs: tuple[SignoffRequirement, ...]
    requested_by: tuple[str, ...]
    max_cascade_depth: int
    notify: tuple[str, ...]
    reference_required: bool
    # Announcements: a still-pending item is announced once more after `remind_after` (None: never); signers
    # of a pending request are warned once `warn_before_window` before its earliest window closes.
    remind_after: timedelta | None = None
    warn_before_window: timedelta = DEFAULT_WARN_BEFORE_WINDOW


@dataclass(frozen=True)
class Manifest:
    version: str
    integrators: Mapping[str, Mapping[str, Any]]
    communications: Mapping[str, tuple[str, ...]]
    action_types: Mapping[str, ActionTypePolicy]
    triggers: Mapping[str, TriggerPolicy]
    window_expired_signoffs: tuple[SignoffRequirement, ...]
    # [people] chat_webhook_env: the environment variable holding the chat's incoming-webhook URL (None: no chat).
    chat_webhook_env: str | None = None

    def action_type(self, name: str) -> ActionTypePolicy | None:
        return self.action_types.get(name)


def parse_duration(text: str, *, limit: timedelta = MAX_DURATION) -> timedelta:
    """A duration such as "30d"; ValueError if malformed or longer than `limit` (about ten years by default)."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 60s, 15m, 12h or 30d")
    digits = match.group(1)
    # Compare before building the timedelta, which overflows past 999,999,999 days.
    if len(digits) > 12 or int(digits) * _UNIT_SECONDS[match.group(2)] > limit.total_seconds():
        raise ValueError(f"{text!r} is longer than the most allowed, {limit.days} days")
    return timedelta(**{_UNITS[match.group(2)]: int(digits)})


def _key(name: str) -> str:
    return f'"{name}"' if not re.fullmatch(r"[A-Za-z0-9_-]+", name) else name


class _Checker:
    """Collects errors by key path while walking the raw TOML tables."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def unknown(self, path: str, table: Mapping[str, Any], allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                self.error(f"{path}.{_key(key)}" if path else _key(key), "unknown key")

    def table(self, path: str, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.error(path, "must be a table")
            return {}
        return value

    def strings(self, path: str, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.error(path, "must be a list of non-empty strings")
            return ()
        return tuple(value)

    def signoffs(self, path: str, value: Any, *, required: bool) -> tuple[SignoffRequirement, ...]:
        if value is None or value == []:
            if required:
                self.error(path, "at least one sign-off is required")
            return ()
        if not isinstance(value, list):
            self.error(path, "must be a list of { role, count } tables")
            return ()
        result = []
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if not isinstance(item, dict):
                self.error(item_path, "must be a { role, count } table")
                continue
            self.unknown(item_path, item, {"role", "count"})
            role, count = item.get("role"), item.get("count", 1)
            if role not in ROLES or role in ("integrator", "auditor"):
                self.error(f"{item_path}.role", f"{role!r} is not a signing role")
                continue
            if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_SIGNOFF_COUNT:
                self.error(f"{item_path}.count", f"must be a whole number from 1 to {MAX_SIGNOFF_COUNT}")
                continue
            result.append(SignoffRequirement(role=role, count=count))
        return tuple(result)


def parse_manifest(text: str) -> tuple[Manifest, dict[str, Any]]:
    """The validated manifest and the raw TOML document it came from."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError([f"(file): not valid TOML: {exc}"]) from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ManifestError([f"(file): arrays or tables nested deeper than {MAX_NESTING} levels"]) from None
    if _nesting_exceeds(raw):
        # The stored copy (JSON) and its content hash are written by encoders with recursion limits of their own.
        raise ManifestError([f"(file): arrays or tables nested deeper than {MAX_NESTING} levels"])
    return build_manifest(raw), raw


def _nesting_exceeds(document: Any) -> bool:
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > MAX_NESTING:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _payload_validator(check: _Checker, path: str, schema: Any) -> Draft202012Validator | None:
    """A JSON Schema (draft 2020-12) for the action type's payloads, compiled; errors go to `check` by key path."""
    if schema is None:
        return None
    if not isinstance(schema, dict):
        check.error(path, "must be an inline table holding a JSON Schema (draft 2020-12)")
        return None
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        check.error(path + _toml_path(exc.absolute_path), f"not a valid JSON Schema: {exc.message}")
        return None
    # Intake never fetches anything: a schema is self-contained, and every reference in it must resolve now,
    # not fail on the first payload that reaches it.
    resolver = Registry().resolver_with_root(DRAFT202012.create_resource(schema))
    for where, ref in _references(schema, ()):
        if not ref.startswith("#"):
            check.error(path + _toml_path(where), f"{ref!r}: only references within the schema (#...) are allowed")
            continue
        try:
            resolver.lookup(ref)
        except Unresolvable:
            check.error(path + _toml_path(where), f"{ref!r} does not resolve within the schema")
    return Draft202012Validator(schema)


# Keywords that mean the same in draft 7 (fastjsonschema) as in draft 2020-12, by what their value holds.
_SUBSCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs"})
_SUBSCHEMAS = frozenset({"items", "additionalProperties", "not", "propertyNames", "contains"})
_SUBSCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf"})
_PLAIN = frozenset(
    {
        "type",
        "required",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "$schema",
    }
)
_ANNOTATIONS = frozenset({"title", "description", "$comment"})


def _fast_check(schema: Any) -> Callable[[Any], Any] | None:
    """fastjsonschema's compiled check, only for a schema built from keywords whose draft 7 meaning is the
    2020-12 one (so it never accepts what jsonschema refuses); None otherwise. Call it on a valid schema."""
    if not isinstance(schema, dict) or not _draft7_alike(schema):
        return None
    try:
        return fastjsonschema.compile(schema)
    except (fastjsonschema.JsonSchemaDefinitionException, re.error, RecursionError):
        return None


def _draft7_alike(schema: Any) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict):
        return False
    ref = schema.get("$ref")
    if ref is not None:
        # Draft 7 ignores a $ref's siblings; 2020-12 applies them. Only a bare pointer reads the same in both.
        return isinstance(ref, str) and ref.startswith("#/") and set(schema) <= {"$ref", *_ANNOTATIONS}
    for key, value in schema.items():
        if key in _SUBSCHEMA_MAPS:
            alike = isinstance(value, dict) and all(_draft7_alike(child) for child in value.values())
        elif key in _SUBSCHEMAS:
            alike = _draft7_alike(value)
        elif key in _SUBSCHEMA_LISTS:
            alike = isinstance(value, list) and all(_draft7_alike(child) for child in value)
        elif key == "enum":
            # Python compares True == 1: keep enums of strings (and null) only, which compare alike in both.
            alike = isinstance(value, list) and all(item is None or isinstance(item, str) for item in value)
        else:
            alike = key in _PLAIN
        if not alike:
            return False
    return True


def _references(value: Any, where: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key in ("$ref", "$dynamicRef") and isinstance(child, str):
                yield (*where, key), child
            else:
                yield from _references(child, (*where, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _references(child, (*where, index))


def _toml_path(parts: Any) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{_key(str(part))}" for part in parts)


def build_manifest(raw: Mapping[str, Any]) -> Manifest:
    check = _Checker()
    check.unknown(
        "",
        raw,
        {"version", "integrators", "communications", "action_types", "triggers", "window_expired", "people"},
    )
    version = raw.get("version")
    if not isinstance(version, str) or not version:
        check.error("version", "a non-empty string label is required")
    integrators = _read_integrators(check, raw)
    communications = _read_communications(check, raw)
    action_types = _read_action_types(check, raw)
    triggers = _read_triggers(check, raw)
    window_expired_raw = check.table("window_expired", raw.get("window_expired", {}))
    check.unknown("window_expired", window_expired_raw, {"extra_signoffs"})
    window_expired_signoffs = check.signoffs(
        "window_expired.extra_signoffs", window_expired_raw.get("extra_signoffs"), required=False
    )
    chat_webhook_env = _read_people(check, raw)
    if check.errors:
        raise ManifestError(check.errors)
    return Manifest(
        version=str(version),
        integrators=integrators,
        communications=communications,
        action_types=action_types,
        triggers=triggers,
        window_expired_signoffs=window_expired_signoffs,
        chat_webhook_env=chat_webhook_env,
    )


def _read_people(check: _Checker, raw: Mapping[str, Any]) -> str | None:
    people = check.table("people", raw.get("people", {}))
    check.unknown("people", people, {"chat_webhook_env"})
    name = people.get("chat_webhook_env")
    if name is None:
        return None
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
        check.error("people.chat_webhook_env", "must be the name of an environment variable, such as CHAT_WEBHOOK_URL")
        return None
    return name


def _read_integrators(check: _Checker, raw: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    integrators: dict[str, Mapping[str, Any]] = {}
    for key, value in check.table("integrators", raw.get("integrators", {})).items():
        path = f"integrators.{_key(key)}"
        table = check.table(path, value)
        check.unknown(
            path,
            table,
            {"reversal_url", "notify_url", "events_url", "secret_env", "max_in_flight", "trip_after", "cool_down"},
        )
        for url_key in ("reversal_url", "notify_url", "events_url"):
            url = table.get(url_key)
            if url is not None and (not isinstance(url, str) or not re.match(r"^https?://", url)):
                check.error(f"{path}.{url_key}", "must be an http(s) URL")
        if not isinstance(table.get("secret_env"), str) or not table.get("secret_env"):
            check.error(f"{path}.secret_env", "the name of the environment variable holding the secret is required")
        for count_key, most in (("max_in_flight", MAX_IN_FLIGHT), ("trip_after", MAX_TRIP_AFTER)):
            count = table.get(count_key)
            if count is not None and (isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= most):
                check.error(f"{path}.{count_key}", f"must be a whole number from 1 to {most}")
        cool_down = table.get("cool_down")
        if cool_down is not None:
            try:
                if not isinstance(cool_down, str) or parse_duration(cool_down, limit=MAX_COOL_DOWN) < MIN_COOL_DOWN:
                    raise ValueError(f"{cool_down!r} is not a duration of at least 1s such as 60s or 5m")
            except ValueError as exc:
                check.error(f"{path}.cool_down", str(exc))
        integrators[key] = dict(table)
    return integrators


def _read_communications(check: _Checker, raw: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    communications_raw = check.table("communications", raw.get("communications", {}))
    check.unknown("communications", communications_raw, {"internal", "regulator"})
    return {
        audience: check.strings(f"communications.{audience}", communications_raw.get(audience))
        for audience in ("internal", "regulator")
    }


def _read_action_types(check: _Checker, raw: Mapping[str, Any]) -> dict[str, ActionTypePolicy]:
    action_types: dict[str, ActionTypePolicy] = {}
    for name, value in check.table("action_types", raw.get("action_types", {})).items():
        action_types[name] = _read_action_type(check, raw, name, value)
    # Only once every type is read can a cascade name be checked against them all.
    for name, policy in action_types.items():
        for index, target in enumerate(policy.cascades_to):
            if target not in action_types:
                check.error(
                    f"action_types.{_key(name)}.cascades_to[{index}]", f"{target!r} is not a declared action type"
                )
    return action_types


def _read_action_type(check: _Checker, raw: Mapping[str, Any], name: str, value: Any) -> ActionTypePolicy:
    path = f"action_types.{_key(name)}"
    table = check.table(path, value)
    check.unknown(
        path,
        table,
        {
            "reversibility",
            "reversal",
            "window",
            "prerequisites",
            "side_effects",
            "compensations",
            "cascades_to",
            "amount_field",
            "payload_schema",
        },
    )
    reversibility = table.get("reversibility")
    if reversibility not in REVERSIBILITY_CLASSES:
        check.error(f"{path}.reversibility", f"must be one of {', '.join(REVERSIBILITY_CLASSES)}")
    method, reversal = _read_reversal(check, raw, path, reversibility, table.get("reversal"))
    window_text = table.get("window")
    window = _read_window(check, path, window_text)
    compensations = _read_compensations(check, path, table.get("compensations", []) or [])
    amount_field = table.get("amount_field")
    if amount_field is not None and not isinstance(amount_field, str):
        check.error(f"{path}.amount_field", "must be a payload field name")
        amount_field = None
    validator = _payload_validator(check, f"{path}.payload_schema", table.get("payload_schema"))
    return ActionTypePolicy(
        name=name,
        reversibility=str(reversibility),
        method=method,
        reversal=dict(reversal),
        window=window,
        window_text=window_text if window is not None else None,
        prerequisites=check.strings(f"{path}.prerequisites", table.get("prerequisites")),
        side_effects=check.strings(f"{path}.side_effects", table.get("side_effects")),
        compensations=tuple(compensations),
        cascades_to=check.strings(f"{path}.cascades_to", table.get("cascades_to")),
        amount_field=amount_field,
        payload_validator=validator,
        payload_fast_check=_fast_check(table.get("payload_schema")) if validator is not None else None,
    )


def _read_reversal(
    check: _Checker, raw: Mapping[str, Any], path: str, reversibility: Any, reversal: Any
) -> tuple[str | None, Mapping[str, Any]]:
    """The reversal method and its table; an invalid one is reported and read as none."""
    if reversal is None:
        if reversibility != "irreversible":
            check.error(f"{path}.reversal", "a { method = ... } table is required unless irreversible")
        return None, {}
    if not isinstance(reversal, dict):
        check.error(f"{path}.reversal", 'must be a table such as { method = "webhook", ... }')
        return None, {}
    method = reversal.get("method")
    if method not in METHODS:
        check.error(
            f"{path}.reversal.method",
            f"unknown method {method!r} (expected one of {', '.join(sorted(METHODS))})",
        )
        return None, reversal
    for sub, message in METHODS[method].validate(reversal, raw):
        check.error(f"{path}.reversal.{sub}", message)
    return method, reversal


def _read_window(check: _Checker, path: str, window_text: Any) -> timedelta | None:
    return _read_duration(check, f"{path}.window", window_text)


def _read_duration(check: _Checker, path: str, text: Any) -> timedelta | None:
    """An optional duration at `path`; a malformed or too long one is reported and read as none."""
    if text is None:
        return None
    try:
        duration = parse_duration(text) if isinstance(text, str) else None
        if duration is None:
            raise ValueError('must be a string such as "30d"')
    except ValueError as exc:
        check.error(path, str(exc))
        return None
    return duration


def _read_compensations(check: _Checker, path: str, items: Any) -> list[Compensation]:
    compensations = []
    for index, item in enumerate(items):
        item_path = f"{path}.compensations[{index}]"
        if not isinstance(item, dict):
            check.error(item_path, "must be a { notify, template } table")
            continue
        check.unknown(item_path, item, {"notify", "template"})
        if item.get("notify") not in ("customer", "internal"):
            check.error(f"{item_path}.notify", 'must be "customer" or "internal"')
        elif not isinstance(item.get("template"), str) or not item.get("template"):
            check.error(f"{item_path}.template", "a template name is required")
        else:
            compensations.append(Compensation(notify=item["notify"], template=item["template"]))
    return compensations


def _read_triggers(check: _Checker, raw: Mapping[str, Any]) -> dict[str, TriggerPolicy]:
    triggers: dict[str, TriggerPolicy] = {}
    for name, value in check.table("triggers", raw.get("triggers", {})).items():
        path = f"triggers.{_key(name)}"
        if name not in TRIGGERS:
            check.error(path, f"unknown trigger (expected one of {', '.join(TRIGGERS)})")
            continue
        triggers[name] = _read_trigger(check, path, name, value)
    return triggers


def _read_trigger(check: _Checker, path: str, name: str, value: Any) -> TriggerPolicy:
    table = check.table(path, value)
    check.unknown(
        path,
        table,
        {
            "signoffs",
            "requested_by",
            "max_cascade_depth",
            "notify",
            "reference_required",
            "remind_after",
            "warn_before_window",
        },
    )
    requested_by = check.strings(f"{path}.requested_by", table.get("requested_by"))
    for index, role in enumerate(requested_by):
        if role not in ROLES:
            check.error(f"{path}.requested_by[{index}]", f"{role!r} is not a role")
    if not requested_by:
        check.error(f"{path}.requested_by", "at least one role must be allowed to request it")
    depth = table.get("max_cascade_depth", DEFAULT_MAX_CASCADE_DEPTH)
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= MAX_CASCADE_DEPTH:
        check.error(f"{path}.max_cascade_depth", f"must be a whole number from 0 to {MAX_CASCADE_DEPTH}")
        depth = DEFAULT_MAX_CASCADE_DEPTH
    notify = check.strings(f"{path}.notify", table.get("notify"))
    for index, audience in enumerate(notify):
        if audience not in AUDIENCES:
            check.error(f"{path}.notify[{index}]", f"must be one of {', '.join(AUDIENCES)}")
    reference_required = table.get("reference_required", False)
    if not isinstance(reference_required, bool):
        check.error(f"{path}.reference_required", "must be true or false")
        reference_required = False
    return TriggerPolicy(
        name=name,
        signoffs=check.signoffs(f"{path}.signoffs", table.get("signoffs"), required=True),
        requested_by=requested_by,
        max_cascade_depth=depth,
        notify=notify,
        reference_required=reference_required,
        remind_after=_read_duration(check, f"{path}.remind_after", table.get("remind_after")),
        warn_before_window=_read_duration(check, f"{path}.warn_before_window", table.get("warn_before_window"))
        or DEFAULT_WARN_BEFORE_WINDOW,
    )
