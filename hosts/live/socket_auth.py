"""Browser sockets follow their login: a socket closes within moments of its user logging
out, being deactivated, deleted or losing its role, or of its session ending.

Nothing polls.  Signals (`user_logged_out`; a user saved, deleted or moved between groups; a
role group renamed or deleted) publish a small fact over the channel layer to one group,
groups.AUTH, which each web process's hub (hosts/hub.py) has joined; the hub hands the fact
to that process's login-bound sockets.  Told "this session ended", a socket of that session
closes; told "this user changed", a socket of that user checks its own session once against
the database, as Django checks a request (active user, session not expired, session hash
still valid after a password change, role).  So 1,000 idle sockets cost no queries and no
channel-layer groups of their own (an in-memory layer pays for every group member on every
message), and a change costs one check per socket of that user.

Backstop, for what no signal reports (a queryset `.update()`, a session row deleted or
expired, a change made by another process while the channel layer is in-memory): each socket
closes at its session's expiry, and checks itself every DASHBOARD_SOCKET_RECHECK_SECONDS.

Close codes: 4401 the login is gone (logged out, session over, password changed, user
deleted); 4403 still logged in but no longer allowed (deactivated, role lost).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import time
from dataclasses import dataclass
from importlib import import_module

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.utils.crypto import constant_time_compare

from ..concurrency import in_thread
from ..domain.roles import RANK, user_role
from . import groups
from .hub import ensure_hub

log = logging.getLogger(__name__)

LOGGED_OUT, NOT_ALLOWED = 4401, 4403


def session_tag(session_key: str) -> str:
    """How a session is named in messages: a session key is a credential, and messages travel
    through the channel layer (Redis)."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


# -- publishing (sync: signal receivers) -----------------------------------------------------


def _publish(message: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(groups.AUTH, message)
    except Exception:
        # Never fail the logout or the user's save for this: the sockets' backstop re-check
        # closes them later (within DASHBOARD_SOCKET_RECHECK_SECONDS).
        log.exception("could not tell the sockets about %s", message["type"])


def publish_after_commit(message: dict) -> None:
    """After the commit, so a socket that re-checks reads the new state."""
    transaction.on_commit(lambda: _publish(message))


def _user_changed(user_id: int) -> None:
    publish_after_commit({"type": groups.USER_CHANGED, "user": user_id})


def _logged_out(sender, request, user, **kwargs) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        publish_after_commit({"type": groups.SESSION_ENDED, "session": session_tag(key)})


def _user_saved(sender, instance, update_fields=None, **kwargs) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # every login saves last_login: nothing a socket must re-check
    _user_changed(instance.pk)


def _user_deleted(sender, instance, **kwargs) -> None:
    _user_changed(instance.pk)


def _groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action == "pre_clear" and reverse:  # group.user_set.clear(): who is in it, before
        instance._socket_auth_users = list(instance.user_set.values_list("pk", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        user_ids = [instance.pk]
    elif action == "post_clear":
        user_ids = getattr(instance, "_socket_auth_users", [])
    else:
        user_ids = list(pk_set or [])
    for user_id in user_ids:
        _user_changed(user_id)


def _group_changing(sender, instance, **kwargs) -> None:
    """A role is a group's name: renaming or deleting a group changes its members' roles."""
    if instance.pk is None:
        return
    for user_id in instance.user_set.values_list("pk", flat=True):
        _user_changed(user_id)


def connect_signals() -> None:
    user_model = auth.get_user_model()
    uid = "socket-auth-"
    auth.signals.user_logged_out.connect(_logged_out, dispatch_uid=uid + "logout")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid=uid + "user-save")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid=uid + "user-delete")
    m2m_changed.connect(_groups_changed, sender=user_model.groups.through, dispatch_uid=uid + "groups")
    post_save.connect(_group_changing, sender=Group, dispatch_uid=uid + "group-save")
    pre_delete.connect(_group_changing, sender=Group, dispatch_uid=uid + "group-delete")


# -- checking one socket's login (sync, in a worker thread) -----------------------------------


@dataclass(frozen=True)
class Verdict:
    close_code: int | None  # None: the socket may stay
    role: str | None = None
    expires_at: float = 0.0  # the session's expiry (unix time)


def _session_expiry(store) -> float:
    if hasattr(store, "get_model_class"):  # database-backed sessions know their row's expiry
        expiry = (
            store.get_model_class()
            .objects.filter(session_key=store.session_key)
            .values_list("expire_date", flat=True)
            .first()
        )
        if expiry is not None:
            return expiry.timestamp()
    return store.get_expiry_date().timestamp()


def _session_user(store):
    """The active user this session is logged in as, or None: Django's own request check
    (auth.get_user) without its side effects (it flushes or re-keys the session)."""
    user_id, backend_path = store.get(auth.SESSION_KEY), store.get(auth.BACKEND_SESSION_KEY)
    if user_id is None or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user_model = auth.get_user_model()
    user = auth.load_backend(backend_path).get_user(user_model._meta.pk.to_python(user_id))
    if user is None:  # ModelBackend answers None for an inactive user too
        return None
    session_hash = store.get(auth.HASH_SESSION_KEY) or ""
    valid = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    if not any(constant_time_compare(session_hash, h) for h in valid):
        return None  # the password changed since this login
    return user


def check_login(session_key: str | None, user_id: int, role: str) -> Verdict:
    """What Django would decide for an HTTP request of this session now, and whether the
    user still has `role`."""
    if not session_key:
        return Verdict(LOGGED_OUT)
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = _session_user(store)
    if user is None or user.pk != user_id:
        inactive = auth.get_user_model().objects.filter(pk=user_id, is_active=False).exists()
        return Verdict(NOT_ALLOWED if inactive else LOGGED_OUT)
    current = user_role(user)
    if current is None or RANK[current] < RANK[role]:
        return Verdict(NOT_ALLOWED, current)
    return Verdict(None, current, _session_expiry(store))


_check = functools.partial(in_thread, check_login)


# -- the consumer side ------------------------------------------------------------------------


class LoginBound:
    """Mixin for a websocket consumer.  Call `bind_login(role)` once the user is known to be
    allowed (it returns False if the login is already gone), `unbind_login()` in disconnect,
    and implement `revoked(code, message)` (tell the page, then close) and, optionally,
    `role_changed(role)`."""

    async def bind_login(self, role: str) -> bool:
        self.login_role = role
        session_key = getattr(self.scope.get("session"), "session_key", None)
        self.login_session = session_key
        self.login_tag = session_tag(session_key) if session_key else ""
        self.login_user_id = self.scope["user"].pk
        self.login_tasks: set[asyncio.Task] = set()
        # Listening before checking: a logout in between is not missed.
        self.login_hub = await ensure_hub()
        self.login_hub.logins.add(self)
        verdict = await _check(self.login_session, self.login_user_id, role)
        if verdict.close_code is not None:
            return False
        self._login_task(self._login_backstop(verdict.expires_at))
        return True

    async def unbind_login(self) -> None:
        hub = getattr(self, "login_hub", None)
        if hub is not None:
            hub.logins.discard(self)
        tasks = [t for t in getattr(self, "login_tasks", ()) if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def login_message(self, message: dict) -> None:
        """Called by the hub for every auth message: act on those about this login."""
        kind = message.get("type")
        if kind == groups.SESSION_ENDED and self.login_tag and message.get("session") == self.login_tag:
            self._login_task(self.revoked(LOGGED_OUT, "You logged out: log in again to see live updates."))
        elif kind == groups.USER_CHANGED and message.get("user") == self.login_user_id:
            self._login_task(self._recheck())

    def _login_task(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="socket-login")
        self.login_tasks.add(task)
        task.add_done_callback(self.login_tasks.discard)

    async def _recheck(self) -> Verdict:
        verdict = await _check(self.login_session, self.login_user_id, self.login_role)
        if verdict.close_code == LOGGED_OUT:
            await self.revoked(LOGGED_OUT, "Your session ended: log in again to see live updates.")
        elif verdict.close_code is not None:
            await self.revoked(NOT_ALLOWED, "Your account may no longer use this.")
        else:
            await self.role_changed(verdict.role)
        return verdict

    async def _login_backstop(self, expires_at: float) -> None:
        every = settings.DASHBOARD_SOCKET_RECHECK_SECONDS
        while True:
            jittered = every * random.uniform(0.75, 1.0)  # noqa: S311 - spreads the checks, no secret
            await asyncio.sleep(max(min(jittered, expires_at - time.time() + 0.5), 0.0))
            verdict = await self._recheck()
            if verdict.close_code is not None:
                return
            expires_at = verdict.expires_at

    async def revoked(self, code: int, message: str) -> None:
        raise NotImplementedError

    async def role_changed(self, role: str) -> None:
        """The user's role may have changed (still at least the socket's role)."""
