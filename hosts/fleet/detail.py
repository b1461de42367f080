"""Shaping one full LXD instance (GET /1.0/instances/<n>?recursion=1: state and snapshots
included in 5.0.2) into what the detail page shows; templates never pick LXD JSON apart."""

from __future__ import annotations

import datetime as dt

from ..domain.config_view import config_entries
from ..lxd import network
from ..lxd.sizes import human_bytes
from ..lxd.timestamps import parse_time
from .rows import InstanceRow

_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


def _state_facts(state: dict) -> list[tuple[str, str]]:
    memory = state.get("memory") or {}
    cpu_ns = (state.get("cpu") or {}).get("usage") or 0
    facts = [
        ("Status", state.get("status") or ""),
        ("PID", str(state.get("pid") or "—")),
        ("Processes", str(state.get("processes") if state.get("processes") is not None else "—")),
        ("CPU time", f"{cpu_ns / 1e9:.2f} s"),
        ("Memory", human_bytes(memory.get("usage") or 0)),
        ("Memory peak", human_bytes(memory.get("usage_peak") or 0)),
        ("Swap", human_bytes(memory.get("swap_usage") or 0)),
    ]
    if memory.get("total"):
        facts.append(("Memory limit", human_bytes(memory["total"])))
    return facts


def _disks(state: dict) -> list[tuple[str, str]]:
    out = []
    for device, usage in sorted((state.get("disk") or {}).items()):
        total = usage.get("total") if isinstance(usage, dict) else None
        used = human_bytes((usage or {}).get("usage") or 0)
        out.append((device, f"{used} of {human_bytes(total)}" if total else used))
    return out


def _interfaces(state: dict) -> tuple[list[dict], int]:
    """The first DETAIL_INTERFACES interfaces, each with its first DETAIL_ADDRESSES
    addresses, and how many interfaces were left out."""
    every = network.interfaces(state)
    out = []
    for name, data in every[: network.DETAIL_INTERFACES]:
        counters = data.get("counters") or {}
        every_address = network.addresses(data)
        out.append(
            {
                "name": name,
                "type": data.get("type", ""),
                "state": data.get("state", ""),
                "hwaddr": data.get("hwaddr", ""),
                "mtu": data.get("mtu", ""),
                "host_name": data.get("host_name", ""),
                "addresses": [
                    f"{a.get('address')}/{a.get('netmask')} ({a.get('family')}, {a.get('scope')})"
                    for a in every_address[: network.DETAIL_ADDRESSES]
                ],
                # The live model keeps a bounded network, with the count it cut (detail_network).
                "addresses_not_shown": network.count(data.get(network.NOT_SHOWN))
                + max(0, len(every_address) - network.DETAIL_ADDRESSES),
                "received": f"{human_bytes(counters.get('bytes_received') or 0)}, "
                f"{counters.get('packets_received', 0)} packets",
                "sent": f"{human_bytes(counters.get('bytes_sent') or 0)}, {counters.get('packets_sent', 0)} packets",
                "errors": (counters.get("errors_received", 0) or 0) + (counters.get("errors_sent", 0) or 0),
                "dropped": (counters.get("packets_dropped_inbound", 0) or 0)
                + (counters.get("packets_dropped_outbound", 0) or 0),
            }
        )
    cut = network.count(state.get(network.INTERFACES_NOT_SHOWN))
    return out, cut + max(0, len(every) - network.DETAIL_INTERFACES)


def _devices(instance: dict) -> list[dict]:
    local = instance.get("devices") or {}
    expanded = instance.get("expanded_devices") or local
    return [
        {
            "name": name,
            "type": (spec or {}).get("type", ""),
            "source": "instance" if name in local else "profile",
            "settings": sorted((k, v) for k, v in (spec or {}).items() if k != "type"),
            # the network a nic is on (managed: network=; bridged: parent=), linked by the page
            "network": (spec or {}).get("network") or (spec or {}).get("parent") or ""
            if (spec or {}).get("type") == "nic"
            else "",
            # a custom volume a disk mounts
            "volume": ((spec or {}).get("pool"), (spec or {}).get("source"))
            if (spec or {}).get("type") == "disk" and (spec or {}).get("pool") and (spec or {}).get("source")
            else None,
        }
        for name, spec in sorted(expanded.items())
    ]


def _snapshots(instance: dict) -> list[dict]:
    out = []
    for snap in instance.get("snapshots") or []:
        out.append(
            {
                "name": (snap.get("name") or "").split("/", 1)[-1],
                "created_at": parse_time(snap.get("created_at")),
                "expires_at": parse_time(snap.get("expires_at")),
                "stateful": bool(snap.get("stateful")),
                "size": human_bytes(snap["size"]) if (snap.get("size") or -1) >= 0 else "unknown",
            }
        )
    return sorted(out, key=lambda s: s["created_at"] or _NEVER)


def detail_context(host, instance: dict, logs: list[str], user) -> dict:
    """`user` decides whether secret-bearing config values are shown (hosts.config_view)."""
    state = instance.get("state") or {}
    interfaces, interfaces_not_shown = _interfaces(state)
    return {
        "host": host,
        "name": instance.get("name", ""),
        "row": InstanceRow.from_lxd(host.name, instance),
        "instance": {
            "architecture": instance.get("architecture", ""),
            "description": instance.get("description", ""),
            "ephemeral": instance.get("ephemeral", False),
            "created_at": parse_time(instance.get("created_at")),
            "last_used_at": parse_time(instance.get("last_used_at")),
            "profiles": instance.get("profiles") or [],
            "location": instance.get("location", ""),
        },
        "state_facts": _state_facts(state),
        "disks": _disks(state),
        "interfaces": interfaces,
        "interfaces_not_shown": interfaces_not_shown,
        "config": config_entries(
            instance.get("expanded_config") or instance.get("config"),
            user,
            local=instance.get("config") or {},
        ),
        "devices": _devices(instance),
        "snapshots": _snapshots(instance),
        "logs": logs,
    }
