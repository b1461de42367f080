"""LXD's names, each rule once: instances, snapshots, backups, profiles, projects, log files,
operation ids, images, networks, storage pools and volumes.

A name that reaches a URL path must be checked first: `quote()` leaves `.` and `..` alone, and
urllib3 removes dot segments, so a snapshot named `..` would turn
`DELETE /1.0/instances/c1/snapshots/..` into `DELETE /1.0/instances/c1`.  LXDClient.request
refuses such paths too (`check_path`), as a second line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from .errors import InvalidName

DOT_SEGMENTS = (".", "..")


def _printable(name: str) -> bool:
    return all(ch.isprintable() and not ch.isspace() for ch in name)


@dataclass(frozen=True)
class NameRule:
    """One kind of LXD name: what it is called, its rule for a person, and the check."""

    what: str
    rule: str
    valid: Callable[[str], bool]

    def error(self, name: str | None) -> str | None:
        """None if `name` follows the rule, else a message naming the rule."""
        if isinstance(name, str) and self.valid(name):
            return None
        return f"{name!r} is not a valid {self.what}. {self.rule}"

    def check(self, name: str | None) -> str:
        """`name` itself, or InvalidName (a 400) saying the rule."""
        if (message := self.error(name)) is not None:
            raise InvalidName(message)
        return name


# LXD's ValidHostname (in LXD's source: shared/validate IsHostname): alphanumerics and hyphens, not starting
# with a digit or a hyphen, not ending with a hyphen, at most 63 characters.
_INSTANCE_RE = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
INSTANCE = NameRule(
    "instance name",
    "Instance names have 1 to 63 characters: letters, digits and hyphens, "
    "starting with a letter and not ending with a hyphen.",
    lambda name: bool(_INSTANCE_RE.match(name)),
)

# LXD only forbids '/' (and, later versions, spaces); dot segments would escape the URL.
SNAPSHOT = NameRule(
    "snapshot name",
    "Snapshot names have 1 to 255 printable characters, no spaces and no '/', and are not '.' or '..'.",
    lambda name: 0 < len(name) <= 255 and "/" not in name and name not in DOT_SEGMENTS and _printable(name),
)

# Backups: the same rule as snapshots (LXD forbids '/'; the name is one segment of a URL).
BACKUP = NameRule(
    "backup name",
    "Backup names have 1 to 255 printable characters, no spaces and no '/', and are not '.' or '..'.",
    SNAPSHOT.valid,
)

_PROFILE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
PROFILE = NameRule(
    "profile name",
    "Profile names have 1 to 63 letters, digits, '-', '_' or '.', and are not '.' or '..'.",
    lambda name: bool(_PROFILE_RE.match(name)) and name not in DOT_SEGMENTS,
)

_PROJECT_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
PROJECT = NameRule(
    "project name",
    "Project names have 1 to 63 letters, digits, '-' or '_'.",
    lambda name: bool(_PROJECT_RE.match(name)),
)

# lxc.log, lxc.conf, console.log, exec_<uuid>.stdout, snapshot_..., migration_...
_LOG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
LOG_FILE = NameRule(
    "log file name",
    "Log file names are letters, digits, '.', '_' and '-', not starting with '.'.",
    lambda name: bool(_LOG_RE.match(name)),
)

_OPERATION_RE = re.compile(r"^[0-9a-fA-F-]{8,64}$")
OPERATION = NameRule(
    "operation id",
    "Operation ids are LXD's UUIDs: hexadecimal digits and hyphens.",
    lambda name: bool(_OPERATION_RE.match(name)),
)


# A sha256 in hex, as LXD names images in its URLs (the dashboard links full fingerprints only).
_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{64}$")
IMAGE_FINGERPRINT = NameRule(
    "image fingerprint",
    "Image fingerprints are 64 lower-case hexadecimal digits (a sha256).",
    lambda name: bool(_FINGERPRINT_RE.match(name)),
)

# LXD 5.0.2 takes any alias but a taken one (even "..", "a b"); aliases from image servers
# hold a '/' (debian/12), which LXD reads percent-encoded inside one path segment.
IMAGE_ALIAS = NameRule(
    "image alias",
    "Image aliases have 1 to 255 printable characters without spaces, and are not '.' or '..'.",
    lambda name: 0 < len(name) <= 255 and name not in DOT_SEGMENTS and _printable(name),
)

# LXD's network names are interface names (validate.IsInterfaceName): at most 15 characters
# of letters, digits, '-', '_' and '.'; LXD itself refuses fewer than 2 on create.
_NETWORK_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
NETWORK = NameRule(
    "network name",
    "Network names have 1 to 15 letters, digits, '-', '_' or '.', and are not '.' or '..'.",
    lambda name: bool(_NETWORK_RE.match(name)) and name not in DOT_SEGMENTS,
)

_POOL_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
STORAGE_POOL = NameRule(
    "storage pool name",
    "Storage pool names have 1 to 63 letters, digits, '-', '_' or '.', and are not '.' or '..'.",
    lambda name: bool(_POOL_RE.match(name)) and name not in DOT_SEGMENTS,
)

# LXD 5.0.2 refuses only a '/' in a volume name: it creates "..", "a b" or "x:y" and fails
# past the file system's name length (the directory is `<project>_<name>`).  The dashboard
# keeps to names a disk device's `source` and a URL segment hold without surprises.
_VOLUME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
STORAGE_VOLUME = NameRule(
    "storage volume name",
    "Volume names have 1 to 200 letters, digits, '-', '_' or '.', and are not '.' or '..'.",
    lambda name: bool(_VOLUME_RE.match(name)) and name not in DOT_SEGMENTS,
)


# An instance's device names (eth0, root, data-1): LXD 5.0.2 only forbids a '/'; the dashboard
# keeps to names that read plainly in `lxc config device` and in a form.
_DEVICE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEVICE = NameRule(
    "device name",
    "Device names have 1 to 64 letters, digits, '-', '_' or '.', and are not '.' or '..'.",
    lambda name: bool(_DEVICE_RE.match(name)) and name not in DOT_SEGMENTS,
)


def check_path(path: str, *, encoded_slash_ok: bool = False) -> None:
    """Refuse an API path with a '.' or '..' segment (raw or percent-encoded), or a name segment
    holding an encoded '/' (LXD would read `c1%2Fsnap0` as the snapshot, not the instance).
    `encoded_slash_ok` is for the few names that may hold a slash: image aliases."""
    for segment in path.split("?", 1)[0].split("/")[1:]:
        name = unquote(segment)
        if name in DOT_SEGMENTS:
            raise InvalidName(f"refused to send {path!r}: {name!r} is not a name")
        if "/" in name and not encoded_slash_ok:
            raise InvalidName(f"refused to send {path!r}: the name {name!r} holds a '/'")
