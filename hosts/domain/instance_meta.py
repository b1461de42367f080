"""An instance's description and `user.*` keys, edited inline on its page (no HTML).

LXD's instance ETag does not cover the description, and `volatile.*` keys move it on every
start, so each write carries the value the page showed: if the instance holds another one now,
someone changed it meanwhile and the write is refused (409) naming the value it has.  The write
itself goes with the ETag of a fresh read (LXD refuses it if anything changed in between).
`PATCH` cannot empty a description (LXD keeps the old one for ""), so a description is written
with `PUT`; a user key with `PATCH` (`""` unsets it).
"""

from __future__ import annotations

import re

from ..lxd.config import is_secret_key
from ..lxd.errors import LXDAPIError, UserError
from ..models import Host
from .actions import instance_lock
from .audit import audited
from .config_view import config_value
from .instance_config import refuse_policy
from .policy import PolicyRefused, check_write
from .roles import may_see_secrets

# LXD takes any user.* key; the dashboard keeps to what reads plainly in a form and a URL.
_USER_KEY = re.compile(r"^user\.[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


class Changed(UserError):
    http_status = 409


def user_key(key: str) -> str:
    """`key`, with `user.` put in front if missing; UserError (400) for anything else."""
    key = (key or "").strip()
    if key and not key.startswith("user."):
        key = "user." + key
    if not _USER_KEY.match(key):
        raise UserError(
            f"{key or '(empty)'!r} is not a user key: user. then letters, digits, '.', '-' or '_'.", 400
        )
    return key


def set_description(request, host: Host, name: str, description: str, original: str) -> None:
    what = f"{name}: description"
    client = host.client()
    with (
        instance_lock(host.name, name),
        audited(request, "instance.description", host=host, target=what) as entry,
    ):
        current, etag = client.instance_and_etag(name)
        now = current.get("description") or ""
        if now != original:
            raise Changed(f"The description of {name} was changed meanwhile to {now!r}: nothing was saved.")
        if now == description:
            return
        try:
            entry.follow(client, client.put_instance(name, {**current, "description": description}, etag))
        except LXDAPIError as exc:
            if exc.error_code == 412:
                raise Changed(f"{name} changed while saving: reload and try again.") from exc
            raise


def set_user_key(request, host: Host, name: str, key: str, value: str, original: str) -> None:
    what = f"{name}: {key}={value or '(unset)'}"
    try:
        check_write(request.user, host, config={key: value}, profiles=())
    except PolicyRefused as exc:
        refuse_policy(request, host, "instance.config", what, exc)
        raise
    client = host.client()
    with instance_lock(host.name, name), audited(request, "instance.config", host=host, target=what):
        current, etag = client.instance_and_etag(name)
        now = config_value((current.get("config") or {}).get(key))
        if now != original:
            secret = is_secret_key(key) and not may_see_secrets(request.user)
            shown = "changed" if secret else f"set to {now!r}" if now else "unset"
            raise Changed(f"{key} of {name} was {shown} meanwhile: nothing was saved.")
        if now == value:
            return
        try:
            client.patch_instance(name, {"config": {key: value}}, etag)
        except LXDAPIError as exc:
            if exc.error_code == 412:
                raise Changed(f"{name} changed while saving: reload and try again.") from exc
            raise
