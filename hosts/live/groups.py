"""Channel-layer group names and message types, shared by the relay (which sends) and the
browser consumer (which renders).  Messages are small dicts of plain values; none carries
an LXD event as such.

    HOSTS                 host.status       {host, status, detail}
    host_group(name)      instance.status   {host, instance, status, action}      first push, no LXD call
                          instance.state    {host, instance, data, new}            second push: one instance
                          instance.gone     {host, instance}
                          operation.update  {host, id, description, status, final, ok, err,
                                             percent, stage, rate, eta, text, targets, instances, ...}
    RELAY                 hosts.changed     {}  (the relay re-reads the host list)
    AUTH                  auth.session_ended {session}  a login ended (hosts/socket_auth.py)
                          auth.user_changed  {user}     a user's account changed: re-check

Every message also carries `seq`, unique per message, so a process renders a fragment
once however many browsers it serves.
"""

from __future__ import annotations

import itertools
import secrets

HOSTS = "live.hosts"
RELAY = "live.relay"
AUTH = "live.auth"

HOST_STATUS = "host.status"
INSTANCE_STATUS = "instance.status"
INSTANCE_STATE = "instance.state"
INSTANCE_GONE = "instance.gone"
OPERATION = "operation.update"
HOSTS_CHANGED = "hosts.changed"
SESSION_ENDED = "auth.session_ended"
USER_CHANGED = "auth.user_changed"


def host_group(name: str) -> str:
    """Instance and operation messages of one host (host names are [a-z0-9-])."""
    return f"live.host.{name}"


_counter = itertools.count(1)
_prefix = secrets.token_hex(4) + "."  # per process, so two relays never collide


def next_seq() -> str:
    return _prefix + str(next(_counter))
