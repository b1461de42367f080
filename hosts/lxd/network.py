"""An instance state's network (`state.network`: interface -> type, state, addresses), bounded.

LXD reports every interface and address an instance has, and an instance (or a host that
lies) may have thousands: what the dashboard keeps of them is cut to fixed limits here, and
what was cut is counted so a page can say "N more".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

ROW_ADDRESSES = 8  # global addresses a fleet row shows (and the relay sends)
DETAIL_INTERFACES = 32  # interfaces the instance page shows
DETAIL_ADDRESSES = 16  # addresses per interface the instance page shows
NOT_SHOWN = "addresses_not_shown"  # what shown_network adds to a state: the count it cut


def count(value: Any) -> int:
    """A count LXD (or our own bounding) reported, as a non-negative int."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def interfaces(state: dict | None) -> list[tuple[str, dict]]:
    """(name, data) of every interface, by name."""
    network = (state or {}).get("network")
    if not isinstance(network, dict):
        return []
    return sorted((str(k), v) for k, v in network.items() if isinstance(v, dict))


def addresses(data: dict) -> list[dict]:
    return [a for a in data.get("addresses") or [] if isinstance(a, dict)]


def _global(state: dict | None) -> Iterator[tuple[str, dict, dict]]:
    """(interface, its data, address) for each global address, loopback skipped."""
    for name, data in interfaces(state):
        if data.get("type") == "loopback" or name == "lo":
            continue
        for address in addresses(data):
            if address.get("scope") == "global":
                yield name, data, address


def global_addresses(state: dict | None, limit: int = ROW_ADDRESSES) -> tuple[list[str], list[str], int]:
    """The first `limit` global IPv4 and IPv6 addresses (link/local scopes skipped), and
    how many more the instance has."""
    ipv4: list[str] = []
    ipv6: list[str] = []
    more = count((state or {}).get(NOT_SHOWN))
    for _, _, address in _global(state):
        if len(ipv4) + len(ipv6) >= limit:
            more += 1
            continue
        (ipv4 if address.get("family") == "inet" else ipv6).append(str(address.get("address", "")))
    return ipv4, ipv6, more


def shown_network(state: dict | None, limit: int = ROW_ADDRESSES) -> dict:
    """{"network": ..., NOT_SHOWN: n}: the part of a state's network that global_addresses
    shows, in LXD's shape, and the count of the rest.  What the relay copies to every
    browser's channel, however many interfaces the instance has."""
    network: dict[str, dict] = {}
    kept, more = 0, count((state or {}).get(NOT_SHOWN))
    for name, data, address in _global(state):
        if kept >= limit:
            more += 1
            continue
        entry = network.setdefault(
            name, {"type": data.get("type", ""), "state": data.get("state", ""), "addresses": []}
        )
        entry["addresses"].append({k: address.get(k) for k in ("family", "scope", "address", "netmask")})
        kept += 1
    return {"network": network, NOT_SHOWN: more}


INTERFACES_NOT_SHOWN = "interfaces_not_shown"  # what detail_network adds to a state: interfaces cut


def detail_network(state: dict | None) -> dict:
    """{"network": ..., INTERFACES_NOT_SHOWN: n}: the part of a state's network the instance
    page shows (DETAIL_INTERFACES interfaces, DETAIL_ADDRESSES addresses each, in LXD's shape
    with their counters; each cut interface says how many addresses it lost under NOT_SHOWN),
    and the count of interfaces left out.  What the live model keeps for the instance page."""
    every = interfaces(state)
    network: dict[str, dict] = {}
    for name, data in every[:DETAIL_INTERFACES]:
        kept = {k: data.get(k) for k in ("type", "state", "hwaddr", "mtu", "host_name", "counters")}
        every_address = addresses(data)
        kept["addresses"] = [
            {k: a.get(k) for k in ("family", "scope", "address", "netmask")}
            for a in every_address[:DETAIL_ADDRESSES]
        ]
        kept[NOT_SHOWN] = count(data.get(NOT_SHOWN)) + max(0, len(every_address) - DETAIL_ADDRESSES)
        network[name] = kept
    more = count((state or {}).get(INTERFACES_NOT_SHOWN)) + max(0, len(every) - DETAIL_INTERFACES)
    return {"network": network, INTERFACES_NOT_SHOWN: more}
