"""Terminal sessions: what a browser may ask for, what LXD is asked to run, and when the
instance page offers a terminal at all.

A session is an exec (or an instance's console) relayed between a browser socket
(hosts/views/terminal_socket.py) and LXD (hosts/lxd/exec.py).  A shell is root in the
instance, so only operators and admins get one.  Bounds, flow control and the audit of each
session: hosts/domain/terminal_sessions.py.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..lxd.errors import LXDError
from ..lxd.exec import Attachment, ExecCommand, SessionEnd
from ..lxd.files import FileInfo, PathNotFound
from . import paths

if TYPE_CHECKING:
    from ..models import Host

EXEC, CONSOLE = "exec", "console"
SHELLS = ("/bin/bash", "/bin/sh")  # the default command: the first that exists
# Sizes a terminal may have; anything else is clamped into these (xterm.js allows any; LXD
# 5.0.2 ignores a width or height of 1 and makes it 80x24).
MIN_COLS, MAX_COLS = 2, 500
MIN_ROWS, MAX_ROWS = 2, 200
MAX_COMMAND_BYTES = 4096
MAX_FIELD_BYTES = 256  # user, group
PASSWD_BYTES = 1024 * 1024  # /etc/passwd and /etc/group read to resolve a user or group name
CONSOLE_LOG_BYTES = 64 * 1024  # the console log shown before attaching: its last 64 KiB
LANG = "C.UTF-8"


class TerminalRefused(Exception):
    """A session that cannot start: the message says why, `status` is the HTTP-like code."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status

    def __str__(self) -> str:
        return self.message


# -- what the browser asks for ------------------------------------------------------------


def clamp_size(cols: Any, rows: Any) -> tuple[int, int]:
    """A terminal size the dashboard passes on: whole numbers, clamped to sane bounds."""
    try:
        width, height = int(cols), int(rows)
    except (TypeError, ValueError, OverflowError):
        raise TerminalRefused("The terminal size must be two whole numbers (columns, rows).") from None
    return max(MIN_COLS, min(MAX_COLS, width)), max(MIN_ROWS, min(MAX_ROWS, height))


def _text(message: dict, key: str, limit: int) -> str:
    value = message.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TerminalRefused(f"The {key} must be text.")
    if "\x00" in value:
        raise TerminalRefused(f"The {key} contains a NUL byte.")
    if len(value.encode("utf-8", "surrogatepass")) > limit:
        raise TerminalRefused(f"The {key} is longer than {limit} bytes.")
    return value.strip()


@dataclass(frozen=True)
class TerminalRequest:
    mode: str  # EXEC or CONSOLE
    command: tuple[str, ...]  # empty: the default shell
    user: str  # as typed: empty (root), a uid, or a name from the instance's /etc/passwd
    group: str  # empty (the user's group), a gid, or a name from /etc/group
    cwd: str  # empty: the user's home
    cols: int
    rows: int

    @classmethod
    def parse(cls, message: Any) -> TerminalRequest:
        if not isinstance(message, dict) or message.get("type") != "start":
            raise TerminalRefused("Send the session's description first.")
        mode = message.get("mode") or EXEC
        if mode not in (EXEC, CONSOLE):
            raise TerminalRefused(f"Unknown session kind {str(mode)[:20]!r}: exec or console.")
        raw = _text(message, "command", MAX_COMMAND_BYTES)
        try:
            command = tuple(shlex.split(raw))
        except ValueError as exc:
            raise TerminalRefused(f"The command cannot be read: {exc}.") from None
        cwd = _text(message, "cwd", paths.PATH_MAX)
        if cwd:
            if not cwd.startswith("/"):
                raise TerminalRefused("The working directory must be an absolute path.")
            try:
                cwd = paths.normalise_path(cwd)
            except paths.BadPath as exc:
                raise TerminalRefused(f"The working directory: {exc}.") from None
        cols, rows = clamp_size(message.get("cols", 80), message.get("rows", 24))
        return cls(
            mode=mode,
            command=command,
            user=_text(message, "user", MAX_FIELD_BYTES),
            group=_text(message, "group", MAX_FIELD_BYTES),
            cwd=cwd,
            cols=cols,
            rows=rows,
        )


def find_shell(client, instance: str) -> str | None:
    """The first of SHELLS the instance has (files-API HEADs, no exec), None if none."""
    for shell in SHELLS:
        info: FileInfo | None = client.file_info_or_none(instance, shell)
        if info is not None and not info.is_dir:
            return shell
    return None


def default_shell(client, instance: str) -> str:
    """/bin/bash if the instance has it, else /bin/sh."""
    return find_shell(client, instance) or SHELLS[-1]


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    home: str


def _table(client, instance: str, path: str) -> list[list[str]]:
    """The rows of /etc/passwd or /etc/group (empty if the instance has none)."""
    try:
        _, data, _ = client.read_file(instance, path, PASSWD_BYTES)
    except PathNotFound:
        return []
    return [line.split(":") for line in data.decode("utf-8", "replace").splitlines() if ":" in line]


def _number(text: str, what: str) -> int:
    try:
        return paths.parse_id(text, what)
    except paths.BadPath as exc:
        raise TerminalRefused(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None


def resolve_identity(client, instance: str, user: str, group: str) -> Identity:
    """Numeric ids and the home directory for the user and group as typed (root by default).
    A name is looked up in the instance's own /etc/passwd or /etc/group: LXD's exec takes
    numbers only."""
    if not user:
        uid, gid, home = 0, 0, "/root"
    else:
        uid = _number(user, "user id") if user.isdigit() else None
        rows = [r for r in _table(client, instance, "/etc/passwd") if len(r) >= 6 and r[2].isdigit()]
        match = next((r for r in rows if (r[2] == user if uid is not None else r[0] == user)), None)
        if match is None and uid is None:
            raise TerminalRefused(f"There is no user {user!r} in the instance's /etc/passwd.", 404)
        if match is not None:
            uid = int(match[2])
            gid = int(match[3]) if match[3].isdigit() else uid
            home = match[5] or "/"
        else:
            gid, home = uid, "/root" if uid == 0 else "/"
    if group.isdigit():
        gid = _number(group, "group id")
    elif group:
        found = [r for r in _table(client, instance, "/etc/group") if len(r) >= 3 and r[0] == group]
        if not found or not found[0][2].isdigit():
            raise TerminalRefused(f"There is no group {group!r} in the instance's /etc/group.", 404)
        gid = int(found[0][2])
    return Identity(uid, gid, home)


def exec_command(client, instance: str, request: TerminalRequest) -> ExecCommand:
    """What LXD runs for this request: the default shell if none was given, as the resolved
    user and group, in the working directory asked for (the user's home by default)."""
    command = request.command or (default_shell(client, instance),)
    who = resolve_identity(client, instance, request.user, request.group)
    return ExecCommand(
        command=command,
        width=request.cols,
        height=request.rows,
        environment={"TERM": "xterm-256color", "HOME": who.home, "LANG": LANG},
        user=who.uid,
        group=who.gid,
        cwd=request.cwd or who.home,
    )


def describe(instance: str, mode: str, spec: ExecCommand | None = None) -> str:
    """The session as the audit trail names it."""
    if mode == CONSOLE or spec is None:
        return f"{instance}: console"
    return (
        f"{instance}: {shlex.join(spec.command)} (uid {spec.user}, gid {spec.group}, cwd {spec.cwd or '/'})"
    )


# -- starting a session (blocking: LXD and the database; run in a worker thread) -----------

# A session's LXD calls: quick to connect, a little longer to answer (a busy host).
LXD_TIMEOUT = (0.5, 10.0)


@dataclass(frozen=True)
class Started:
    attachment: Attachment  # holds the socket secrets: never sent, never logged
    target: str  # the session as the audit names it
    console_log: bytes = b""


def start_session(host: Host, instance: str, request: TerminalRequest) -> Started:
    """Ask LXD for the exec or console; the caller must `attach` within 5 s."""
    client = host.client(timeout=LXD_TIMEOUT)
    if request.mode == CONSOLE:
        log = client.console_log(instance, CONSOLE_LOG_BYTES)  # before attaching, as `lxc console` shows it
        attachment = client.start_console(instance, request.cols, request.rows)
        return Started(attachment, describe(instance, CONSOLE), log)
    spec = exec_command(client, instance, request)
    return Started(client.start_exec(instance, spec), describe(instance, EXEC, spec))


def session_end(host: Host, operation_id: str, timeout: float) -> SessionEnd:
    return host.client(timeout=LXD_TIMEOUT).session_end(operation_id, timeout=timeout)


# -- what the instance page offers --------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    available: bool
    reason: str = ""  # why not, when not
    command: str = ""  # the default command
    console: bool = False  # the console too (containers)


def offer(client, instance: dict) -> Offer:
    """Whether the instance page offers a terminal, and with which default command.  The
    files-API HEAD that finds the shell also proves a VM's agent answers (no exec for it)."""
    name, status = instance.get("name", ""), instance.get("status", "")
    is_vm = instance.get("type") == "virtual-machine"
    if status == "Frozen":
        return Offer(False, f"{name} is frozen: unfreeze it to open a terminal.")
    if status != "Running":
        return Offer(False, f"{name} is {status.lower() or 'not running'}: start it to open a terminal.")
    try:
        command = find_shell(client, name)
    except LXDError as exc:
        if is_vm:
            return Offer(False, f"The VM's agent does not answer, so there is no terminal yet ({exc}).")
        return Offer(False, f"No terminal: {exc}")
    if command is None and is_vm:
        # A VM's files come through its agent: no shell found means no agent answering.
        return Offer(False, "The VM's agent does not answer, so there is no terminal yet.")
    return Offer(True, command=command or SHELLS[-1], console=not is_vm)
