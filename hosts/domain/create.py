"""Creating an instance from an image on the same host or on another registered host.

From another host: the target daemon pulls the image itself, with a one-time secret the
dashboard asks the source for (hosts/domain/images.py pull_source).  If the target already
holds that fingerprint it never contacts the source (the local cache short-circuit), so we then
create from the local copy and say so: a success would otherwise prove nothing about the
remote or the secret.
5.0.2 lacks `instance_create_start`: start is a second operation.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from django.conf import settings

from ..lxd import LXDError
from ..lxd.errors import UserError
from ..lxd.images import ImageNotFound
from ..lxd.projects import DEFAULT_PROJECT
from ..models import Host
from .actions import instance_lock
from .audit import audited, record
from .images import pull_source
from .policy import PolicyRefused, check_write
from .projects import project_problem


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
    """Create (and maybe start) an instance in the project `host` is scoped to; LXD's failure
    text comes out as LXDError (with what the project explains of it), and what the user's role
    may not write as PolicyRefused (recorded, nothing sent to LXD)."""
    try:
        return _create(request, host, spec)
    except UserError as exc:
        raise in_project_terms(host, exc) from exc


def in_project_terms(host: Host, exc: UserError) -> UserError:
    """A create's failure, with what a non-default project has to do with it."""
    if host.project == DEFAULT_PROJECT or isinstance(exc, PolicyRefused):
        return exc
    # LXD blames the image or the instance when the project itself is missing
    if (problem := project_problem(host)) is not None:
        return problem
    if isinstance(exc, ImageNotFound):
        return UserError(
            f"{exc} in project {host.project}: the project has images of its own (features.images=true) "
            "and this is not one of them. Copy the image into the project, or use a project that shares "
            "the default project's images (features.images=false).",
            400,
        )
    if "No root device" in str(exc):
        return UserError(
            f"{exc}: project {host.project} has profiles of its own (features.profiles=true) and its "
            "default profile gives no root disk. Add one to that profile, or give the instance a disk "
            "device (root disk path=/ pool=default).",
            400,
        )
    return exc


def _create(request, host: Host, spec: CreateSpec) -> CreateOutcome:
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
    pulling = contextlib.ExitStack()
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
            body["source"] = pulling.enter_context(
                pull_source(request, spec.image_host, source_client, fingerprint)
            )
            outcome.notes.append(f"Image {fingerprint[:12]} copied from {spec.image_host.name}.")
    with (
        pulling,  # the secret, if any, is revoked once the create has ended
        instance_lock(host.name, spec.name),
        audited(request, "instance.create", host=host, target=spec.name) as entry,
    ):
        entry.follow(target, target.create_instance(body), timeout)
    if spec.start:
        try:
            with (
                instance_lock(host.name, spec.name),
                audited(request, "instance.start", host=host, target=spec.name) as entry,
            ):
                entry.follow(target, target.change_state(spec.name, "start"), timeout)
        except LXDError as exc:
            outcome.start_error = exc
    try:
        outcome.instance = target.instance(spec.name)
    except LXDError:
        outcome.instance = None
    return outcome
