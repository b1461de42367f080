"""Editing an instance's own config, devices and profile list (no HTML).

The page shows what the instance has of its own (LXD's `config` without `volatile.*`, its
`devices`, its `profiles`) and a preview of what that expands to, each key and device marked
with where it comes from.  A save sends only what the person changed through the write policy
(`check_write`: only the changed keys, removed devices as None, the profile list only when it
changed), then writes the instance with `PUT` and LXD's ETag.

Why a version of our own next to LXD's ETag: LXD's instance ETag covers `volatile.*` keys,
which LXD rewrites on every start (a page opened before a start would then always be refused),
and it does not cover the description.  The page carries `version`, a digest of what it was
built from (own config without volatile keys, devices, profiles); a save re-reads the instance,
refuses (409, with the fresh values) if that digest moved, and sends the PUT with the ETag of
that re-read, so a change made by anyone between the two is refused by LXD itself (412).
Secret-bearing values (hosts.lxd.config) never reach a page of someone who may not see them,
and values of several lines (raw.lxc, cloud-init) do not fit a `key = value` line: such keys
stay as they are unless the person names them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from ..lxd import LXDClient, LXDError
from ..lxd.config import is_secret_key, needs_restart
from ..lxd.errors import LXDAPIError, UserError
from ..lxd.profiles import expand
from ..models import AuditEntry, Host
from .actions import instance_lock
from .audit import audited, record
from .config_view import HIDDEN, config_value
from .policy import PolicyRefused, check_write
from .roles import may_see_secrets

VOLATILE = "volatile."


def own_config(instance: dict) -> dict[str, str]:
    """The instance's own config as a person edits it: LXD's bookkeeping left out."""
    return {
        k: config_value(v) for k, v in (instance.get("config") or {}).items() if not k.startswith(VOLATILE)
    }


def editable(config: dict[str, str], user) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """Config as an editor shows it to `user`: (key = value lines, keys whose values are hidden
    from them, keys whose values hold several lines).  The last two are kept unless named."""
    reveal = may_see_secrets(user)
    hidden = sorted(k for k in config if not reveal and is_secret_key(k))
    multiline = {k: v for k, v in config.items() if k not in hidden and "\n" in v.strip()}
    shown = {k: v for k, v in config.items() if k not in hidden and k not in multiline}
    return shown, hidden, multiline


def with_kept(before: dict[str, str], submitted: dict[str, str], kept) -> dict[str, str]:
    """The whole config to write: what came back ("" unsets), and each kept key it did not name."""
    config = {k: v for k, v in submitted.items() if v != ""}
    config.update({k: before[k] for k in kept if k not in submitted and k in before})
    return config


def version_of(instance: dict) -> str:
    """A digest of what an edit starts from (see the module's docstring)."""
    shape = [own_config(instance), instance.get("devices") or {}, list(instance.get("profiles") or [])]
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:32]


@dataclass
class EditorValues:
    """What the editor shows of one instance for one user."""

    config: dict[str, str]  # own keys the user may see and edit as `key = value`
    hidden: list[str]  # own keys whose values the user may not see (kept unless named)
    multiline: dict[str, str]  # own keys whose values hold several lines (kept unless named)
    devices: dict[str, dict]
    profiles: list[str]
    version: str
    running: bool = False

    @classmethod
    def of(cls, instance: dict, user) -> EditorValues:
        shown, hidden, multiline = editable(own_config(instance), user)
        return cls(
            config=shown,
            hidden=hidden,
            multiline=multiline,
            devices={n: dict(d or {}) for n, d in (instance.get("devices") or {}).items()},
            profiles=list(instance.get("profiles") or []),
            version=version_of(instance),
            running=str(instance.get("status") or "").lower() == "running",
        )


@dataclass
class ConfigChange:
    """Only what a person changed: config key -> value ("" unsets), device -> spec (None
    removes), the new profile list (None: unchanged)."""

    config: dict[str, str] = field(default_factory=dict)
    devices: dict[str, dict | None] = field(default_factory=dict)
    profiles: list[str] | None = None

    @property
    def empty(self) -> bool:
        return not self.config and not self.devices and self.profiles is None

    def summary(self) -> str:
        parts = [f"{k}={'(unset)' if v == '' else v}" for k, v in sorted(self.config.items())]
        parts += [f"device {n}{' removed' if d is None else ''}" for n, d in sorted(self.devices.items())]
        if self.profiles is not None:
            parts.append(f"profiles {','.join(self.profiles) or '(none)'}")
        return "; ".join(parts)

    def policy_args(self) -> dict:
        """check_write's arguments for this change (the profile list only when it changed)."""
        return {"config": self.config, "devices": self.devices, "profiles": self.profiles or ()}

    def applied_to(self, instance: dict) -> dict:
        """The instance as PUT wants it back, with this change made (volatile keys kept)."""
        config = {k: v for k, v in (instance.get("config") or {}).items()}
        for key, value in self.config.items():
            if value == "":
                config.pop(key, None)
            else:
                config[key] = value
        devices = dict(instance.get("devices") or {})
        for name, spec in self.devices.items():
            if spec is None:
                devices.pop(name, None)
            else:
                devices[name] = spec
        profiles = self.profiles if self.profiles is not None else list(instance.get("profiles") or [])
        return {**instance, "config": config, "devices": devices, "profiles": profiles}


def plan(
    values: EditorValues, config: dict[str, str], devices: dict[str, dict], profiles: list[str]
) -> ConfigChange:
    """What changed between what the page showed (`values`) and what came back.  A hidden or
    multi-line key changes only when named (`key = value`, or `key =` to unset it)."""
    change = ConfigChange()
    kept = {*values.hidden, *values.multiline}
    for key, value in config.items():
        shown = values.config.get(key)
        differs = value != "" if shown is None else shown.strip() != value
        if key in kept or differs:
            change.config[key] = value
    change.config.update({k: "" for k in values.config if k not in config})
    for name, spec in devices.items():
        if values.devices.get(name) != spec:
            change.devices[name] = spec
    change.devices.update({n: None for n in values.devices if n not in devices})
    if list(profiles) != values.profiles:
        change.profiles = list(profiles)
    return change


# -- the preview ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewKey:
    key: str
    value: str
    source: str  # "instance" or a profile's name
    hidden: bool = False
    changed: bool = False
    restart: bool = False  # takes effect on the instance's next start

    @property
    def shown(self) -> str:
        return HIDDEN if self.hidden else self.value


@dataclass(frozen=True)
class PreviewDevice:
    name: str
    type: str
    settings: list[tuple[str, str]]
    source: str
    changed: bool = False


@dataclass
class Preview:
    config: list[PreviewKey]
    devices: list[PreviewDevice]
    restart: list[str]  # changed keys that wait for a restart (the instance is running)
    missing_profiles: list[str]


def preview(client: LXDClient, instance: dict, change: ConfigChange, user) -> Preview:
    """What the instance expands to with `change` made: its profiles' config and devices (in
    order, from the host, in the instance's project), then its own on top."""
    after = change.applied_to(instance)
    known = {p.get("name"): p for p in client.profiles_full()}
    missing = [name for name in after["profiles"] if name not in known]
    profiles = [known[name] for name in after["profiles"] if name in known]
    config, devices = expand(profiles, after["config"], after["devices"])
    before_config, before_devices = expand(
        [known[n] for n in instance.get("profiles") or [] if n in known],
        instance.get("config") or {},
        instance.get("devices") or {},
    )
    reveal = may_see_secrets(user)
    running = str(instance.get("status") or "").lower() == "running"
    keys = [
        PreviewKey(
            key,
            config_value(value),
            source,
            hidden=not reveal and is_secret_key(key),
            changed=before_config.get(key, (None,))[0] != value,
            restart=running and needs_restart(key),
        )
        for key, (value, source) in sorted(config.items())
        if not key.startswith(VOLATILE)
    ]
    gone = sorted(set(before_config) - set(config))
    shown_devices = [
        PreviewDevice(
            name,
            (spec or {}).get("type", ""),
            sorted((k, str(v)) for k, v in (spec or {}).items() if k != "type"),
            source,
            changed=before_devices.get(name, (None,))[0] != spec,
        )
        for name, (spec, source) in sorted(devices.items())
    ]
    restart = sorted(
        k
        for k in {*change.config, *(g for g in gone if not g.startswith(VOLATILE))}
        if running and needs_restart(k)
    )
    return Preview(keys, shown_devices, restart, missing)


# -- saving --------------------------------------------------------------------------------------


class EditConflict(UserError):
    """The instance changed since the page was opened: `instance` is what it is now."""

    http_status = 409

    def __init__(self, name: str, instance: dict):
        self.instance = instance
        super().__init__(
            f"{name} was changed by someone else since you opened this page: nothing was saved. "
            "The form now shows its current configuration."
        )


class FieldRefused(UserError):
    """LXD refused the change; `field` says which part of the form it is about."""

    def __init__(self, message: str, field_name: str, status: int = 400):
        super().__init__(message, status)
        self.field = field_name


_INVALID_VALUE = re.compile(r"Invalid value: (.*)$")


def field_refusal(exc: LXDAPIError, change: ConfigChange) -> FieldRefused:
    """LXD's refusal, placed next to the field it is about (LXD does not always name the key:
    "Invalid config: Invalid value: lots" is about the changed key whose value is "lots")."""
    message = exc.message
    if message.startswith("Invalid devices") or "Device validation" in message:
        return FieldRefused(f"LXD refused the devices: {message}", "devices")
    if message.startswith("Invalid config") or "configuration key" in message:
        match = _INVALID_VALUE.search(message)
        keys = [k for k, v in change.config.items() if match and v == match.group(1).strip()]
        named = f"{keys[0]}: " if len(keys) == 1 else ""
        return FieldRefused(f"LXD refused the config: {named}{message}", "config")
    if "rofile" in message:
        return FieldRefused(f"LXD refused the profiles: {message}", "profiles")
    return FieldRefused(f"LXD refused the change: {message}", "__all__", exc.http_status)


def refuse_policy(request, host: Host, action: str, what: str, exc: PolicyRefused) -> None:
    record(request.user, action, host=host, target=what, outcome=AuditEntry.Outcome.REFUSED, error=str(exc))


def save(request, host: Host, name: str, version: str, change: ConfigChange) -> list[str]:
    """Write `change` to the instance; the changed keys that wait for a restart (if it runs).
    PolicyRefused (403), EditConflict (409), FieldRefused (LXD's reason, by field)."""
    what = f"{name}: {change.summary()}"
    try:
        check_write(request.user, host, **change.policy_args())
    except PolicyRefused as exc:
        refuse_policy(request, host, "instance.config", what, exc)
        raise
    client = host.client()
    with instance_lock(host.name, name), audited(request, "instance.config", host=host, target=what) as entry:
        current, etag = client.instance_and_etag(name)
        if version_of(current) != version:
            raise EditConflict(name, current)
        try:
            entry.follow(client, client.put_instance(name, change.applied_to(current), etag))
        except LXDAPIError as exc:
            if exc.error_code == 412:
                raise EditConflict(name, client.instance_and_etag(name)[0]) from exc
            raise field_refusal(exc, change) from exc
        except LXDError as exc:  # the operation failed: LXD's reason
            raise field_refusal(LXDAPIError(str(exc), 400), change) from exc
    running = str(current.get("status") or "").lower() == "running"
    return sorted(k for k in change.config if running and needs_restart(k))


def remove_device(request, host: Host, name: str, device: str) -> None:
    """Remove one of the instance's own devices; one its profiles give is explained, not sent."""
    what = f"{name}: device {device} removed"
    client = host.client()
    instance = client.instance(name)
    if device not in (instance.get("devices") or {}):
        if device in (instance.get("expanded_devices") or {}):
            known = {p.get("name"): p for p in client.profiles_full()}
            giving = [
                n for n in instance.get("profiles") or [] if device in (known.get(n) or {}).get("devices", {})
            ]
            source = giving[-1] if giving else "one of its profiles"
            raise UserError(
                f"{device} comes from profile {source}: it cannot be removed from {name} alone. "
                f"Change the profile, or override the device on {name} (a device named {device} "
                "of type none hides it).",
                409,
            )
        raise UserError(f"{name} has no device {device}.", 404)
    change = ConfigChange(devices={device: None})
    try:
        check_write(request.user, host, **change.policy_args())
    except PolicyRefused as exc:
        refuse_policy(request, host, "instance.device.remove", what, exc)
        raise
    with (
        instance_lock(host.name, name),
        audited(request, "instance.device.remove", host=host, target=what) as entry,
    ):
        current, etag = client.instance_and_etag(name)
        try:
            entry.follow(client, client.put_instance(name, change.applied_to(current), etag))
        except LXDAPIError as exc:
            raise field_refusal(exc, change) from exc
