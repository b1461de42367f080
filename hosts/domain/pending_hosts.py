"""Registrations waiting for a person to confirm the server's certificate fingerprint.

The trust password or token has to last from the first step to the confirmation, but must
never travel back to the browser (a page's HTML ends up in caches, screenshots, saved pages).
It stays in the session, encrypted like the client keys (hosts.crypto), under a random
one-time reference that the confirmation form carries, for at most MAX_AGE seconds.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from django.views.decorators.debug import sensitive_variables

from . import crypto

SESSION_KEY = "hosts.pending_registrations"
MAX_AGE = 600  # seconds: long enough to compare a fingerprint, short enough to forget
MAX_PENDING = 5  # per session; the oldest goes first


@dataclass(frozen=True)
class Pending:
    data: dict  # the registration form's cleaned data, secret included
    fingerprint: str  # the certificate the person was shown and confirms


def _live(session, key: str = SESSION_KEY) -> dict:
    now = time.time()
    return {ref: item for ref, item in session.get(key, {}).items() if now - item["at"] < MAX_AGE}


@sensitive_variables("data")
def keep(session, data: dict, fingerprint: str) -> str:
    """Keep a registration for its confirmation; the reference to put in the form."""
    return keep_data(session, SESSION_KEY, {"fingerprint": fingerprint, "data": data})


def take(session, ref: str) -> Pending | None:
    """The registration `ref` names, once: None if unknown, used or expired."""
    item = _find(session, SESSION_KEY, ref, remove=True)
    return None if item is None else Pending(item["data"], item["fingerprint"])


@sensitive_variables("data")
def keep_data(session, key: str, data: dict) -> str:
    """Keep `data` (secrets included) in the session under `key`, encrypted, for at most
    MAX_AGE seconds; the one-time reference a form carries instead of the data."""
    pending = _live(session, key)
    ref = secrets.token_urlsafe(24)
    pending[ref] = {"at": time.time(), "data": crypto.encrypt(json.dumps(data))}
    newest = sorted(pending.items(), key=lambda kv: kv[1]["at"])[-MAX_PENDING:]
    session[key] = dict(newest)
    return ref


def peek_data(session, key: str, ref: str) -> dict | None:
    """What `ref` names under `key`, left in place (a form may be sent again); None if unknown
    or expired."""
    return _find(session, key, ref, remove=False)


def _find(session, key: str, ref: str, *, remove: bool) -> dict | None:
    pending = _live(session, key)
    item = pending.pop(ref, None) if remove else pending.get(ref)
    session[key] = pending
    return None if item is None else json.loads(crypto.decrypt(item["data"]))
