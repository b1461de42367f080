"""Rotating the dashboard's client certificate on every host, with no host left unreachable.

For each HTTPS host: trust the new certificate through the connection that is trusted now
(same name, restriction and projects as the old entry), verify it with a request made with
the new certificate, and only then switch the host to it.  Once every host has been tried,
the old certificate is removed from the trust store of each host that switched (unless a
registered host on the same server still uses it), and an old private key that no host
uses any more is deleted.  A host that fails keeps its old certificate and works as before.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.db import transaction

from ..lxd import LXDAPIError, LXDClient, LXDError, TLSIdentity, parse_endpoint
from ..models import AuditEntry, ClientCertificate, Host
from .audit import record
from .registration import PROBE_TIMEOUT

ACTION = "certificate.rotate"


@dataclass
class HostRotation:
    host: str
    old_fingerprint: str
    switched: bool = False
    error: str = ""  # why it did not switch
    old_left: str = ""  # why the old certificate is still trusted on it (when it switched)


@dataclass
class Rotation:
    new_fingerprint: str
    hosts: list[HostRotation]
    deleted: list[str]  # old certificates whose private keys were deleted
    kept: list[str]  # old certificates some host still uses

    @property
    def failed(self) -> list[HostRotation]:
        return [h for h in self.hosts if not h.switched]


def _client_with(host: Host, cert: ClientCertificate) -> LXDClient:
    return LXDClient(
        parse_endpoint(host.endpoint),
        tls=TLSIdentity(host.server_certificate, cert.certificate, cert.private_key_pem()),
        project=host.project,
        label=host.name,
        timeout=(PROBE_TIMEOUT, 10.0),
    )


def _switch(host: Host, old: ClientCertificate, new: ClientCertificate) -> None:
    """Trust `new` on the host through the connection trusted now, and prove it works."""
    current = _client_with(host, old)
    try:
        entry = current.certificate(old.fingerprint)
    except LXDAPIError as exc:
        if exc.error_code != 404:
            raise
        entry = {}
    if new.fingerprint not in {c.get("fingerprint") for c in current.certificates()}:
        current.add_trusted_certificate(
            new.certificate,
            name=entry.get("name") or "lxd-dashboard",
            restricted=bool(entry.get("restricted")),
            projects=entry.get("projects") or [],
        )
    info, _ = _client_with(host, new).server()
    if info.get("auth") != "trusted":
        raise LXDError(f"{host.name} took the new certificate but reports auth={info.get('auth')!r} with it")


def _retire(host: Host, old: ClientCertificate, new: ClientCertificate) -> str:
    """Remove the old certificate from the host's trust store (through the new one); the
    reason it stays, or ""."""
    if old.imported_from:
        return (
            f"the old certificate is a command line tool's own (from {old.imported_from}): it stays trusted"
        )
    sharing = Host.objects.filter(server_fingerprint=host.server_fingerprint, client_certificate=old)
    if sharing.exists():
        names = ", ".join(sharing.values_list("name", flat=True))
        return f"the old certificate stays trusted on {host.name}'s server: {names} still uses it"
    try:
        _client_with(host, new).delete_certificate(old.fingerprint)
    except LXDAPIError as exc:
        if exc.error_code != 404:  # 404: another host on the same server removed it already
            return f"the old certificate could not be removed from {host.name}: {exc}"
    except LXDError as exc:
        return f"the old certificate could not be removed from {host.name}: {exc}"
    return ""


def rotate_client_certificate(actor: str = "manage.py rotate_client_certificate") -> Rotation:
    new = ClientCertificate.generate(f"rotating-{secrets.token_hex(8)}")
    hosts = [
        h
        for h in Host.objects.select_related("client_certificate").order_by("name")
        if not h.is_unix and h.client_certificate is not None
    ]
    olds = {h.pk: h.client_certificate for h in hosts}
    results = {h.pk: HostRotation(h.name, olds[h.pk].fingerprint) for h in hosts}

    for host in hosts:
        try:
            _switch(host, olds[host.pk], new)
        except LXDError as exc:
            results[host.pk].error = str(exc)
            continue
        host.client_certificate = new
        host.save(update_fields=["client_certificate"])
        results[host.pk].switched = True

    for host in hosts:
        done = results[host.pk]
        target = f"{done.old_fingerprint[:12]} -> {new.fingerprint[:12]}"
        if done.switched:
            done.old_left = _retire(host, olds[host.pk], new)
            record(None, ACTION, host=host, target=target, error=done.old_left, actor=actor)
        else:
            outcome = AuditEntry.Outcome.FAILED
            record(None, ACTION, host=host, target=target, outcome=outcome, error=done.error, actor=actor)
    return _settle(new, list(results.values()), set(olds.values()))


def _settle(new: ClientCertificate, results: list[HostRotation], olds: set[ClientCertificate]) -> Rotation:
    """Delete the old keys no host uses and make the new certificate the one new
    registrations use, unless every host refused it."""
    previous = ClientCertificate.objects.filter(name=ClientCertificate.DEFAULT_NAME).first()
    candidates = olds | ({previous} if previous else set())
    with transaction.atomic():
        if results and not any(r.switched for r in results):
            new.delete()
            return Rotation(new.fingerprint, results, [], sorted(c.fingerprint for c in candidates))
        deleted, kept = [], []
        for cert in candidates:
            if cert.hosts.exists():
                kept.append(cert.fingerprint)
                if cert.name == ClientCertificate.DEFAULT_NAME:
                    cert.name = f"retired-{cert.fingerprint[:16]}"
                    cert.save(update_fields=["name"])
            else:
                deleted.append(cert.fingerprint)
                cert.delete()
        new.name = ClientCertificate.DEFAULT_NAME
        new.save(update_fields=["name"])
    return Rotation(new.fingerprint, results, sorted(deleted), sorted(kept))
