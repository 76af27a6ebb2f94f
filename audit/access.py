"""Access to the product, audited.

Refused calls (`auth.failed`: no or a bad token; `access.locked_out`: a login refused while locked out) are counted
per client address and minute in `AccessFailureTally` and written as one event per address and minute, with the
count, once that minute is over. Counting is one upsert (`INSERT ... ON CONFLICT DO UPDATE SET count = count + 1`)
that the database makes atomic, so any number of gunicorn processes and threads count into the same row; writing
takes the rows of closed minutes under `FOR UPDATE SKIP LOCKED`, appends their events and deletes them in one
transaction, so each row becomes exactly one event whoever flushes (the next refused call after the minute, or
beat every minute). A minute is flushed only once the next one is over too, so a call that read the clock just
before a minute ended still lands in its row before the row is written.

The signals at the end audit who holds which role or permission, users created, deactivated or made staff or
superuser, password changes and failed logins.
"""

from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.models import Group, Permission, User
from django.contrib.auth.signals import user_login_failed
from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_init, post_save
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from audit.models import AccessFailureTally
from audit.services import SYSTEM, EventSpec, actor_name, record_events

GRACE_MINUTES = 1
FLUSH_BATCH = 1000

_TABLE = AccessFailureTally._meta.db_table
_COUNT = (
    f"INSERT INTO {_TABLE} (kind, address, minute, count, method, path, reason) VALUES (%s, %s, %s, 1, %s, %s, %s) "
    f"ON CONFLICT (kind, address, minute) DO UPDATE SET count = {_TABLE}.count + 1"
)


def client_address(request: Any) -> str:
    """The address a refusal is counted under: DRF's rule (REMOTE_ADDR, or with `NUM_PROXIES` set the address the
    last trusted proxy saw), the same one its throttles use. Never a raw X-Forwarded-For that any client writes:
    a flood could then give every call an address of its own."""
    return str(BaseThrottle().get_ident(request) or "unknown")[:64]


def login_address(request: Any) -> str | None:
    """The same address for django-axes (AXES_CLIENT_IP_CALLABLE), whose columns take an IP address or nothing: a
    request made without one (a test client's force_login, a shell) has none."""
    return BaseThrottle().get_ident(request) or None


def _minute(now: datetime | None) -> int:
    return int((now or timezone.now()).timestamp() // 60)


def count_access_failure(kind: str, request: Any, reason: str, *, now: datetime | None = None) -> None:
    """Count one refused call of `kind` from the request's address in the current minute; write the closed minutes'
    counts if there are any (one indexed look-up when there are none)."""
    minute = _minute(now)
    with connection.cursor() as cursor:
        cursor.execute(
            _COUNT,
            [kind, client_address(request), minute, str(request.method)[:16], str(request.path)[:200], reason[:200]],
        )
    if AccessFailureTally.objects.filter(minute__lt=minute - GRACE_MINUTES).exists():
        flush_access_failures(now=now)


def flush_access_failures(*, now: datetime | None = None) -> int:
    """Write one event per counted kind, address and closed minute, with the count, and forget the counts; how many
    events were written. Safe to run from several processes at once: each row is taken by one of them."""
    cutoff = _minute(now) - GRACE_MINUTES
    written = 0
    while True:
        with transaction.atomic():
            tallies = list(
                AccessFailureTally.objects.select_for_update(skip_locked=True)
                .filter(minute__lt=cutoff)
                .order_by("minute", "id")[:FLUSH_BATCH]
            )
            if not tallies:
                return written
            record_events([_event(tally) for tally in tallies])
            AccessFailureTally.objects.filter(pk__in=[tally.pk for tally in tallies]).delete()
        written += len(tallies)


def _event(tally: AccessFailureTally) -> EventSpec:
    return EventSpec(
        tally.kind,
        actor="anonymous",
        data={
            "address": tally.address,
            "minute": datetime.fromtimestamp(tally.minute * 60, tz=UTC).isoformat(),
            "count": tally.count,
            "method": tally.method,
            "path": tally.path,
            "reason": tally.reason,
        },
    )


# Who is changing access: the signed-in person of the request being served (AccessActorMiddleware), else "system"
# (a shell, a migration, a command). Read when the change happens, so a login inside the request counts.
_request: ContextVar[Any] = ContextVar("audit_access_request", default=None)


class AccessActorMiddleware:
    """Lets the access signals name who made a change in the admin (or any page) as the event's actor."""

    def __init__(self, get_response: Callable[[Any], Any]):
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def _actor() -> str:
    request = _request.get()
    user = getattr(request, "user", None) if request is not None else None
    return actor_name(user) if user is not None and user.is_authenticated else SYSTEM


def _record(kind: str, data: dict[str, Any], *, actor: str | None = None) -> None:
    """In the transaction of the change when there is one (group and permission changes always run in one); a
    user's save outside any gets its own, right after it."""
    spec = [EventSpec(kind, actor=actor or _actor(), data=data)]
    if connection.in_atomic_block:
        record_events(spec)
    else:
        with transaction.atomic():
            record_events(spec)


def _names(model: Any, pks: Any, field: str) -> list[str]:
    return sorted(str(name) for name in model.objects.filter(pk__in=pks).values_list(field, flat=True))


def _permission_names(pks: Any) -> list[str]:
    rows = Permission.objects.filter(pk__in=pks).values_list("content_type__app_label", "codename")
    return sorted(f"{app}.{codename}" for app, codename in rows)


_CHANGES = {"post_add": "added", "post_remove": "removed", "pre_clear": "removed"}


def _membership_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any) -> None:
    """Who holds which role: user.groups.add/remove/set/clear, or group.user_set the other way round. A clear is
    read before it happens (its pk_set is empty); set() arrives as a remove and an add."""
    if action not in _CHANGES:
        return
    if action == "pre_clear":
        pk_set = set(getattr(instance, "user_set" if reverse else "groups").values_list("pk", flat=True))
    if not pk_set:
        return
    change = _CHANGES[action]
    if reverse:  # instance is a group, pk_set users
        for username in _names(User, pk_set, "username"):
            _record("access.groups_changed", {"user": username, change: [instance.name]})
    else:
        _record("access.groups_changed", {"user": instance.get_username(), change: _names(Group, pk_set, "name")})


def _permissions_changed(
    kind: str, key: str, holder: Any, name_field: str, holders: str, permissions: str
) -> Callable[..., None]:
    """A receiver for the permissions a `holder` (a user or a group) has, changed from either side: holder.`permissions`
    add/remove/set/clear, or permission.`holders` the other way round. A clear is read before it happens."""

    def changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any) -> None:
        if action not in _CHANGES:
            return
        if action == "pre_clear":
            pk_set = set(getattr(instance, holders if reverse else permissions).values_list("pk", flat=True))
        if not pk_set:
            return
        change = _CHANGES[action]
        if reverse:  # instance is a permission, pk_set its holders
            permission = _permission_names([instance.pk])
            for name in _names(holder, pk_set, name_field):
                _record(kind, {key: name, change: permission})
        else:
            _record(kind, {key: getattr(instance, name_field), change: _permission_names(pk_set)})

    return changed


# Module-level, so the signal's weak references keep them.
_user_permissions_changed = _permissions_changed(
    "access.permissions_changed", "user", User, "username", "user_set", "user_permissions"
)
_group_permissions_changed = _permissions_changed(
    "access.group_permissions_changed", "group", Group, "name", "group_set", "permissions"
)


_WATCHED = ("is_active", "is_staff", "is_superuser", "password")


def _remember_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    """What the row held when it was read, to tell on save what changed without reading it again."""
    instance._access_seen = {name: instance.__dict__.get(name) for name in _WATCHED}


def _user_saved(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    username = instance.get_username()
    if created:
        flags = {name: getattr(instance, name) for name in ("is_active", "is_staff", "is_superuser")}
        _record("access.user_created", {"user": username, **flags})
    else:
        seen = getattr(instance, "_access_seen", {})
        changed = {
            name: {"from": seen.get(name), "to": getattr(instance, name)}
            for name in ("is_active", "is_staff", "is_superuser")
            if (update_fields is None or name in update_fields) and seen.get(name) != getattr(instance, name)
        }
        if changed:
            _record("access.user_changed", {"user": username, **changed})
        if (update_fields is None or "password" in update_fields) and seen.get("password") != instance.password:
            # Never the hash: that the password changed, and whether it can still be used to sign in.
            _record("access.password_changed", {"user": username, "usable": instance.has_usable_password()})
    _remember_user(sender, instance)


def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    _record("access.user_deleted", {"user": instance.get_username()})


# Set on a login request that the lockout refused before any password was checked (LoginThrottleBackend).
REFUSED_WHILE_LOCKED_OUT = "refused_while_locked_out"


def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    """A failed console or admin login. One refused because axes already holds the address locked out is only
    counted (one `access.login_refused` per address and minute), so a locked-out flood cannot grow the trail."""
    username = str(credentials.get("username", ""))[:150]
    if request is None:
        _record("access.login_failed", {"username": username}, actor="anonymous")
    elif getattr(request, REFUSED_WHILE_LOCKED_OUT, False):
        count_access_failure("access.login_refused", request, "locked out")
    else:
        data = {"username": username, "address": client_address(request), "path": str(request.path)[:200]}
        _record("access.login_failed", data, actor="anonymous")


def _locked_out(sender: Any, request: Any = None, username: Any = None, ip_address: Any = None, **kwargs: Any) -> None:
    """The failure that locks an address out; axes signals again for attempts while locked out, counted above."""
    if request is not None and getattr(request, REFUSED_WHILE_LOCKED_OUT, False):
        return
    address = client_address(request) if request is not None else str(ip_address or "")
    _record("access.locked_out", {"username": str(username or "")[:150], "address": address}, actor="anonymous")


def connect() -> None:
    """Called once by AuditConfig.ready()."""
    m2m_changed.connect(_membership_changed, sender=User.groups.through, dispatch_uid="audit_access_groups")
    m2m_changed.connect(
        _user_permissions_changed, sender=User.user_permissions.through, dispatch_uid="audit_access_user_perms"
    )
    m2m_changed.connect(
        _group_permissions_changed, sender=Group.permissions.through, dispatch_uid="audit_access_group_perms"
    )
    post_init.connect(_remember_user, sender=User, dispatch_uid="audit_access_user_seen")
    post_save.connect(_user_saved, sender=User, dispatch_uid="audit_access_user_saved")
    post_delete.connect(_user_deleted, sender=User, dispatch_uid="audit_access_user_deleted")
    user_login_failed.connect(_login_failed, dispatch_uid="audit_access_login_failed")
    user_locked_out.connect(_locked_out, dispatch_uid="audit_access_locked_out")
