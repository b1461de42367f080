"""Accounts in the test database, and Django test clients logged in as them.  (Django is
imported when called: the benches import tests.support without a configured Django.)"""

from __future__ import annotations

PASSWORD = "correct-horse-battery"


def make_user(username: str, role: str | None = None, *, password: str = PASSWORD, superuser: bool = False):
    """A user in the group of `role` (viewer, operator, admin: made by the migrations), or a
    superuser, or a user in no group (who is a viewer)."""
    from django.contrib.auth.models import Group, User

    if superuser:
        return User.objects.create_superuser(username, f"{username}@example.test", password)
    user = User.objects.create_user(username, password=password)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def logged_in(user, client=None):
    """A Django test client (a new one unless given) with `user`'s session."""
    from django.test import Client

    client = client or Client()
    client.force_login(user)
    return client
