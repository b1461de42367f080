"""Roles: viewer (read only) < operator (instances, files, snapshots) < admin (hosts,
certificates, server config, users).  A user's role is the highest of their groups named
after a role; superusers are admins; a user in no such group is a viewer.

Enforced in every mutating view with @role_required and in every websocket message with
has_role(), never only by hiding buttons.
"""

from __future__ import annotations

from functools import wraps

from django.shortcuts import render

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


def role_required(role: str):
    """Refuse (403, with a message) users below `role`, on every method but GET/HEAD
    unless `role` must also guard reading (wrap read-only admin pages with it too)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                from .audit import record

                if request.method not in ("GET", "HEAD"):
                    record(
                        request.user,
                        f"denied:{view.__name__}",
                        target=request.path,
                        outcome="refused",
                        error=f"needs the {role} role",
                    )
                return render(
                    request,
                    "hosts/error.html",
                    {
                        "title": "Not allowed",
                        "message": f"This needs the {role} role; you are a {user_role(request.user)}.",
                    },
                    status=403,
                )
            return view(request, *args, **kwargs)

        wrapped.required_role = role
        return wrapped

    return decorator


def role_context(request):
    """Template context: `role` and `can` for showing only the buttons a user may press."""
    role = user_role(getattr(request, "user", None))
    return {
        "role": role,
        "can_operate": role is not None and RANK[role] >= RANK[OPERATOR],
        "can_admin": role == ADMIN,
    }
