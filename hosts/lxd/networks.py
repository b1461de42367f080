"""Network intentions of LXDClient (mixed into LXDClient), and what a network's addresses mean.

What LXD 5.0.2 does (checked on the lab):
- `/1.0/networks` lists the host's every interface: managed bridges LXD made, and unmanaged
  ones (the host's own eth0, bridges of other daemons in the same network namespace), whose
  addresses only their `/state` tells;
- it creates a bridge whose subnet overlaps another managed bridge's, as long as the gateway
  address differs (two routes for one subnet: the host's routing breaks); a taken gateway
  address fails later, in dnsmasq ("Address already in use");
- a network in use (an instance's nic, a profile) is refused on delete ("The network is
  currently in use") and on rename ("Network is currently in use"), without saying by what:
  `used_by` does;
- `ipv4.address: auto` picks a free private subnet and `ipv4.nat` defaults to true on a new
  bridge: whoever creates one should say what they want;
- PUT replaces config and description (ETag on the GET); POST renames.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from .errors import LXDAPIError

Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


def _q(name: str) -> str:
    return quote(name, safe="")


class NetworksAPI:
    """Methods here use self.call / self.get from LXDClient."""

    def networks(self) -> list[dict]:
        return self.get("/1.0/networks", params={"recursion": 1}) or []

    def network_and_etag(self, name: str) -> tuple[dict, str]:
        data, response = self.call("GET", f"/1.0/networks/{_q(name)}")
        return data, response.headers.get("ETag", "")

    def network_state(self, name: str) -> dict | None:
        """Addresses, counters, bridge members; None for an interface LXD cannot describe."""
        try:
            return self.get(f"/1.0/networks/{_q(name)}/state")
        except LXDAPIError as exc:
            if exc.error_code in (400, 404, 500):
                return None
            raise

    def network_leases(self, name: str) -> list[dict]:
        """DHCP leases of a managed network (and its gateway's own entry)."""
        return self.get(f"/1.0/networks/{_q(name)}/leases") or []

    def create_network(self, name: str, kind: str, config: dict[str, str], description: str = "") -> None:
        body = {"name": name, "type": kind, "config": config, "description": description}
        self.call("POST", "/1.0/networks", json_body=body)

    def put_network(self, name: str, config: dict[str, str], description: str, etag: str) -> None:
        """Replace the config (and description); refused (412) if the ETag moved."""
        headers = {"If-Match": etag} if etag else {}
        body = {"config": config, "description": description}
        self.call("PUT", f"/1.0/networks/{_q(name)}", json_body=body, headers=headers)

    def rename_network(self, name: str, new_name: str) -> None:
        self.call("POST", f"/1.0/networks/{_q(name)}", json_body={"name": new_name})

    def delete_network(self, name: str) -> None:
        self.call("DELETE", f"/1.0/networks/{_q(name)}")


# -- addresses ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkSubnet:
    network: str  # whose
    subnet: Subnet


def parse_cidr(value: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """An address with its prefix, as `ipv4.address`/`ipv6.address` hold it (10.0.0.1/24);
    ValueError for anything else (LXD's keywords `auto` and `none` included)."""
    if "/" not in value:
        raise ValueError(f"{value!r} is not an address with its prefix length, e.g. 10.251.5.1/24")
    return ipaddress.ip_interface(value.strip())


def configured_subnets(name: str, config: dict) -> list[NetworkSubnet]:
    """The subnets a managed network's config sets (keywords such as auto/none skipped)."""
    found = []
    for key in ("ipv4.address", "ipv6.address"):
        try:
            found.append(NetworkSubnet(name, parse_cidr(str(config.get(key) or "")).network))
        except ValueError:
            continue
    return found


def state_subnets(name: str, state: dict | None) -> list[NetworkSubnet]:
    """The subnets an interface's state shows (global scope only)."""
    found = []
    for address in (state or {}).get("addresses") or []:
        if not isinstance(address, dict) or address.get("scope") != "global":
            continue
        try:
            interface = ipaddress.ip_interface(f"{address.get('address')}/{address.get('netmask')}")
        except ValueError:
            continue
        found.append(NetworkSubnet(name, interface.network))
    return found


def overlaps(subnet: Subnet, others: Iterable[NetworkSubnet], *, skip: str = "") -> list[NetworkSubnet]:
    """The other networks' subnets that share addresses with `subnet`."""
    return [
        other
        for other in others
        if other.network != skip and other.subnet.version == subnet.version and other.subnet.overlaps(subnet)
    ]
