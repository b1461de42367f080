"""Asking hosts how they are, all in parallel, each within the page timeout."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..concurrency import parallel
from ..lxd import CertificateMismatch, LXDError, NotTrusted
from ..lxd.server import ServerInfo
from ..models import Host


@dataclass
class HostState:
    host: Host
    status: str
    detail: str = ""
    info: dict = field(default_factory=dict)
    etag: str = ""
    error: LXDError | None = None

    @property
    def online(self) -> bool:
        return self.status == Host.Status.ONLINE

    @property
    def label(self) -> str:
        return Host.Status(self.status).label

    @property
    def server(self) -> ServerInfo:
        """LXD or Incus and its version: as the host says now, else as it said last."""
        seen = ServerInfo.from_metadata(self.info)
        return seen if seen.kind is not None else self.host.server


def status_of_error(exc: Exception) -> str:
    """What a failure to reach a host says of it."""
    if isinstance(exc, CertificateMismatch):
        return Host.Status.CERT_CHANGED
    if isinstance(exc, NotTrusted):
        return Host.Status.UNTRUSTED
    return Host.Status.OFFLINE


def probe_host(host: Host) -> HostState:
    """Ask the host how it is, now (no database access: safe in worker threads).  What a page
    shows; the stored Host.status has one writer, the events relay, which watches all along."""
    try:
        info, etag = host.client().server()
    except LXDError as exc:
        state = HostState(host, status_of_error(exc), str(exc), error=exc)
    else:
        if info.get("auth") != "trusted":
            state = HostState(
                host, Host.Status.UNTRUSTED, f"{host.name} no longer trusts this dashboard", info
            )
        else:
            state = HostState(host, Host.Status.ONLINE, "", info, etag)
    return state


def probe_hosts(hosts: list[Host]) -> list[HostState]:
    return parallel(probe_host, hosts)
