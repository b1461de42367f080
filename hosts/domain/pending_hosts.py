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


def _live(session) -> dict:
    now = time.time()
    return {ref: item for ref, item in session.get(SESSION_KEY, {}).items() if now - item["at"] < MAX_AGE}


@sensitive_variables("data")
def keep(session, data: dict, fingerprint: str) -> str:
    """Keep a registration for its confirmation; the reference to put in the form."""
    pending = _live(session)
    ref = secrets.token_urlsafe(24)
    pending[ref] = {"at": time.time(), "fingerprint": fingerprint, "data": crypto.encrypt(json.dumps(data))}
    newest = sorted(pending.items(), key=lambda kv: kv[1]["at"])[-MAX_PENDING:]
    session[SESSION_KEY] = dict(newest)
    return ref


def take(session, ref: str) -> Pending | None:
    """The registration `ref` names, once: None if unknown, used or expired."""
    pending = _live(session)
    item = pending.pop(ref, None)
    session[SESSION_KEY] = pending
    if item is None:
        return None
    return Pending(json.loads(crypto.decrypt(item["data"])), item["fingerprint"])
