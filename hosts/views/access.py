"""Access to views: the role a view needs, and what templates know of the user's role.

The roles themselves (who has which) are decided in hosts/domain/roles.py; this is where a
request meets them.
"""

from __future__ import annotations

from functools import wraps

from django.shortcuts import render

from ..domain.roles import ADMIN, OPERATOR, RANK, has_role, user_role


def role_required(role: str):
    """Refuse (403, with a message) users below `role`, on every method but GET/HEAD
    unless `role` must also guard reading (wrap read-only admin pages with it too)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                from ..domain.audit import record

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
