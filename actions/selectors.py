"""Permission-aware reads of actions.

Integrators see only the actions they recorded; every other role reads all of them (reviewers decide on them,
auditors read everything); a signed-in user without a role sees none.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q, QuerySet, prefetch_related_objects
from django.http import Http404
from django.utils import timezone
from django_filters.fields import IsoDateTimeField

from actions.cascade import LoopArrival, walk_cascade
from actions.models import Action, ActionLink, ActionState
from policies.manifest import ActionTypePolicy, Manifest, SignoffRequirement
from policies.roles import INTEGRATOR, ROLES, user_roles
from policies.selectors import current_policy
from rollback_console.errors import Invalid

READ_ALL_ROLES = frozenset(ROLES) - {INTEGRATOR}


def is_integrator(user: Any) -> bool:
    return INTEGRATOR in user_roles(user)


def may_read_actions(user: Any) -> bool:
    return bool(user_roles(user) & (READ_ALL_ROLES | {INTEGRATOR}))


def actions_visible_to(user: Any) -> QuerySet[Action]:
    roles = user_roles(user)
    if roles & READ_ALL_ROLES:
        return Action.objects.all()
    if INTEGRATOR in roles:
        return Action.objects.filter(integrator_id=user.pk)
    return Action.objects.none()


def _caused_by() -> Prefetch[str, QuerySet[ActionLink], str]:
    return Prefetch(
        "upstream_links",
        queryset=ActionLink.objects.select_related("upstream")
        .only("id", "upstream_id", "downstream_id", "upstream__external_id")
        .order_by("id"),
    )


def with_links(actions: QuerySet[Action]) -> QuerySet[Action]:
    """What the API shows of each action: its approver and the external ids it was caused by."""
    return actions.select_related("approved_by", "integrator").prefetch_related(_caused_by())


def load_caused_by(actions: list[Action]) -> None:
    """Reads the external ids each of `actions` was caused by (what `caused_by_of` lists) in one query; for
    actions already read for their caller (a replayed recording)."""
    prefetch_related_objects(actions, _caused_by())


def with_details(actions: QuerySet[Action]) -> QuerySet[Action]:
    """Adds the actions it caused. The rollbacks that include it are rollbacks' to read
    (rollbacks.selectors.rollbacks_of_action): actions knows nothing of rollbacks, in imports or in queries."""
    return with_links(actions).prefetch_related(
        Prefetch(
            "downstream_links",
            queryset=ActionLink.objects.select_related("downstream")
            .only("id", "upstream_id", "downstream_id", "downstream__external_id")
            .order_by("id"),
        ),
    )


def search_actions(user: Any, *, starting_with: str = "", state: str = "") -> QuerySet[Action]:
    """The actions `user` may see whose external id or subject starts with `starting_with` (all when empty), in
    `state` when given; newest executed first, with their approvers (the console's action search)."""
    actions = actions_visible_to(user).select_related("approved_by")
    if starting_with:
        actions = actions.filter(Q(external_id__startswith=starting_with) | Q(subject__startswith=starting_with))
    if state:
        actions = actions.filter(state=state)
    return actions.order_by("-executed_at", "-id")


def get_action_for(user: Any, action_id: Any, *, details: bool = False) -> Action:
    """The action if `user` may see it; Http404 otherwise (another integrator's action is not theirs to know)."""
    try:
        pk = int(action_id)
    except (TypeError, ValueError):
        raise Http404("No such action.") from None
    if not 0 < pk < 2**63:  # beyond any id, and beyond what SQLite can even compare
        raise Http404("No such action.")
    actions = actions_visible_to(user).filter(pk=pk)
    action = (with_details(actions) if details else with_links(actions)).first()
    if action is None:
        raise Http404("No such action.")
    return action


def caused_by_of(action: Action) -> list[str]:
    return [link.upstream.external_id for link in action.upstream_links.all()]


def causes_of(action: Action) -> list[str]:
    return [link.downstream.external_id for link in action.downstream_links.all()]


def links_of(action: Action) -> tuple[list[Action], list[Action]]:
    """The actions `action` was caused by and those it caused, each in link order; for whoever may see `action`
    (they are not narrowed further: every console role reads all actions)."""
    upstream = ActionLink.objects.filter(downstream=action).select_related("upstream").order_by("id")
    downstream = ActionLink.objects.filter(upstream=action).select_related("downstream").order_by("id")
    return [link.upstream for link in upstream], [link.downstream for link in downstream]


# django-filter ships no type information: its classes are Any to mypy, so subclassing them needs the ignores.
class UTCDateTimeField(IsoDateTimeField):  # type: ignore[misc]
    """An ISO 8601 time, converted to UTC here: PostgreSQL refuses offsets beyond 15:59 that Python accepts."""

    def to_python(self, value: Any) -> datetime | None:
        moment: datetime | None = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("This time is out of range.", code="invalid") from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):  # type: ignore[misc]
    field_class = UTCDateTimeField


class ActionFilter(django_filters.FilterSet):  # type: ignore[misc]
    """The contract's action filters: the API's list and a rollback's `selector` use the same ones."""

    action_type = django_filters.CharFilter()
    subject = django_filters.CharFilter()
    external_id = django_filters.CharFilter()
    state = django_filters.ChoiceFilter(choices=ActionState.choices)
    policy_version = django_filters.NumberFilter(
        field_name="policy_version_id", help_text="A policy version id.", min_value=1, max_value=2**63 - 1
    )
    approved_by = django_filters.CharFilter(field_name="approved_by__username", help_text="The approver's username.")
    integrator = django_filters.CharFilter(field_name="integrator__username", help_text="The integrator's username.")
    executed_after = UTCDateTimeFilter(
        field_name="executed_at", lookup_expr="gte", help_text="Executed at or after this time (ISO 8601)."
    )
    executed_before = UTCDateTimeFilter(
        field_name="executed_at", lookup_expr="lt", help_text="Executed before this time (ISO 8601)."
    )

    class Meta:
        model = Action
        fields = [
            "action_type",
            "subject",
            "external_id",
            "state",
            "policy_version",
            "approved_by",
            "integrator",
            "executed_after",
            "executed_before",
        ]


def select_actions(user: Any, filters: Mapping[str, Any]) -> QuerySet[Action]:
    """The actions `user` may see that match the contract's filters; Invalid (field errors) for a bad value or
    an unknown filter name. Used by a rollback's `selector`."""
    unknown = sorted(set(filters) - set(ActionFilter.base_filters))
    if unknown:
        raise Invalid({name: ["Unknown filter."] for name in unknown})
    values = {key: "" if value is None else str(value) for key, value in filters.items()}
    filterset = ActionFilter(values, queryset=actions_visible_to(user))
    if not filterset.is_valid():
        raise Invalid({key: list(messages) for key, messages in filterset.errors.items()})
    matching: QuerySet[Action] = filterset.qs
    return matching


@dataclass(frozen=True)
class CascadeEntry:
    action: Action
    depth: int
    via: int | None
    window_open: bool


@dataclass(frozen=True)
class ReversalPreview:
    """What a reviewer sees before deciding: the window, what an expired one adds, and what the cascade reaches."""

    action: Action
    window_open: bool
    window_ends_at: datetime | None
    extra_signoffs: tuple[SignoffRequirement, ...]
    cascade: tuple[CascadeEntry, ...]
    loops: tuple[LoopArrival, ...]  # arrivals back on the path: a rollback would stop each and ask a person
    policy_version: int


def preview_reversal(user: Any, action: Action, *, now: datetime | None = None) -> ReversalPreview:
    """The reversal of `action` as the current policy would plan it (the cascade to the graph's end, downstream
    actions the user may not see left out). Reads only: nothing is requested."""
    now = now or timezone.now()
    version_id, manifest = current_policy()
    walk = walk_cascade([action.pk], manifest)
    downstream = {node.action_id: node for node in walk.downstream}
    visible = {a.pk: a for a in actions_visible_to(user).filter(pk__in=list(downstream)).select_related("approved_by")}
    cascade = tuple(
        CascadeEntry(action=visible[pk], depth=node.depth, via=node.via, window_open=_window_open(visible[pk], now))
        for pk, node in downstream.items()
        if pk in visible
    )
    window_open = _window_open(action, now)
    # A rollback covers the cascade too, so a passed window anywhere in it asks for the extra sign-offs.
    expired = not window_open or not all(entry.window_open for entry in cascade)
    return ReversalPreview(
        action=action,
        window_open=window_open,
        window_ends_at=action.window_ends_at,
        extra_signoffs=manifest.window_expired_signoffs if expired else (),
        cascade=cascade,
        loops=tuple(walk.loops),
        policy_version=version_id,
    )


def _window_open(action: Action, now: datetime) -> bool:
    return action.window_ends_at is None or now <= action.window_ends_at


def action_types(manifest: Manifest | None = None) -> list[ActionTypePolicy]:
    """The current policy's action types, by name (the stored manifest does not keep the file's order)."""
    manifest = manifest if manifest is not None else current_policy()[1]
    return sorted(manifest.action_types.values(), key=lambda policy: policy.name)
