"""The demo's people: one or two per role, an admin, and the shop's API token.

Passwords are generated, hashed once and kept with the token in a local credentials file (mode 0600), so the demo
can print them again on every start without setting them again.
"""

import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import CONSTANTS

from policies.roles import (
    AUDITOR,
    CUSTOMER_SERVICE,
    EXECUTIVE,
    INCIDENT_COMMANDER,
    LEGAL,
    POLICY_OWNER,
    REVIEWER,
    ROLES,
    VERIFIER,
)
from policies.roles import INTEGRATOR as INTEGRATOR_ROLE

INTEGRATOR = "shop"
# Two people for each signing role, since nobody signs off their own request; names as in the tests' cast.
# An integrator is a service account that posts with a token.
PEOPLE: dict[str, tuple[str, ...]] = {
    "alice": (REVIEWER,),
    "bob": (REVIEWER,),
    "vera": (VERIFIER,),
    "victor": (VERIFIER,),
    "carl": (CUSTOMER_SERVICE,),
    "cora": (CUSTOMER_SERVICE,),
    "ines": (INCIDENT_COMMANDER,),
    "ian": (INCIDENT_COMMANDER,),
    "paula": (POLICY_OWNER,),
    "pia": (POLICY_OWNER,),
    "lena": (LEGAL,),
    "eddie": (EXECUTIVE,),
    "lex": (LEGAL, EXECUTIVE),
    "audrey": (AUDITOR,),
    INTEGRATOR: (INTEGRATOR_ROLE,),
}
ADMIN = "admin"  # a superuser for /admin/, holding no role


@dataclass(frozen=True)
class Login:
    username: str
    roles: tuple[str, ...]
    password: str


def seed_people(credentials: Path) -> list[Login]:
    """The role groups, one user per role and an admin. Passwords are generated once and kept in `credentials`
    (a local file, mode 0600) so later runs can print them again. A kept password is shown again while the user's
    hash is still the one the demo set (a string comparison: a re-run does no slow hashing); a user missing from
    the file, or whose password was changed since, gets a new one."""
    kept = json.loads(credentials.read_text()) if credentials.exists() else {}
    passwords: dict[str, str] = kept.get("passwords", {})
    hashes: dict[str, str] = kept.get("hashes", {})
    groups = {role: Group.objects.get_or_create(name=role)[0] for role in ROLES}
    everyone = [*PEOPLE.items(), (ADMIN, ())]
    users = {}
    for username, roles in everyone:
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        if created:
            user.groups.set([groups[role] for role in roles])
            user.is_staff = user.is_superuser = username == ADMIN
        users[username] = user
    stale = {name: user for name, user in users.items() if name not in passwords or hashes.get(name) != user.password}
    fresh = {name: f"demo-{secrets.token_hex(4)}" for name in stale}
    # PBKDF2 releases the GIL: hashing side by side divides the first run's wait by the cores.
    with ThreadPoolExecutor() as pool:
        encoded = dict(zip(fresh, pool.map(make_password, fresh.values()), strict=True))
    for name, user in stale.items():
        user.password = encoded[name]
        user.save()
        passwords[name], hashes[name] = fresh[name], user.password
    _write_credentials(credentials, passwords=passwords, hashes=hashes)
    return [Login(username, roles, passwords[username]) for username, roles in everyone]


def _write_credentials(credentials: Path, **content: Any) -> None:
    current = json.loads(credentials.read_text()) if credentials.exists() else {}
    updated = {**current, **content}
    if updated == current:
        return
    credentials.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(updated, handle, indent=2, sort_keys=True)


def integrator_token(credentials: Path, issue: Any) -> str:
    """The shop's API token: the one kept in `credentials` while it is still valid, else a new one from `issue`
    (tokens are stored only as hashes, so a lost one cannot be shown again)."""
    token = json.loads(credentials.read_text()).get("token", "") if credentials.exists() else ""
    if token:
        alive = AuthToken.objects.filter(
            user__username=INTEGRATOR, token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH], expiry__gt=timezone.now()
        ).exists()
        if alive:
            return str(token)
    token = issue(INTEGRATOR)
    _write_credentials(credentials, token=token)
    return str(token)
