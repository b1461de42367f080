"""Asking hosts how they are, all in parallel, each within the page timeout."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..concurrency import parallel
from ..lxd import CertificateMismatch, HostUnreachable, LXDError, NotTrusted
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


def status_of_error(exc: LXDError) -> str:
    if isinstance(exc, CertificateMismatch):
        return Host.Status.CERT_CHANGED
    if isinstance(exc, NotTrusted):
        return Host.Status.UNTRUSTED
    if isinstance(exc, HostUnreachable):
        return Host.Status.OFFLINE
    return Host.Status.OFFLINE


def check_host(host: Host) -> HostState:
    state = probe_host(host)
    remember(state)
    return state


def remember(state: HostState) -> None:
    host = state.host
    if (host.status, host.status_detail) != (state.status, state.detail):
        host.record_status(state.status, state.detail)


def probe_host(host: Host) -> HostState:
    """Ask the host (no database access: safe in worker threads)."""
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


def check_hosts(hosts: list[Host]) -> list[HostState]:
    if not hosts:
        return []
    states = parallel(probe_host, hosts)
    for state in states:
        remember(state)
    return states
