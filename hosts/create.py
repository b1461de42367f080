"""Creating an instance from an image on the same host or on another registered host.

From another host (LXD-API.md §9): the target daemon pulls as an *anonymous* client, so
- the dashboard resolves alias -> fingerprint on the source with its own trusted connection
  (with a secret, LXD does not resolve aliases),
- asks the source for a one-time secret (POST /1.0/images/<fp>/secret),
- passes server, the source's certificate (it is self-signed), fingerprint and secret,
- and revokes the secret afterwards if it was not used.
If the target already holds that fingerprint it never contacts the source (the local cache
short-circuit), so we then create from the local copy and say so: a success would otherwise
prove nothing about the remote or the secret.
5.0.2 lacks `instance_create_start`: start is a second operation.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from django.conf import settings

from .actions import follow, instance_lock
from .audit import audited, record
from .lxd import LXDClient, LXDError
from .models import Host
from .policy import PolicyRefused, check_write


@dataclass
class CreateSpec:
    name: str
    image: str
    image_host: Host | None = None  # None: the target host itself
    profiles: list[str] | None = None  # None: LXD's default profile
    config: dict[str, str] = field(default_factory=dict)
    devices: dict[str, dict[str, str]] = field(default_factory=dict)
    start: bool = False


@dataclass
class CreateOutcome:
    instance: dict | None = None
    notes: list[str] = field(default_factory=list)
    start_error: LXDError | None = None


def create_instance(request, host: Host, spec: CreateSpec) -> CreateOutcome:
    """Create (and maybe start) an instance; LXD's failure text comes out as LXDError, and what
    the user's role may not write as PolicyRefused (recorded, nothing sent to LXD)."""
    try:
        check_write(request.user, host, config=spec.config, devices=spec.devices, profiles=spec.profiles)
    except PolicyRefused as exc:
        record(
            request.user, "instance.create", host=host, target=spec.name, outcome="refused", error=str(exc)
        )
        raise
    outcome = CreateOutcome()
    timeout = settings.LXD_OPERATION_TIMEOUT
    target = host.client(timeout=(settings.LXD_PAGE_TIMEOUT[0], 30))
    body: dict = {"name": spec.name, "source": {"type": "image"}}
    if spec.profiles is not None:
        body["profiles"] = spec.profiles
    if spec.config:
        body["config"] = spec.config
    if spec.devices:
        body["devices"] = spec.devices
    token_op = ""
    source_client = None
    if spec.image_host is None or spec.image_host.pk == host.pk:
        fingerprint = target.resolve_image(spec.image)
        body["source"]["fingerprint"] = fingerprint
    else:
        source_client = spec.image_host.client(timeout=(settings.LXD_PAGE_TIMEOUT[0], 30))
        fingerprint = source_client.resolve_image(spec.image)
        if target.has_image(fingerprint):
            body["source"]["fingerprint"] = fingerprint
            outcome.notes.append(
                f"{host.name} already holds image {fingerprint[:12]}: created from its local copy; "
                f"{spec.image_host.name} was not contacted."
            )
        else:
            server, certificate = source_client.remote_server()
            with audited(request, "image.secret", host=spec.image_host, target=fingerprint) as entry:
                secret, token_op = source_client.create_image_secret(fingerprint)
                entry.operation_id = token_op
            body["source"].update(
                {
                    "mode": "pull",
                    "server": server,
                    "protocol": "lxd",
                    "certificate": certificate,
                    "fingerprint": fingerprint,
                    "secret": secret,
                }
            )
            outcome.notes.append(f"Image {fingerprint[:12]} copied from {spec.image_host.name}.")
    try:
        with (
            instance_lock(host.name, spec.name),
            audited(request, "instance.create", host=host, target=spec.name) as entry,
        ):
            op = target.create_instance(body)
            entry.operation_id = op.id
            follow(target, op, timeout)
    finally:
        if token_op and source_client is not None:
            _revoke(source_client, token_op)
    if spec.start:
        try:
            with (
                instance_lock(host.name, spec.name),
                audited(request, "instance.start", host=host, target=spec.name) as entry,
            ):
                op = target.change_state(spec.name, "start")
                entry.operation_id = op.id
                follow(target, op, timeout)
        except LXDError as exc:
            outcome.start_error = exc
    try:
        outcome.instance = target.instance(spec.name)
    except LXDError:
        outcome.instance = None
    return outcome


def _revoke(client: LXDClient, op_id: str) -> None:
    """An unused image secret stays valid until cancelled: cancel it (gone already is fine)."""
    with contextlib.suppress(LXDError):
        client.cancel_operation(op_id)
