"""Importing the remotes of the `lxc` or `incus` command line tool as hosts.

What the tool keeps (its configuration directory, ~/.config/lxc or ~/.config/incus):
`config.yml` (remotes: name -> addr, protocol, public, auth_type, project), `servercerts/NAME.crt`
(the server certificate it pinned for each remote), `client.crt` + `client.key` (its own
client certificate).  Those files are only ever read here, each at most MAX_FILE_BYTES.

Each remote becomes a host of the same name, or is skipped with the reason:
- an HTTPS remote is registered with the certificate the tool pinned, and refused if the
  server now presents another one;
- it is trusted with the tool's own client certificate when the server already trusts that
  (imported like ours, its key encrypted at rest, and marked as the tool's: never removed from
  a trust store by the dashboard), or else with a trust token given for it;
- the unix socket remote (`local`, addr unix://) becomes a host on the daemon's socket;
- image servers (simplestreams, OCI, public remotes) are not hosts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.views.decorators.debug import sensitive_variables

from ..lxd import LXDClient, LXDError, TLSIdentity, parse_endpoint
from ..lxd.certs import fingerprint_of_pem, load_client_certificate
from ..lxd.errors import UserError
from ..lxd.server import INCUS, LXD
from ..models import ClientCertificate
from . import crypto
from .audit import record
from .registration import (
    PROBE_TIMEOUT,
    RegistrationError,
    check_name_free,
    find_local_socket,
    probe_certificate,
    register_host,
)

MAX_FILE_BYTES = 256 * 1024  # config.yml and each certificate: far more than the tools write
MAX_REMOTES = 200
IMAGE_PROTOCOLS = {"simplestreams": "a simplestreams image server", "oci": "an OCI image registry"}
HOST_PROTOCOLS = {"lxd", "incus", ""}  # "" : lxc leaves it out for `local`
ACTION = "host.import"


class RemotesError(UserError):
    """The tool's configuration cannot be read at all (the whole import is refused)."""


@dataclass
class CLIConfig:
    """What the tool keeps, as read from its directory or as uploaded."""

    source: str  # where it came from, for messages and ClientCertificate.imported_from
    config_yml: str
    server_certs: dict[str, str] = field(default_factory=dict)  # remote name -> PEM
    client_cert: str = ""
    client_key: str = field(default="", repr=False)

    @classmethod
    def from_directory(cls, path: str | Path) -> CLIConfig:
        directory = Path(path).expanduser()
        config = directory / "config.yml"
        if not config.is_file():
            raise RemotesError(
                f"{directory} holds no config.yml: is it the lxc or incus configuration directory?"
            )
        certs = {}
        servercerts = directory / "servercerts"
        if servercerts.is_dir():
            for item in sorted(servercerts.glob("*.crt"))[:MAX_REMOTES]:
                certs[item.name[: -len(".crt")]] = _read(item)
        return cls(
            source=str(directory),
            config_yml=_read(config),
            server_certs=certs,
            client_cert=_read(directory / "client.crt", missing_ok=True),
            client_key=_read(directory / "client.key", missing_ok=True),
        )


def _read(path: Path, *, missing_ok: bool = False) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        if missing_ok:
            return ""
        raise RemotesError(f"{path} does not exist") from None
    except OSError as exc:
        raise RemotesError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise RemotesError(f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB: not the tool's file")
    return data.decode("utf-8", "replace")


@dataclass(frozen=True)
class Remote:
    name: str
    addr: str
    protocol: str = ""
    public: bool = False
    auth_type: str = ""
    project: str = ""

    @property
    def is_unix(self) -> bool:
        return self.addr.startswith("unix:")

    @property
    def wants_token(self) -> bool:
        """Could become a host over HTTPS: a trust token may be given for it."""
        return not self.is_unix and skip_reason(self) is None


def parse_remotes(text: str) -> list[Remote]:
    """The remotes of a config.yml, in the file's order; RemotesError if it is not one."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or "not YAML"
        raise RemotesError(f"config.yml is not valid YAML: {problem}{line}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("remotes"), dict):
        raise RemotesError("config.yml has no `remotes:` mapping: it is not an lxc or incus configuration")
    if len(data["remotes"]) > MAX_REMOTES:
        raise RemotesError(f"config.yml lists more than {MAX_REMOTES} remotes")
    remotes = []
    for name, entry in data["remotes"].items():
        entry = entry if isinstance(entry, dict) else {}
        remotes.append(
            Remote(
                name=str(name),
                addr=str(entry.get("addr") or ""),
                protocol=str(entry.get("protocol") or ""),
                public=entry.get("public") is True,
                auth_type=str(entry.get("auth_type") or ""),
                project=str(entry.get("project") or ""),
            )
        )
    return remotes


def skip_reason(remote: Remote) -> str | None:
    """Why a remote is no host at all, or None."""
    if remote.protocol in IMAGE_PROTOCOLS:
        return f"{IMAGE_PROTOCOLS[remote.protocol]}, not a host"
    if remote.protocol not in HOST_PROTOCOLS:
        return f"its protocol {remote.protocol!r} is not LXD's or Incus'"
    if remote.public:
        return "a public image server, not a host"
    if remote.auth_type not in ("", "tls", "file access"):
        return f"it signs in with {remote.auth_type}: the dashboard uses TLS client certificates only"
    if not remote.addr:
        return "it has no address"
    return None


def parse_server_certs(text: str) -> dict[str, str]:
    """Pasted server certificates: each PEM block after a line with its remote's name."""
    certs, name, block = {}, "", []
    for line in (text or "").splitlines():
        stripped = line.strip()
        if block:
            block.append(stripped)
            if stripped.startswith("-----END"):
                certs[name] = "\n".join(block) + "\n"
                block = []
        elif stripped.startswith("-----BEGIN"):
            if not name:
                raise RemotesError("put the remote's name on the line before each pasted certificate")
            block = [stripped]
        elif stripped:
            name = stripped.rstrip(":")
    if block:
        raise RemotesError(f"the pasted certificate of {name} has no END line")
    return certs


@dataclass
class Outcome:
    remote: str
    imported: bool
    message: str

    @property
    def line(self) -> str:
        return f"{self.remote}: {'imported' if self.imported else 'skipped'} ({self.message})"


@sensitive_variables("tokens", "config")
def import_remotes(
    config: CLIConfig,
    *,
    names: list[str] | None = None,
    tokens: dict[str, str] | None = None,
    user=None,
    actor: str = "",
) -> list[Outcome]:
    """Register the tool's remotes (those in `names`, else all); one Outcome per remote, in the
    file's order (then any name asked for that the file lacks).  RemotesError if the file is
    not a configuration at all."""
    remotes = parse_remotes(config.config_yml)
    wanted = set(names) if names else None
    outcomes = []
    for remote in remotes:
        if wanted is not None and remote.name not in wanted:
            continue
        outcome = _import_one(config, remote, (tokens or {}).get(remote.name, "").strip())
        outcomes.append(outcome)
        record(
            user,
            ACTION,
            host=remote.name,
            target=f"{remote.name} ({remote.addr}) from {config.source}"[:500],
            outcome="ok" if outcome.imported else "failed",
            error="" if outcome.imported else outcome.message,
            actor=actor,
        )
    for missing in sorted((wanted or set()) - {r.name for r in remotes}):
        outcomes.append(Outcome(missing, False, "config.yml has no remote of that name"))
    return outcomes


@sensitive_variables("token", "config")
def _import_one(config: CLIConfig, remote: Remote, token: str) -> Outcome:
    reason = skip_reason(remote)
    if reason is not None:
        return Outcome(remote.name, False, reason)
    try:
        if remote.is_unix:
            return _import_unix(remote)
        return _import_https(config, remote, token)
    except (RegistrationError, LXDError) as exc:
        return Outcome(remote.name, False, str(exc))


def _import_unix(remote: Remote) -> Outcome:
    path = remote.addr[len("unix://") :]
    if not path:
        kinds = (INCUS,) if remote.protocol == "incus" else (LXD,)
        path = find_local_socket(kinds)
        if path is None:
            where = " or ".join(kinds[0].local_sockets(os.environ))
            raise RegistrationError(f"no {kinds[0].label} socket found at {where}")
    host = register_host(remote.name, path, project=remote.project or "default")
    return Outcome(remote.name, True, f"as host {host.name} on {host.endpoint}")


@sensitive_variables("token", "config", "identity")
def _import_https(config: CLIConfig, remote: Remote, token: str) -> Outcome:
    try:
        endpoint = parse_endpoint(remote.addr)
    except ValueError as exc:
        raise RegistrationError(str(exc)) from exc
    pinned_pem = config.server_certs.get(remote.name, "")
    if not pinned_pem:
        raise RegistrationError(
            f"servercerts/ holds no certificate for it (the tool trusts it through a CA): register it with "
            f"`manage.py addhost {remote.name} {endpoint}` and confirm its fingerprint"
        )
    try:
        pinned = fingerprint_of_pem(pinned_pem)
    except ValueError as exc:
        raise RegistrationError(f"servercerts/{remote.name}.crt is not a PEM certificate") from exc
    check_name_free(remote.name)  # a clash is said before the server is asked anything
    _, seen = probe_certificate(endpoint)
    if seen != pinned:
        raise RegistrationError(
            f"{endpoint} now presents certificate {seen}, not the one the tool pinned ({pinned}): refused. "
            "If the server's certificate was renewed, check it and register it with addhost"
        )
    project = remote.project or "default"
    identity = _tool_identity(config, endpoint, pinned_pem)
    if identity is not None:
        host = register_host(
            remote.name, str(endpoint), fingerprint=pinned, project=project, client_certificate=identity
        )
        how = "the tool's own client certificate"
    elif token:
        host = register_host(remote.name, str(endpoint), token=token, fingerprint=pinned, project=project)
        how = "the dashboard's certificate, trusted with the token"
    else:
        why = (
            "the tool has no client certificate"
            if not config.client_cert
            else "it does not trust the tool's certificate"
        )
        raise RegistrationError(f"{why}: give a trust token for it (`{_cli(remote)} config trust add`)")
    return Outcome(remote.name, True, f"as host {host.name} on {endpoint}, pinned {pinned[:12]}, {how}")


def _cli(remote: Remote) -> str:
    return INCUS.cli if remote.protocol == "incus" else LXD.cli


@sensitive_variables("config", "loaded")
def _tool_identity(config: CLIConfig, endpoint, server_pem: str) -> ClientCertificate | None:
    """The tool's client certificate if this server trusts it (the saved one if imported before,
    else a new unsaved one that registration saves with the host), else None."""
    if not (config.client_cert and config.client_key):
        return None
    try:
        loaded = load_client_certificate(config.client_cert, config.client_key)
    except ValueError as exc:
        raise RegistrationError(f"client.crt and client.key cannot be used: {exc}") from exc
    tls = TLSIdentity(server_pem, loaded.certificate_pem, loaded.private_key_pem)
    client = LXDClient(endpoint, tls=tls, label=str(endpoint), timeout=(PROBE_TIMEOUT, 10.0))
    if client.server()[0].get("auth") != "trusted":
        return None
    existing = ClientCertificate.objects.filter(fingerprint=loaded.fingerprint).first()
    if existing is not None:
        return existing
    return ClientCertificate(
        name=f"imported-{loaded.fingerprint[:16]}",
        certificate=loaded.certificate_pem,
        private_key_encrypted=crypto.encrypt(loaded.private_key_pem),
        fingerprint=loaded.fingerprint,
        not_after=loaded.not_after,
        imported_from=config.source[:255],
    )


_TOKEN_OPTION = re.compile(r"^([^=\s]+)=(\S+)$")


def parse_token_options(values: list[str]) -> dict[str, str]:
    """--token NAME=TOKEN, given once per remote."""
    tokens = {}
    for value in values or []:
        match = _TOKEN_OPTION.match(value.strip())
        if not match:
            raise RemotesError("give each token as --token REMOTE=TOKEN")
        tokens[match.group(1)] = match.group(2)
    return tokens
