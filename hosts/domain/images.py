"""Images across the fleet: which host holds which image, copies from host to host, edits
and deletes.  No HTML here; uploads are in image_import.py.

A copy goes host to host, never through the dashboard (LXD-API.md §9): the target daemon
pulls from the source as an *anonymous* client, so
- the dashboard resolves alias -> fingerprint on the source with its own trusted connection
  (with a secret, LXD does not resolve aliases),
- asks the source for a one-time secret (POST /1.0/images/<fp>/secret),
- passes the source's address, its certificate (it is self-signed), fingerprint and secret,
- and revokes the secret afterwards if it was not used.
`pull_source` does this for every pull (a copy here, a create from another host's image in
hosts/create.py).  If the target already holds the fingerprint, LXD never contacts the source
(its local cache short-circuits), so a copy to such a host is skipped and said so.

Who may do what (decided here, enforced by the views): viewers list and export; operators copy,
upload, and edit aliases, properties and auto-update; admins also delete images and make them
public (a public image is served to anyone who reaches the host's HTTPS port).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings

from ..concurrency import SLOW, parallel
from ..lxd import LXDClient, LXDError
from ..lxd.images import short_fingerprint
from ..models import AuditEntry, Host
from .audit import audited, record
from .tasklog import claim

# -- where another daemon finds a host ---------------------------------------------------------


@contextlib.contextmanager
def pull_source(request_or_user, source: Host, client: LXDClient, fingerprint: str) -> Iterator[dict]:
    """The `source` block by which another host pulls image `fingerprint` from `source`
    (`client`: the dashboard's connection to it).  The secret it holds is revoked on leaving
    the block, unless the pull used it up (a used one is gone already: fine)."""
    server, certificate = client.remote_server()
    with audited(request_or_user, "image.secret", host=source, target=fingerprint) as entry:
        secret, token_op = client.create_image_secret(fingerprint)
        entry.operation_id = token_op
    try:
        yield {
            "type": "image",
            "mode": "pull",
            "server": server,
            "protocol": "lxd",
            "certificate": certificate,
            "fingerprint": fingerprint,
            "secret": secret,
        }
    finally:
        with contextlib.suppress(LXDError):
            client.cancel_operation(token_op)


# -- the fleet's images --------------------------------------------------------------------------


@dataclass
class HostImage:
    """One host's copy of an image, as its page shows it."""

    host: str
    data: dict

    @property
    def aliases(self) -> list[str]:
        return sorted(str(a.get("name", "")) for a in self.data.get("aliases") or [])


@dataclass
class FleetImage:
    """One fingerprint and every host that holds it."""

    fingerprint: str
    copies: list[HostImage] = field(default_factory=list)

    @property
    def first(self) -> dict:
        return self.copies[0].data

    @property
    def short(self) -> str:
        return short_fingerprint(self.fingerprint)

    @property
    def holders(self) -> list[str]:
        return [c.host for c in self.copies]

    @property
    def aliases(self) -> list[tuple[str, str]]:
        """(host, alias), every host's own (aliases are per host)."""
        return [(c.host, alias) for c in self.copies for alias in c.aliases]

    @property
    def description(self) -> str:
        return str((self.first.get("properties") or {}).get("description") or "")


@dataclass
class FleetImages:
    images: list[FleetImage]
    errors: dict[str, str]  # host -> why its images are missing from the list


def _images_of(host: Host) -> list[dict] | LXDError:
    try:  # within the page timeout: a hung host is named on the page, not waited for
        return host.client().images()
    except LXDError as exc:
        return exc


def fleet_images(hosts: list[Host]) -> FleetImages:
    """Every host's images, asked in parallel (no database in the threads), by fingerprint."""
    by_fingerprint: dict[str, FleetImage] = {}
    errors: dict[str, str] = {}
    for host, found in zip(hosts, parallel(_images_of, hosts), strict=True):
        if isinstance(found, LXDError):
            errors[host.name] = str(found)
            continue
        for data in found:
            fingerprint = str(data.get("fingerprint") or "")
            entry = by_fingerprint.setdefault(fingerprint, FleetImage(fingerprint))
            entry.copies.append(HostImage(host.name, data))
    images = sorted(by_fingerprint.values(), key=lambda i: (i.description.casefold(), i.fingerprint))
    return FleetImages(images, errors)


def instances_from(client: LXDClient, fingerprint: str) -> list[str]:
    """The host's instances created from this image (LXD keeps it as volatile.base_image)."""
    return sorted(
        str(i.get("name"))
        for i in client.instances(recursion=1)
        if (i.get("config") or {}).get("volatile.base_image") == fingerprint
    )


# -- copies ------------------------------------------------------------------------------------


@dataclass
class CopyResult:
    host: str
    ok: bool
    message: str
    operation_id: str = ""
    skipped: bool = False  # the target held the image already


def copy_image(
    request_or_user, source: Host, fingerprint: str, targets: list[Host], *, aliases: list[str] = ()
) -> list[CopyResult]:
    """Copy an image from `source` to each target, all at once, each target pulling it
    itself; returns one result per target (LXD's failure text included, never raised).
    `aliases` are created on each target where they are free (a taken one is said, not moved).

    The copies start here, in the request's thread (the database sees who started each, so
    the task log and its live bar name them); worker threads only follow operations."""
    user = getattr(request_or_user, "user", request_or_user)
    source_client = source.client(timeout=(settings.LXD_PAGE_TIMEOUT[0], 30))
    results: dict[str, CopyResult] = {}
    running: list[tuple[Host, LXDClient, str, contextlib.ExitStack]] = []
    for target in targets:
        what = f"{short_fingerprint(fingerprint)} from {source.name}"
        client = target.client(timeout=(settings.LXD_PAGE_TIMEOUT[0], 30))
        stack = contextlib.ExitStack()
        try:
            if target.pk == source.pk or client.has_image(fingerprint):
                results[target.name] = CopyResult(
                    target.name,
                    True,
                    f"{target.name} already holds image {short_fingerprint(fingerprint)}.",
                    skipped=True,
                )
                continue
            free = [alias for alias in aliases if client.alias_target(alias) is None]
            taken = [alias for alias in aliases if alias not in free]
            pull = stack.enter_context(pull_source(user, source, source_client, fingerprint))
            op = client.pull_image(pull, aliases=free)
            claim(target, op.id, user, (("image", fingerprint),))
            note = f" Alias {', '.join(taken)} is taken on {target.name}: not copied." if taken else ""
            results[target.name] = CopyResult(target.name, False, note, op.id)
            running.append((target, client, op.id, stack))
        except LXDError as exc:
            stack.close()
            results[target.name] = CopyResult(target.name, False, str(exc))
            record(
                user,
                "image.copy",
                host=target,
                target=what,
                outcome=AuditEntry.Outcome.FAILED,
                error=str(exc),
            )

    def follow(job: tuple[Host, LXDClient, str, contextlib.ExitStack]) -> LXDError | None:
        target, client, op_id, stack = job
        try:
            client.wait(op_id, timeout=settings.LXD_OPERATION_TIMEOUT)
        except LXDError as exc:
            return exc
        finally:
            stack.close()  # revoke the secret (a used one is gone already)
        return None

    for (target, _, op_id, _), error in zip(running, parallel(follow, running, pool=SLOW), strict=True):
        result = results[target.name]
        what = f"{short_fingerprint(fingerprint)} from {source.name}"
        if error is None:
            result.ok, result.message = True, f"Copied to {target.name}.{result.message}"
            record(user, "image.copy", host=target, target=what, operation_id=op_id)
        else:
            result.message = _copy_failure(source, target, error)
            record(
                user,
                "image.copy",
                host=target,
                target=what,
                outcome=AuditEntry.Outcome.FAILED,
                error=str(error),
                operation_id=op_id,
            )
    return [results[t.name] for t in targets]


def _copy_failure(source: Host, target: Host, error: LXDError) -> str:
    text = str(error)
    if "unexpected EOF" in text or "connection reset" in text or "connection refused" in text:
        return (
            f"The copy to {target.name} failed: {source.name} stopped answering mid-copy ({text}). "
            f"{target.name} kept nothing of it."
        )
    return f"The copy to {target.name} failed: {text}"


# -- edits --------------------------------------------------------------------------------------


def update_image(
    request,
    host: Host,
    fingerprint: str,
    *,
    properties: dict[str, str],
    auto_update: bool,
    public: bool | None,
    etag: str,
) -> None:
    """Replace an image's properties and auto-update flag (and `public`, when not None),
    keeping what LXD has for the rest; refused (412) if the image changed since `etag`."""
    client = host.client()
    with audited(request, "image.edit", host=host, target=fingerprint):
        image, current = client.image_and_etag(fingerprint)
        image = {**image, "properties": properties, "auto_update": auto_update}
        if public is not None:
            image["public"] = public
        client.put_image(fingerprint, image, etag or current)


def delete_image(request, host: Host, fingerprint: str) -> None:
    client = host.client(timeout=(settings.LXD_PAGE_TIMEOUT[0], 30))
    with audited(request, "image.delete", host=host, target=fingerprint) as entry:
        op = client.delete_image(fingerprint)
        entry.objects = (("image", fingerprint),)
        entry.operation_id = op.id
        if op.id:
            client.wait(op, timeout=settings.LXD_OPERATION_TIMEOUT)


def add_alias(request, host: Host, fingerprint: str, alias: str) -> None:
    """A taken alias: LXD's 409, with where it points now."""
    client = host.client()
    with audited(request, "image.alias.add", host=host, target=f"{alias} -> {fingerprint}"):
        current = client.alias_target(alias)
        if current is not None:
            raise AliasTaken(alias, host.name, current)
        client.add_image_alias(alias, fingerprint)


def remove_alias(request, host: Host, fingerprint: str, alias: str) -> None:
    client = host.client()
    with audited(request, "image.alias.remove", host=host, target=f"{alias} -> {fingerprint}"):
        if client.alias_target(alias) != fingerprint:
            raise AliasNotHere(alias, host.name, fingerprint)
        client.delete_image_alias(alias)


class AliasTaken(LXDError):
    http_status = 409

    def __init__(self, alias: str, host: str, target: str):
        super().__init__(
            f"The alias {alias} is taken on {host}: it points to image {short_fingerprint(target)}. "
            "Remove it there first, or choose another name."
        )


class AliasNotHere(LXDError):
    http_status = 404

    def __init__(self, alias: str, host: str, fingerprint: str):
        super().__init__(f"{host} has no alias {alias} for image {short_fingerprint(fingerprint)}.")
