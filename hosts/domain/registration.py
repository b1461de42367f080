"""Registering an LXD host, as `lxc remote add` does: pin the server certificate, get our
client certificate trusted, and save the host only once all of that has worked."""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ..lxd import Endpoint, LXDClient, LXDError, NotTrusted, TLSIdentity, parse_endpoint
from ..lxd.certs import fetch_server_certificate, fingerprint_of_pem, normalise_fingerprint
from ..lxd.errors import UserError
from ..lxd.server import INCUS, LXD, ServerInfo, ServerKind
from ..models import ClientCertificate, Host, validate_host_name

PROBE_TIMEOUT = 1.5  # a page that registers or re-pins a hanging host answers within ~1.5 s


class RegistrationError(UserError):
    """Registration refused; the message says why, for a person."""


class ConfirmationNeeded(RegistrationError):
    """The server certificate is new to us: its fingerprint must be confirmed first."""

    def __init__(self, fingerprint: str, endpoint: Endpoint):
        self.fingerprint = fingerprint
        self.endpoint = endpoint
        super().__init__(
            f"the server at {endpoint} presents a certificate with sha256 fingerprint {fingerprint}; "
            "confirm it (--fingerprint or --accept-certificate) before it is trusted"
        )


@dataclass(frozen=True)
class TrustToken:
    client_name: str
    fingerprint: str
    addresses: list[str]
    secret: str
    raw: str


def parse_trust_token(raw: str) -> TrustToken:
    """Decode what `lxc config trust add` prints: base64 of a JSON object."""
    value = (raw or "").strip()
    try:
        padded = value + "=" * (-len(value) % 4)
        data = json.loads(base64.b64decode(padded, validate=False).decode())
        token = TrustToken(
            client_name=str(data.get("client_name", "")),
            fingerprint=normalise_fingerprint(str(data["fingerprint"])),
            addresses=[str(a) for a in data.get("addresses") or []],
            secret=str(data["secret"]),
            raw=value,
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, binascii.Error, AttributeError) as exc:
        raise RegistrationError(
            "this is not an LXD trust token (expected what `lxc config trust add` prints)"
        ) from exc
    if len(token.fingerprint) != 64:
        raise RegistrationError("the trust token carries no valid server fingerprint")
    return token


def find_local_socket(kinds: tuple[ServerKind, ...] = (LXD, INCUS)) -> str | None:
    """The first unix socket found where the daemons of `kinds` keep theirs ($LXD_DIR and
    $INCUS_DIR first, as their command line tools look)."""
    dirs = [kind.local_sockets(os.environ)[: 1 if os.environ.get(kind.dir_env) else 0] for kind in kinds]
    candidates = [path for found in dirs for path in found]
    candidates += [path for kind in kinds for path in kind.sockets]
    for path in candidates:
        if _is_socket(path):
            return path
    return None


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def check_name_free(name: str) -> None:
    try:
        validate_host_name(name)
    except ValidationError as exc:
        raise RegistrationError(f"invalid host name {name!r}: {' '.join(exc.messages)}") from exc
    if Host.objects.filter(name=name).exists():
        raise RegistrationError(f"a host named {name!r} is already registered")


def probe_certificate(endpoint: Endpoint) -> tuple[str, str]:
    """(pem, sha256) of the certificate the server presents: nothing is trusted yet."""
    try:
        pem = fetch_server_certificate(endpoint.host, endpoint.port, timeout=PROBE_TIMEOUT)
    except LXDError as exc:
        raise RegistrationError(str(exc)) from exc
    return pem, fingerprint_of_pem(pem)


def register_host(
    name: str,
    url: str,
    *,
    password: str | None = None,
    token: str | None = None,
    fingerprint: str | None = None,
    accept_certificate: bool = False,
    project: str = "default",
    client_certificate: ClientCertificate | None = None,
) -> Host:
    """Register a host or raise RegistrationError; on failure no Host row exists.
    `client_certificate`: present this one rather than the dashboard's own (one imported from a
    command line tool's configuration, saved with the host if it is not saved yet)."""
    check_name_free(name)
    try:
        endpoint = parse_endpoint(url)
    except ValueError as exc:
        raise RegistrationError(str(exc)) from exc
    if password and token:
        raise RegistrationError("give a trust password or a trust token, not both")
    if endpoint.is_unix:
        return _register_unix(name, endpoint, project)
    return _register_https(
        name, endpoint, password, token, fingerprint, accept_certificate, project, client_certificate
    )


def _register_unix(name: str, endpoint: Endpoint, project: str) -> Host:
    if not os.path.exists(endpoint.address):
        raise RegistrationError(f"{endpoint.address} does not exist")
    if not _is_socket(endpoint.address):
        raise RegistrationError(f"{endpoint.address} is not a unix socket")
    client = LXDClient(endpoint, project=project, label=name, timeout=(PROBE_TIMEOUT, PROBE_TIMEOUT))
    try:
        info, _ = client.server()
    except LXDError as exc:
        raise RegistrationError(f"{endpoint.address}: {exc}") from exc
    if info.get("auth") != "trusted":
        raise RegistrationError(f"{endpoint.address} answered but does not trust this user")
    host = Host(name=name, endpoint=endpoint.address, project=project, status=Host.Status.ONLINE)
    host.record_server(ServerInfo.from_metadata(info))
    return _save(host)


def _register_https(
    name, endpoint, password, token, fingerprint, accept_certificate, project, client_cert=None
) -> Host:
    parsed_token = parse_trust_token(token) if token else None
    pem, seen = probe_certificate(endpoint)
    if parsed_token:
        if parsed_token.fingerprint != seen:
            raise RegistrationError(
                f"the server at {endpoint} presents certificate {seen}, "
                f"but the trust token was issued by {parsed_token.fingerprint}: refused"
            )
    elif fingerprint:
        wanted = normalise_fingerprint(fingerprint)
        if wanted != seen:
            raise RegistrationError(
                f"the server at {endpoint} presents certificate {seen}, not the expected {wanted}: refused"
            )
    elif not accept_certificate:
        raise ConfirmationNeeded(seen, endpoint)

    client_cert = client_cert or ClientCertificate.default()
    tls = TLSIdentity(pem, client_cert.certificate, client_cert.private_key_pem())
    client = LXDClient(endpoint, tls=tls, project=project, label=name, timeout=(PROBE_TIMEOUT, 10.0))
    try:
        info, _ = client.server()
        if info.get("auth") != "trusted":
            if parsed_token:
                try:
                    client.request_trust(token=parsed_token.raw, server=ServerInfo.from_metadata(info))
                except NotTrusted as exc:
                    raise RegistrationError(
                        f"{endpoint} refused the trust token ({exc}): it may be wrong, expired or already used"
                    ) from exc
            elif password:
                try:
                    client.request_trust(password=password)
                except NotTrusted as exc:
                    raise RegistrationError(f"{endpoint} refused the trust password ({exc})") from exc
            else:
                raise RegistrationError(
                    f"{endpoint} does not trust this dashboard yet: give its trust password or a trust token"
                )
            info, _ = client.server()
            if info.get("auth") != "trusted":
                raise RegistrationError(
                    f"{endpoint} accepted the request but still reports auth={info.get('auth')!r}"
                )
        server = ServerInfo.from_metadata(info)
        check_unrestricted(client, client_cert.fingerprint, server)
    except LXDError as exc:
        raise RegistrationError(f"{endpoint}: {exc}") from exc
    host = Host(
        name=name,
        endpoint=endpoint.address,
        project=project,
        server_certificate=pem,
        server_fingerprint=seen,
        client_certificate=client_cert,
        status=Host.Status.ONLINE,
    )
    host.record_server(server)
    return _save(host)


def check_unrestricted(client: LXDClient, fingerprint: str, server: ServerInfo) -> None:
    """Refuse a certificate the server trusts in some projects only: the dashboard works on
    the whole server (its config, networks, pools, every project's events), and on Incus a
    restricted certificate even fails with 500 on the projects it may not see."""
    entry = client.own_trust_entry(fingerprint) or {}
    if not entry.get("restricted"):
        return
    projects = ", ".join(str(p) for p in entry.get("projects") or []) or "none"
    cli = server.kind.cli if server.kind else "lxc"
    raise RegistrationError(
        f"{client.label} trusts the dashboard's certificate {fingerprint[:12]} in restricted mode only "
        f"(projects: {projects}), but the dashboard manages the whole server. Lift the restriction "
        f"(`{cli} config trust edit {fingerprint[:12]}`, restricted: false) or remove the entry "
        f"(`{cli} config trust remove {fingerprint[:12]}`) and give an unrestricted trust token, "
        "then register again.",
        403,
    )


def _save(host: Host) -> Host:
    try:
        with transaction.atomic():
            cert = host.client_certificate
            if cert is not None and cert.pk is None:  # imported with this host: saved with it, or not at all
                cert.save()
                host.client_certificate = cert
            host.full_clean()
            host.save()
    except IntegrityError as exc:
        raise RegistrationError(f"a host named {host.name!r} is already registered") from exc
    except ValidationError as exc:
        raise RegistrationError("; ".join(exc.messages)) from exc
    return host


def remove_host(host: Host, *, revoke: bool = False) -> str | None:
    """Delete the host; with revoke, first remove our certificate from its trust store.
    Returns a warning when revoking failed (the host is removed all the same)."""
    warning = None
    sharing = list(
        Host.objects.exclude(pk=host.pk)
        .filter(server_fingerprint=host.server_fingerprint, client_certificate=host.client_certificate)
        .values_list("name", flat=True)
    )
    if revoke and sharing and not host.is_unix:
        # the same server trusts the same certificate for another registered host
        warning = (
            f"the dashboard's certificate was left trusted on {host.name}'s server: "
            f"{', '.join(sharing)} still uses it"
        )
    elif revoke and not host.is_unix and host.client_certificate and host.client_certificate.imported_from:
        warning = (
            f"the certificate {host.name} used is a command line tool's own "
            f"(from {host.client_certificate.imported_from}): it was left trusted, so the tool keeps working"
        )
    elif revoke and not host.is_unix and host.client_certificate:
        try:
            host.client().delete_certificate(host.client_certificate.fingerprint)
        except LXDError as exc:
            warning = f"could not revoke the dashboard's certificate on {host.name}: {exc}"
    host.delete()
    return warning


def repin(host: Host, expected_new_fingerprint: str) -> Host:
    """Pin the certificate the host presents now, after an admin checked its fingerprint."""
    endpoint = parse_endpoint(host.endpoint)
    if endpoint.is_unix:
        raise RegistrationError("a unix socket host has no certificate to pin")
    pem, seen = probe_certificate(endpoint)
    if seen != normalise_fingerprint(expected_new_fingerprint):
        raise RegistrationError(
            f"{host.name} now presents {seen}, not the confirmed {expected_new_fingerprint}"
        )
    host.server_certificate, host.server_fingerprint = pem, seen
    host.save(update_fields=["server_certificate", "server_fingerprint"])
    return host
