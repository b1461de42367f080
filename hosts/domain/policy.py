"""What a role may write into an instance's or a profile's config, devices and profile list.

Operators run instances; they must not own the hosts.  Much of LXD's config is a way out of the
container (security.privileged, raw.lxc mount entries, raw.idmap, linux.kernel_modules, host
paths in disk devices, unix-char/gpu/usb passthrough ...), so operators get an allow-list and
everything else needs the admin role.  Admins may write everything.

Every path that writes instance or profile config calls `check_write` before any LXD call:

    check_write(request.user, host, config=..., devices=..., profiles=...)

It raises `PolicyRefused` (HTTP 403) naming every refused key, device and profile.  This module
renders no HTML and speaks no LXD.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..lxd.errors import UserError
from ..lxd.names import DOT_SEGMENTS
from .roles import ADMIN, OPERATOR, RANK, user_role

# Config keys an operator may write (prefixes); limits.kernel.* raises rlimits past the host's.
OPERATOR_CONFIG_PREFIXES = (
    "limits.",
    "user.",
    "environment.",
    "cloud-init.",
    "boot.",
    "snapshots.",
    "image.",
)
ADMIN_CONFIG_PREFIXES = ("limits.kernel.",)

# Device keys an operator may write, per device type; `limits.*` is allowed on nic and disk.
NIC_KEYS = frozenset(
    {"type", "name", "network", "hwaddr", "mtu", "ipv4.address", "ipv6.address", "boot.priority"}
)
DISK_KEYS = frozenset({"type", "path", "pool", "source", "size", "readonly", "boot.priority"})

# LXD attaches this when a new instance is given no profile list.
DEFAULT_PROFILES = ("default",)

OPERATOR_CONFIG_HELP = "operators may set limits.* (not limits.kernel.*), " + ", ".join(
    p + "*" for p in OPERATOR_CONFIG_PREFIXES[1:]
)


class PolicyRefused(UserError):
    """The role may not write this.  `refused` lists every refusal, each naming its subject."""

    http_status = 403

    def __init__(self, refused: list[str]):
        self.refused = refused
        super().__init__("; ".join(refused))


def check_write(
    who,
    host,
    *,
    config: Mapping[str, Any] | None = None,
    devices: Mapping[str, Mapping[str, Any] | None] | None = None,
    profiles: Iterable[str] | None = None,
) -> None:
    """Raise PolicyRefused unless `who` (a user or a role name) may write all of this on `host`.

    - config: the keys the write sets or unsets (for an edit, only the changed ones).
    - devices: name -> device config the write adds or changes; None for a device it removes
      (removing only takes away what the instance had).
    - profiles: the profile list the write sends.  None means the request sends no list, and
      LXD then applies `default`: judged as ["default"].  Pass () for a write that leaves the
      profiles alone.
    """
    role = who if isinstance(who, str) else user_role(who)
    refused = refusals(role, host, config=config, devices=devices, profiles=profiles)
    if refused:
        raise PolicyRefused(refused)


def refusals(
    role: str | None,
    host,
    *,
    config: Mapping[str, Any] | None = None,
    devices: Mapping[str, Mapping[str, Any] | None] | None = None,
    profiles: Iterable[str] | None = None,
) -> list[str]:
    """Every reason `role` may not write this on `host` (empty: allowed)."""
    if role == ADMIN:
        return []
    if role not in RANK or RANK[role] < RANK[OPERATOR]:
        return [f"changing instances needs the operator role; you are a {role or 'anonymous user'}"]
    found = [refusal for key in sorted(config or {}) if (refusal := config_refusal(key))]
    if found:  # what is allowed, said once
        found[0] += f" ({OPERATOR_CONFIG_HELP})"
    for name, device in sorted((devices or {}).items()):
        found.extend(device_refusals(name, device))
    attached = DEFAULT_PROFILES if profiles is None else tuple(profiles)
    allowed = set(getattr(host, "operator_profiles", None) or ())
    found.extend(
        f"profile {name} is not allowed for operators on {host.name} (an admin allows profiles on the host page)"
        for name in dict.fromkeys(attached)
        if name not in allowed
    )
    return found


def config_key_allowed(key: str) -> bool:
    """May an operator write this instance/profile config key?"""
    return (
        key.startswith(OPERATOR_CONFIG_PREFIXES)
        and not key.startswith(ADMIN_CONFIG_PREFIXES)
        and not any(key == prefix for prefix in OPERATOR_CONFIG_PREFIXES)
    )


def config_refusal(key: str) -> str | None:
    if config_key_allowed(key):
        return None
    return f"{key} needs the admin role"


def _extra_keys(device: Mapping[str, Any], allowed: frozenset[str], limits: bool) -> list[str]:
    return sorted(
        key
        for key in device
        if key not in allowed and not (limits and key.startswith("limits.") and key != "limits.")
    )


def device_refusals(name: str, device: Mapping[str, Any] | None) -> list[str]:
    """Why an operator may not add or change device `name` (empty: allowed)."""
    if device is None:
        return []
    if not isinstance(device, Mapping):
        return [f"device {name} is not a set of key = value"]
    kind = device.get("type")
    if kind == "none":
        extra = _extra_keys(device, frozenset({"type"}), limits=False)
        return [f"device {name}: none device key {key} needs the admin role" for key in extra]
    if kind == "nic":
        found = [
            f"device {name}: nic key {key} needs the admin role"
            for key in _extra_keys(device, NIC_KEYS, True)
        ]
        if not device.get("network"):
            found.append(
                f"device {name}: operators attach a nic only through a managed network (network = NAME); "
                "nictype and parent need the admin role"
            )
        return found
    if kind == "disk":
        found = [
            f"device {name}: disk key {key} needs the admin role"
            for key in _extra_keys(device, DISK_KEYS, True)
        ]
        source = str(device.get("source") or "")
        if not device.get("pool"):
            found.append(
                f"device {name}: operators attach a disk only from a storage pool (pool = NAME); "
                "host paths need the admin role"
            )
        elif source and ("/" in source or source in DOT_SEGMENTS):
            found.append(
                f"device {name}: source {source} is not a custom volume name; host paths need the admin role"
            )
        return found
    if not kind:
        return [f"device {name} has no type"]
    return [f"device {name}: type {kind} needs the admin role"]
