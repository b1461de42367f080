"""Access to views: the role a view needs, the host its URL names, and what templates know of
the user's role.  The roles themselves (who has which) are decided in hosts/domain/roles.py;
this is where a request meets them.

    @host_view(OPERATOR, name=INSTANCE)          # role, then LXD names in the URL, then the host
    def instance_action(request, host: Host, name: str, action: str): ...

A UserError the view raises (LXD's failures included) becomes a page with its message and
status, or what the view's family shows instead (`on_error`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import parse_qs

from django.shortcuts import get_object_or_404, render

from ..domain.audit import record
from ..domain.projects import project_error
from ..domain.roles import ADMIN, OPERATOR, RANK, VIEWER, has_role, user_role
from ..lxd.errors import UserError
from ..lxd.names import PROJECT, NameRule
from ..models import Host


def refusal(request, role: str, what: str):
    """The 403 page for a user below `role` (None if the user has it); a refused write is audited."""
    if has_role(request.user, role):
        return None
    if request.method not in ("GET", "HEAD"):
        record(
            request.user,
            f"denied:{what}",
            target=request.path,
            outcome="refused",
            error=f"needs the {role} role",
        )
    message = f"This needs the {role} role; you are a {user_role(request.user)}."
    return error_page(request, UserError(message, 403), title="Not allowed")


def role_required(role: str):
    """Refuse (403, with a message) users below `role`: for views that name no host."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            return refusal(request, role, view.__name__) or view(request, *args, **kwargs)

        wrapped.required_role = role
        return wrapped

    return decorator


def error_page(request, exc: UserError, *, title: str = "Refused", status: int | None = None):
    """A UserError as a page (or, for htmx, the fragment it swaps in): its message, with the
    status that fits."""
    context = {"title": title, "message": str(exc)}
    template = "hosts/partials/error.html" if _fragment(request) else "hosts/error.html"
    return render(request, template, context, status=status or exc.http_status)


def _fragment(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted


def name_refusal(request, rules: dict[str, NameRule], kwargs: dict):
    """The 400 page for the first LXD name in the URL that breaks its rule (None if all are good)."""
    for key, rule in rules.items():
        if key in kwargs and (error := rule.error(kwargs[key])) is not None:
            return error_page(request, UserError(error, 400), title=f"Invalid {rule.what}")
    return None


def socket_project(scope) -> str:
    """The LXD project a websocket's URL names (`?project=`, else `default`); InvalidName (a
    400) for a name that breaks the rule."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    project = (query.get("project") or [""])[-1]
    return PROJECT.check(project) if project else "default"


def requested_host(name: str) -> Host:
    """The host a URL names (with its client certificate), or 404."""
    return get_object_or_404(Host.objects.select_related("client_certificate"), name=name)


def host_view(role: str = VIEWER, *, on_error: Callable | None = None, **names: NameRule):
    """The one wrapper of views that act on the host their URL names (keyword `host`).

    In order: the role (403, a refused write audited), the LXD names the URL carries
    (keyword -> rule: 400 naming the rule), the host (404); the view receives the Host,
    scoped to the LXD project the query names (`?project=`, else `default`).
    A UserError the view raises becomes `on_error(request, host, exc, **kwargs)`, or the
    error page; where the project is the reason (it does not exist, or the dashboard may not
    see it), the message says so."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, host: str, **kwargs):
            refused = refusal(request, role, view.__name__) or name_refusal(request, names, kwargs)
            project = request.GET.get("project") or ""
            if refused is None and project:
                refused = name_refusal(request, {"project": PROJECT}, {"project": project})
            if refused is not None:
                return refused
            host_obj = requested_host(host)
            if project:
                host_obj = host_obj.for_project(project)
            try:
                return view(request, host_obj, **kwargs)
            except UserError as exc:
                exc = project_error(host_obj, exc)
                if on_error is not None:
                    return on_error(request, host_obj, exc, **kwargs)
                return error_page(request, exc, title=f"{host_obj.name}: refused")

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
