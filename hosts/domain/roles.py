"""Roles: viewer (read only) < operator (instances, files, snapshots) < admin (hosts,
certificates, server config, users).  A user's role is the highest of their groups named
after a role; superusers are admins; a user in no such group is a viewer.

Enforced in every mutating view with @role_required and in every websocket message with
has_role(), never only by hiding buttons.
"""

from __future__ import annotations

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
RANK = {VIEWER: 0, OPERATOR: 1, ADMIN: 2}


def user_role(user) -> str | None:
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    cached = getattr(user, "_dashboard_role", None)
    if cached:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = max((r for r in RANK if r in names), key=RANK.get, default=VIEWER)
    user._dashboard_role = role
    return role


def has_role(user, role: str) -> bool:
    current = user_role(user)
    return current is not None and RANK[current] >= RANK[role]


def may_see_secrets(user) -> bool:
    """Secret-bearing values (hosts.lxd.config.is_secret_key: API keys, passwords, instance
    environment, cloud-init) are for admins; everyone else sees only that they are set."""
    return has_role(user, ADMIN)
