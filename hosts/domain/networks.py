"""A host's networks: what each is (addresses, NAT, state, leases, users) and the admin's
writes to its managed bridges.  No HTML.

LXD 5.0.2 creates a bridge whose subnet overlaps another network's (hosts/lxd/networks.py):
the host then has two routes for one subnet.  The dashboard refuses that itself, naming the
other network, before LXD is asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..concurrency import parallel
from ..lxd import LXDAPIError, LXDClient, LXDError
from ..lxd.networks import NetworkSubnet, Subnet, configured_subnets, overlaps, parse_cidr, state_subnets
from ..lxd.operation import parse_objects
from ..models import Host
from .audit import audited

STATE_LIMIT = 64  # interfaces whose state the list asks for (a host may have hundreds of veths)


@dataclass
class NetworkRow:
    name: str
    type: str
    managed: bool
    description: str = ""
    status: str = ""
    config: dict = field(default_factory=dict)
    used_by: tuple[tuple[str, str], ...] = ()
    state: dict | None = None

    @classmethod
    def from_lxd(cls, data: dict, state: dict | None = None) -> NetworkRow:
        return cls(
            name=str(data.get("name") or ""),
            type=str(data.get("type") or ""),
            managed=bool(data.get("managed")),
            description=str(data.get("description") or ""),
            status=str(data.get("status") or ""),
            config=dict(data.get("config") or {}),
            used_by=parse_objects({"used_by": data.get("used_by") or []}),
            state=state,
        )

    @property
    def addresses(self) -> list[str]:
        """CIDRs: from the config of a managed network, from its state for the others."""
        if self.managed:
            return [
                self.config[k]
                for k in ("ipv4.address", "ipv6.address")
                if self.config.get(k, "") not in ("", "none")
            ]
        return [
            f"{a.get('address')}/{a.get('netmask')}"
            for a in (self.state or {}).get("addresses") or []
            if isinstance(a, dict) and a.get("scope") == "global"
        ]

    @property
    def nat(self) -> str:
        """IPv4 NAT of a managed bridge: "on"/"off" ("" where it does not apply)."""
        if not self.managed or self.config.get("ipv4.address", "") in ("", "none"):
            return ""
        return "on" if str(self.config.get("ipv4.nat", "")).lower() == "true" else "off"

    @property
    def members(self) -> list[str]:
        return list(((self.state or {}).get("bridge") or {}).get("upper_devices") or [])

    @property
    def counters(self) -> dict:
        return (self.state or {}).get("counters") or {}

    @property
    def subnets(self) -> list[NetworkSubnet]:
        if self.managed:
            return configured_subnets(self.name, self.config)
        return state_subnets(self.name, self.state)


def network_rows(client: LXDClient) -> list[NetworkRow]:
    """Every network of the host with its state (asked in parallel, the first STATE_LIMIT)."""
    listing = sorted(client.networks(), key=lambda n: (not n.get("managed"), str(n.get("name"))))
    names = [str(n.get("name")) for n in listing[:STATE_LIMIT]]
    states = dict(zip(names, parallel(client.network_state, names), strict=True))
    return [NetworkRow.from_lxd(n, states.get(str(n.get("name")))) for n in listing]


def network(client: LXDClient, name: str) -> tuple[NetworkRow, str]:
    data, etag = client.network_and_etag(name)
    return NetworkRow.from_lxd(data, client.network_state(name)), etag


class NetworkOverlap(LXDError):
    http_status = 409

    def __init__(self, subnet: Subnet, clashes: list[NetworkSubnet], host: str):
        self.subnet = subnet
        others = ", ".join(f"{c.network} ({c.subnet})" for c in clashes)
        super().__init__(
            f"{subnet} overlaps {others} on {host}: the host would have two routes for the same "
            "addresses. Choose a subnet no other network uses."
        )


class NetworkInUse(LXDError):
    http_status = 409

    def __init__(self, reason: str, name: str, used_by: tuple[tuple[str, str], ...]):
        users = ", ".join(f"{kind} {who}" for kind, who in used_by) or "something LXD does not list"
        super().__init__(f"LXD refused: {reason}. {name} is used by {users}: detach it from them first.")


def check_addresses(client: LXDClient, name: str, config: dict[str, str]) -> None:
    """Refuse config whose ipv4/ipv6 subnet overlaps another network of the host."""
    wanted = configured_subnets(name, config)
    if not wanted:
        return
    others = [s for row in network_rows(client) if row.name != name for s in row.subnets]
    for subnet in wanted:
        if clashes := overlaps(subnet.subnet, others, skip=name):
            raise NetworkOverlap(subnet.subnet, clashes, client.label)


def address_value(value: str, family: str) -> str:
    """A bridge's `ipv4.address`/`ipv6.address` as the form gives it: CIDR or "none"
    (never LXD's `auto`, which picks a subnet nobody chose)."""
    value = (value or "").strip()
    if value == "none":
        return value
    try:
        address = parse_cidr(value)
    except ValueError as exc:
        raise ValueError(f"{family}: {exc}, or none") from exc
    if address.version != (4 if family == "IPv4" else 6):
        raise ValueError(f"{family}: {value} is not an {family} address")
    return str(address)


def create_bridge(request, host: Host, name: str, config: dict[str, str], description: str = "") -> None:
    client = host.client(timeout=(0.5, 30))
    with audited(request, "network.create", host=host, target=name):
        check_addresses(client, name, config)
        client.create_network(name, "bridge", config, description)


def edit_network(request, host: Host, name: str, config: dict[str, str], description: str, etag: str) -> None:
    client = host.client(timeout=(0.5, 30))
    with audited(request, "network.edit", host=host, target=name):
        check_addresses(client, name, config)
        client.put_network(name, config, description, etag)


def rename_network(request, host: Host, name: str, new_name: str) -> None:
    client = host.client(timeout=(0.5, 30))
    with audited(request, "network.rename", host=host, target=f"{name} -> {new_name}"):
        _refused_in_use(client, name, lambda: client.rename_network(name, new_name))


def delete_network(request, host: Host, name: str) -> None:
    client = host.client(timeout=(0.5, 30))
    with audited(request, "network.delete", host=host, target=name):
        _refused_in_use(client, name, lambda: client.delete_network(name))


def _refused_in_use(client: LXDClient, name: str, write) -> None:
    try:
        write()
    except LXDAPIError as exc:
        if "in use" not in exc.message:
            raise
        data, _ = client.network_and_etag(name)
        raise NetworkInUse(exc.message, name, NetworkRow.from_lxd(data).used_by) from exc
