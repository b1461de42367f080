"""Login throttling (django-axes): the pieces axes calls back into.

After DASHBOARD_LOGIN_FAILURE_LIMIT failed logins for a user name, or from one address, axes
refuses every further attempt for it (the right password included) for
DASHBOARD_LOGIN_LOCK_SECONDS; a successful login resets the count.  Axes works as an
authentication backend, so the admin's login form is covered too.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render


def client_address(request) -> str | None:
    """The peer address as daphne reports it (behind a proxy, daphne's --proxy-headers sets it
    from X-Forwarded-For).  Axes would otherwise read forwarding headers through django-ipware,
    which any client can forge when no proxy strips them."""
    return request.META.get("REMOTE_ADDR")


def locked_out(request, *args, **kwargs):
    """The login page again, with why and for how long, as 429."""
    minutes = max(1, round(settings.DASHBOARD_LOGIN_LOCK_SECONDS / 60))
    message = (
        f"Too many failed logins for this user name or from this address: logging in is refused "
        f"for {minutes} minute{'s' if minutes != 1 else ''}. An admin can lift the lock sooner "
        f"(Admin → Axes → Access attempts)."
    )
    context = {"form": AuthenticationForm(request), "locked_out": message}
    return render(request, "registration/login.html", context, status=429)
