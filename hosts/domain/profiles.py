"""Profiles of a host (in the project its page names), and copying one to other hosts (no HTML).

Writes go through the write policy like an instance's (`check_write`): the keys and devices a
write sets or changes, and the profile itself as the list (`profiles=[name]`): an operator may
only write into a profile an admin allowed operators on that host, and may not create one
(a new profile is allowed to nobody yet).  Renaming and deleting are for admins (the views check
the role).  LXD's profile ETag covers its config, devices and description, so an edit is sent
with the ETag the page showed and a change made meanwhile is refused by LXD (412 -> 409).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from ..concurrency import parallel
from ..lxd import LXDError
from ..lxd.config import is_secret_key
from ..lxd.errors import LXDAPIError, UserError
from ..lxd.names import PROFILE
from ..lxd.operation import object_of
from ..models import AuditEntry, Host
from .audit import audited, record
from .config_view import HIDDEN, config_value
from .instance_config import editable, with_kept
from .policy import PolicyRefused, check_write
from .roles import may_see_secrets


@dataclass
class ProfileRow:
    name: str
    description: str = ""
    config: dict = field(default_factory=dict)
    devices: dict = field(default_factory=dict)
    used_by: list[tuple[str, str]] = field(default_factory=list)  # (instance, project)

    @classmethod
    def from_lxd(cls, data: dict) -> ProfileRow:
        users = []
        for url in data.get("used_by") or []:
            obj = object_of(str(url))
            if obj and obj[0] == "instance" and "/" not in obj[1]:
                project = (parse_qs(urlsplit(str(url)).query).get("project") or ["default"])[0]
                users.append((obj[1], project))
        return cls(
            name=data.get("name", ""),
            description=data.get("description") or "",
            config={k: config_value(v) for k, v in (data.get("config") or {}).items()},
            devices={n: dict(d or {}) for n, d in (data.get("devices") or {}).items()},
            used_by=sorted(users),
        )


def profile_rows(host: Host) -> list[ProfileRow]:
    return [ProfileRow.from_lxd(p) for p in host.client().profiles_full()]


def profile_and_etag(host: Host, name: str) -> tuple[ProfileRow, str]:
    data, etag = host.client().profile_and_etag(name)
    return ProfileRow.from_lxd(data), etag


def changes(before: ProfileRow | None, config: dict[str, str], devices: dict[str, dict]) -> dict:
    """check_write's config and devices for turning `before` (None: nothing yet) into this."""
    old_config = before.config if before else {}
    old_devices = before.devices if before else {}
    changed = {k: v for k, v in config.items() if old_config.get(k) != v}
    changed.update({k: "" for k in old_config if k not in config})
    moved = {n: d for n, d in devices.items() if old_devices.get(n) != d}
    moved.update({n: None for n in old_devices if n not in devices})
    return {"config": changed, "devices": moved}


def _check(request, host: Host, action: str, name: str, before: ProfileRow | None, config, devices) -> None:
    try:
        check_write(request.user, host, profiles=[name], **changes(before, config, devices))
    except PolicyRefused as exc:
        record(
            request.user, action, host=host, target=name, outcome=AuditEntry.Outcome.REFUSED, error=str(exc)
        )
        raise


class ProfileRefused(UserError):
    """LXD refused a profile write; `field` names the form field it is about (or "")."""

    def __init__(self, message: str, status: int = 400, field_name: str = ""):
        super().__init__(message, status)
        self.field = field_name


def _refused(exc: LXDAPIError, host: Host, name: str) -> ProfileRefused:
    text = exc.message
    if exc.error_code == 412:
        return ProfileRefused(
            f"Profile {name} changed on {host.name} since you opened this page: nothing was saved.", 409
        )
    if "already exists" in text or "already in use" in text:
        return ProfileRefused(f"{host.name} already has a profile named {name}: {text}.", 409, "name")
    if "currently in use" in text:
        return ProfileRefused(f"LXD refused: {text}.", 409)
    if text.startswith("Invalid devices") or "Device validation" in text:
        return ProfileRefused(f"LXD refused the devices: {text}", 400, "devices")
    if text.startswith("Invalid config") or "configuration key" in text or "Invalid value" in text:
        return ProfileRefused(f"LXD refused the config: {text}", 400, "config")
    return ProfileRefused(f"LXD refused: {text}", exc.http_status)


def create_profile(request, host: Host, name: str, description: str, config: dict, devices: dict) -> None:
    PROFILE.check(name)
    _check(request, host, "profile.create", name, None, config, devices)
    with audited(request, "profile.create", host=host, target=name):
        try:
            host.client().create_profile(name, config, devices, description)
        except LXDAPIError as exc:
            raise _refused(exc, host, name) from exc


def update_profile(
    request, host: Host, name: str, description: str, config: dict, devices: dict, etag: str
) -> None:
    """`config` as the editor sent it back: keys hidden from the user (or of several lines) that
    it does not name are kept as they are (instance_config.editable)."""
    client = host.client()
    before, _ = profile_and_etag(host, name)
    _, hidden, multiline = editable(before.config, request.user)
    config = with_kept(before.config, config, [*hidden, *multiline])
    _check(request, host, "profile.edit", name, before, config, devices)
    with audited(request, "profile.edit", host=host, target=name):
        try:
            client.put_profile(name, {"config": config, "devices": devices, "description": description}, etag)
        except LXDAPIError as exc:
            raise _refused(exc, host, name) from exc


def rename_profile(request, host: Host, name: str, new_name: str) -> None:
    PROFILE.check(new_name)
    with audited(request, "profile.rename", host=host, target=f"{name} -> {new_name}"):
        try:
            host.client().rename_profile(name, new_name)
        except LXDAPIError as exc:
            raise _refused(exc, host, new_name) from exc


def delete_profile(request, host: Host, name: str) -> None:
    client = host.client()
    with audited(request, "profile.delete", host=host, target=name):
        try:
            client.delete_profile(name)
        except LXDAPIError as exc:
            refused = _refused(exc, host, name)
            if "in use" in exc.message:
                users = ProfileRow.from_lxd(client.profile_and_etag(name)[0]).used_by
                listed = ", ".join(n if p == "default" else f"{n} (project {p})" for n, p in users)
                refused = ProfileRefused(
                    f"LXD refused: {exc.message}. {name} is used by {listed or 'something LXD does not list'}.",
                    409,
                )
            raise refused from exc


# -- copying a profile to other hosts ------------------------------------------------------------


@dataclass
class CopyTarget:
    """One host a profile may be copied to, compared with the source."""

    host: Host
    state: str  # "missing", "same", "differs" or "unreachable"
    etag: str = ""
    differences: list[tuple[str, str, str]] = field(default_factory=list)  # (what, there, here)
    error: str = ""
    current: ProfileRow | None = None


def _show(device: dict | None) -> str:
    if device is None:
        return "(none)"
    return " ".join(f"{k}={v}" for k, v in sorted(device.items()))


def differences(source: ProfileRow, there: ProfileRow, reveal: bool = True) -> list[tuple[str, str, str]]:
    """What copying `source` over `there` changes: (what, its value there now, the new one);
    without `reveal`, secret-bearing values are masked."""
    found = []
    if source.description != there.description:
        found.append(("description", there.description, source.description))

    def shown(key: str, config: dict) -> str:
        if key not in config:
            return "(unset)"
        return config[key] if reveal or not is_secret_key(key) else HIDDEN

    for key in sorted(set(source.config) | set(there.config)):
        if source.config.get(key) != there.config.get(key):
            found.append((key, shown(key, there.config), shown(key, source.config)))
    for name in sorted(set(source.devices) | set(there.devices)):
        if source.devices.get(name) != there.devices.get(name):
            found.append((f"device {name}", _show(there.devices.get(name)), _show(source.devices.get(name))))
    return found


def compare(source: ProfileRow, targets: list[Host], user=None) -> list[CopyTarget]:
    """Each target host's copy of the profile (same name, same project), next to the source
    (secret-bearing values masked unless `user` may see them)."""
    reveal = user is None or may_see_secrets(user)
    clients = [host.client() for host in targets]

    def look(client):
        try:
            return client.profile_and_etag(source.name)
        except LXDAPIError as exc:
            if exc.error_code == 404:
                return None
            return exc
        except LXDError as exc:
            return exc

    found = []
    for host, answer in zip(targets, parallel(look, clients), strict=True):
        if isinstance(answer, LXDError):
            found.append(CopyTarget(host, "unreachable", error=str(answer)))
        elif answer is None:
            found.append(
                CopyTarget(host, "missing", differences=differences(source, ProfileRow(source.name), reveal))
            )
        else:
            there = ProfileRow.from_lxd(answer[0])
            diff = differences(source, there, reveal)
            found.append(CopyTarget(host, "differs" if diff else "same", answer[1], diff, current=there))
    return found


@dataclass
class CopyResult:
    host: str
    ok: bool
    message: str


def copy_profile(
    request, source_host: Host, source: ProfileRow, targets: list[Host], seen: dict[str, str]
) -> list[CopyResult]:
    """Make the profile the same on each target host.  `seen` is each host's ETag when the
    differences were shown ("" where it had no such profile): a host whose copy changed since
    is left alone and says so."""
    results = []
    for target, now in zip(targets, compare(source, targets), strict=True):
        label = f"{source.name} from {source_host.name}"
        if now.state == "unreachable":
            results.append(CopyResult(target.name, False, now.error))
            continue
        if now.etag != seen.get(target.name, ""):
            results.append(
                CopyResult(
                    target.name, False, "its profile changed since the differences were shown: compare again"
                )
            )
            continue
        if now.state == "same":
            results.append(CopyResult(target.name, True, "already the same"))
            continue
        try:
            _check(request, target, "profile.copy", source.name, now.current, source.config, source.devices)
            with audited(request, "profile.copy", host=target, target=label):
                client = target.client()
                try:
                    if now.state == "missing":
                        client.create_profile(source.name, source.config, source.devices, source.description)
                    else:
                        body = {
                            "config": source.config,
                            "devices": source.devices,
                            "description": source.description,
                        }
                        client.put_profile(source.name, body, now.etag)
                except LXDAPIError as exc:
                    raise _refused(exc, target, source.name) from exc
        except UserError as exc:
            results.append(CopyResult(target.name, False, str(exc)))
            continue
        results.append(CopyResult(target.name, True, "created" if now.state == "missing" else "updated"))
    return results
