"""Validation of paths and names inside an instance, in one place for every view and consumer.

A path the dashboard sends to LXD is always absolute and normalised: no empty or `.` segments,
`..` resolved lexically (as a URL is), never climbing above `/`, no NUL byte, at most PATH_MAX
bytes and NAME_MAX bytes per segment.  LXD's own answers for such input are SFTP errors
(HTTP 500) or a silent misreading, so they are refused here with a message instead.
"""

from __future__ import annotations

import re

from ..lxd.errors import UserError

PATH_MAX = 4096  # bytes, as Linux counts them
NAME_MAX = 255  # bytes per path segment
OCTAL_MODE = re.compile(r"^0?[0-7]{3}$")  # permission bits only: LXD drops setuid/sticky
MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to the kernel


class BadPath(UserError, ValueError):
    """A path or name a person gave that cannot be used; the message says why."""


def normalise_path(raw: str | None) -> str:
    """Return the absolute, normalised form of `raw`, or raise BadPath.

    A relative path is taken from `/` (the browser's address bar is a poor place to insist).
    """
    if raw is None or raw == "":
        return "/"
    if not isinstance(raw, str):
        raise BadPath("the path must be text")
    if "\x00" in raw:
        raise BadPath("the path contains a NUL byte, which no file name can hold")
    if len(raw.encode("utf-8", "surrogatepass")) > PATH_MAX:
        raise BadPath(f"the path is longer than {PATH_MAX} bytes")
    parts: list[str] = []
    for segment in raw.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not parts:
                raise BadPath(f"{raw!r} climbs above the root directory with '..'")
            parts.pop()
            continue
        if len(segment.encode("utf-8", "surrogatepass")) > NAME_MAX:
            raise BadPath(f"the name {segment[:40]!r}… is longer than {NAME_MAX} bytes")
        parts.append(segment)
    return "/" + "/".join(parts)


def validate_name(raw: str | None, what: str = "name") -> str:
    """A single directory entry name (for 'new folder' and 'upload as')."""
    name = (raw or "").strip("\n\r")
    if not name:
        raise BadPath(f"give a {what}")
    if "\x00" in name:
        raise BadPath(f"the {what} contains a NUL byte")
    if "/" in name:
        raise BadPath(f"the {what} {name!r} contains '/': give a single name, not a path")
    if name in (".", ".."):
        raise BadPath(f"{name!r} is not a usable {what}")
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX:
        raise BadPath(f"the {what} is longer than {NAME_MAX} bytes")
    return name


def join(directory: str, name: str) -> str:
    return normalise_path(directory.rstrip("/") + "/" + validate_name(name))


def parent_of(path: str) -> str:
    head = path.rstrip("/").rsplit("/", 1)[0]
    return head or "/"


def breadcrumbs(path: str) -> list[tuple[str, str]]:
    """[("/", "/"), ("etc", "/etc"), ("hosts", "/etc/hosts")] for links above a path."""
    crumbs = [("/", "/")]
    current = ""
    for segment in path.strip("/").split("/"):
        if segment:
            current += "/" + segment
            crumbs.append((segment, current))
    return crumbs


def resolve_link(directory: str, target: str) -> str | None:
    """Where a symlink in `directory` points, as an absolute path (None if it cannot be shown)."""
    if not target:
        return None
    base = target if target.startswith("/") else directory.rstrip("/") + "/" + target
    try:
        return normalise_path(base)
    except BadPath:
        return None


def parse_mode(raw: str | None, default: str | None = None) -> str | None:
    """Octal permission bits as LXD wants them: four digits with the leading zero ("0644").

    LXD 5.0.2 reads "755" as decimal and "0o755" not at all, so it only ever gets this form.
    """
    value = (raw or "").strip()
    if not value:
        return default
    if value.startswith(("0o", "0O")):
        value = "0" + value[2:]
    if not OCTAL_MODE.match(value):
        raise BadPath(f"the mode {raw!r} is not octal permission bits such as 0644 or 0755")
    return "0" + value[-3:]


def parse_id(raw: str | None, what: str) -> int | None:
    value = (raw or "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) > MAX_ID:
        raise BadPath(f"the {what} must be a number from 0 to {MAX_ID}")
    return int(value)
