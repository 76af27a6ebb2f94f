"""Every API endpoint and console page, found by walking the URL conf, refuses whoever may not see the object it
names: anonymous callers get 401 (API) or the login page (console); a signed-in person gets 403 or 404, never 200
and never 500. A new endpoint is tested here the moment it is routed; a new kind of path parameter fails until
PARAMETERS says which hidden object fills it."""

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.security.conftest import MARKER, Incident

# Reachable without signing in, on purpose.
PUBLIC = {
    "api/v1/schema/": "the OpenAPI schema describes the interface and holds no data",
}

# Which hidden object fills a path parameter, by (the path's first segment after the prefix, parameter name).
PARAMETERS = {
    ("rollbacks", "rollback_id"): "rollback",
    ("rollbacks", "pk"): "rollback",
    ("rollbacks", "step_id"): "step",
    ("actions", "pk"): "action",
    ("actions", "action_id"): "action",
    ("remediation", "task_id"): "task",
}

# Who may not see which objects (by the rules in actions/selectors.py, rollbacks/selectors.py, console/access.py).
OUTSIDERS = {
    "nobody": {"rollback", "step", "action", "task"},
    "carl": {"rollback", "step", "task"},  # customer service: the incident is not theirs
    "other_shop": {"action"},  # another integrator's action
}


# `<int:pk>` in a path() route, `(?P<pk>[^/.]+)` in a router's regex.
PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


@dataclass(frozen=True)
class Route:
    path: str  # as routed, e.g. "api/v1/^rollbacks/(?P<pk>[^/.]+)/$"
    methods: tuple[str, ...]  # those the view serves; console pages are probed for GET and POST

    @property
    def api(self) -> bool:
        return self.path.startswith("api/v1/")

    @property
    def parameters(self) -> list[str]:
        return [converter or regex for converter, regex in PARAMETER.findall(self.path)]

    def resource(self) -> str:
        prefix = "api/v1/" if self.api else "console/"
        return self.path[len(prefix) :].lstrip("^").split("/")[0]

    def url(self, ids: dict[str, int]) -> str:
        def fill(match: re.Match) -> str:
            return str(ids[match.group(1) or match.group(2)])

        path = PARAMETER.sub(fill, self.path)
        return "/" + path.replace("^", "").replace("$", "")


def _walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            found.append((prefix + str(pattern.pattern), pattern.callback))
    return found


def _methods(callback: Any) -> tuple[str, ...]:
    if getattr(callback, "actions", None):  # a DRF viewset route
        return tuple(method.upper() for method in callback.actions)
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is not None:
        return tuple(
            m.upper() for m in view_class.http_method_names if m not in {"options", "head"} and hasattr(view_class, m)
        )
    return ("GET", "POST")


ROUTES = [
    Route(path, _methods(callback))
    for path, callback in _walk(get_resolver().url_patterns)
    if path.startswith(("api/v1/", "console/")) and "(?P<format>" not in path
]


def test_the_walk_finds_the_api_and_the_console():
    paths = {route.path for route in ROUTES}
    assert "console/rollbacks/<int:rollback_id>/" in paths
    assert "api/v1/rollbacks/<int:pk>/steps/<int:step_id>/resolve/" in paths
    assert any(route.api and route.resource() == "actions" and route.parameters for route in ROUTES)
    assert set(PUBLIC) <= paths


def _ids(route: Route, incident: Incident) -> dict[str, int]:
    objects = {
        "rollback": incident.rollback.pk,
        "step": incident.step.pk,
        "action": incident.action.pk,
        "task": incident.task.pk,
    }
    ids = {}
    for name in route.parameters:
        kind = PARAMETERS.get((route.resource(), name))
        assert kind, f"{route.path}: which hidden object fills <{name}>? Add it to PARAMETERS."
        ids[name] = objects[kind]
    return ids


def _kinds(route: Route) -> set[str]:
    return {PARAMETERS.get((route.resource(), name), "unknown") for name in route.parameters}


def _call(client: Any, method: str, url: str, api: bool) -> Any:
    if api:
        return getattr(client, method.lower())(url, {}, format="json") if method != "GET" else client.get(url)
    return getattr(client, method.lower())(url)


def _client(user: Any, api: bool) -> Any:
    if api:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("route", [r for r in ROUTES if r.path not in PUBLIC], ids=lambda route: route.path)
def test_an_anonymous_caller_is_refused(route, incident):
    url = route.url(_ids(route, incident))
    served = []
    for method in route.methods:
        response = _call(_client(None, route.api), method, url, route.api)
        if response.status_code == 405 and not route.api:
            continue  # a console page refuses the method before anything else: nothing served
        served.append(method)
        if route.api:
            assert response.status_code == 401, f"{method} {url}: {response.status_code}"
        else:
            assert response.status_code == 302, f"{method} {url}: {response.status_code}"
            assert response["Location"].startswith(settings.LOGIN_URL), f"{method} {url}: {response['Location']}"
    assert served, f"{route.path} answers no method"


OUTSIDER_CASES = [
    (route, username)
    for route in ROUTES
    for username, hidden in OUTSIDERS.items()
    if route.path not in PUBLIC and route.parameters and _kinds(route) <= hidden
]


@pytest.mark.parametrize(
    ("route", "username"), OUTSIDER_CASES, ids=[f"{username}:{route.path}" for route, username in OUTSIDER_CASES]
)
def test_a_person_who_may_not_see_the_object_gets_403_or_404(route, username, cast, incident):
    url = route.url(_ids(route, incident))
    client = _client(getattr(cast, username), route.api)
    for method in route.methods:
        response = _call(client, method, url, route.api)
        if response.status_code == 405 and not route.api:
            continue
        assert response.status_code in (403, 404), f"{username} {method} {url}: {response.status_code}"
        assert MARKER not in response.content.decode(), f"{username} {method} {url} shows the incident"


def test_every_object_route_is_tried_by_someone_who_may_not_see_its_object():
    tried = {route.path for route, _ in OUTSIDER_CASES}
    assert {route.path for route in ROUTES if route.parameters and route.path not in PUBLIC} == tried


# Pages that add up every rollback by design (the contract's Metrics: reasons by trigger); what an outsider can
# read there is counts and the most frequent reasons, not an object. Listed in docs/security.md.
AGGREGATES = {"api/v1/metrics/", "console/metrics/"}

# Fixed on another branch (the trail shows no more than the objects do); strict, so merging it fails this mark:
# remove the mark then.
LIST_CASES = [
    pytest.param(
        route,
        username,
        id=f"{username}:{route.path}",
    )
    for route in ROUTES
    for username in OUTSIDERS
    if route.path not in PUBLIC and route.path not in AGGREGATES and not route.parameters and "GET" in route.methods
]


@pytest.mark.parametrize(("route", "username"), LIST_CASES)
def test_a_page_or_list_shows_an_outsider_nothing_of_the_hidden_incident(route, username, cast, incident):
    url = route.url({})
    response = _call(_client(getattr(cast, username), route.api), "GET", url, route.api)
    assert response.status_code < 500
    assert MARKER not in response.content.decode(), f"{username} GET {url} shows the incident"


# Routed outside the API and the console, each with who may call it; a new top-level route fails the walk below
# until it is listed here and its refusal tested (tests/test_operations.py holds the operations' own tests).
OUTSIDE = {
    "": "a redirect to /console/",
    "admin/": "Django's admin (staff only, its own login)",
    "accounts/": "the login pages",
    "demo-shop/": "the demo integrator's signed receivers (tests/demo_shop)",
    "healthz": "anyone: says only that the process serves",
    "readyz": "anyone: names the parts that failed, never why",
    "metrics": "only with `Authorization: Bearer <METRICS_TOKEN>`; 404 otherwise",
}


def test_every_route_outside_the_api_and_the_console_is_listed_with_who_may_call_it():
    tops = {
        path.split("/")[0] + ("/" if "/" in path else "")
        for path, _ in _walk(get_resolver().url_patterns)
        if not path.startswith(("api/v1/", "console/"))
    }
    assert tops == set(OUTSIDE)


@pytest.mark.parametrize("username", [None, *OUTSIDERS, "audrey"])
def test_metrics_refuse_everyone_without_the_token(username, cast, settings):
    settings.METRICS_TOKEN = "the-scraper-token-" + "x" * 30
    client = Client()
    if username:
        client.force_login(getattr(cast, username))
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_probes_reveal_no_object(path, incident):
    response = Client().get(path)
    assert response.status_code in {200, 503}
    assert MARKER not in response.content.decode()
