"""Which server a host runs, LXD or Incus, read from GET /1.0: its kind, its version, and the
API extensions it advertises.  Each difference between the two is decided here, once.

Features are chosen by extension name, never by version number or position in the list: the
two projects share most extension names (Incus forked from LXD 5.x and kept them) but not
their version numbers, and each dropped some names the other kept (LXD-API.md §10).

An untrusted client sees no `environment` in GET /1.0, so before we are trusted only the
extension names tell anything; once trusted, `environment.server` says "lxd" or "incus".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerKind:
    name: str  # environment.server: "lxd" or "incus"
    label: str  # what the pages show
    header_prefix: str  # the files and images API's headers: X-LXD-uid, X-Incus-uid ...
    cli: str  # the server's own command line tool, for messages that say what to type
    dir_env: str  # the variable naming the daemon's directory (its unix.socket is there)
    sockets: tuple[str, ...]  # where the daemon's unix socket is otherwise (packages, snap)

    def local_sockets(self, environ) -> list[str]:
        """Where `unix://` (the command line tool's `local` remote) leads, in the tool's order."""
        found = [environ[self.dir_env].rstrip("/") + "/unix.socket"] if environ.get(self.dir_env) else []
        return found + list(self.sockets)

    def header(self, name: str) -> str:
        """The full name of one of the API's own headers (`type` -> X-LXD-type / X-Incus-type)."""
        return self.header_prefix + name


LXD = ServerKind(
    "lxd",
    "LXD",
    "X-LXD-",
    "lxc",
    "LXD_DIR",
    ("/var/lib/lxd/unix.socket", "/var/snap/lxd/common/lxd/unix.socket"),
)
INCUS = ServerKind(
    "incus",
    "Incus",
    "X-Incus-",
    "incus",
    "INCUS_DIR",
    ("/var/lib/incus/unix.socket", "/run/incus/unix.socket"),
)
KINDS = {kind.name: kind for kind in (LXD, INCUS)}


def kind_named(name: str | None) -> ServerKind | None:
    """The kind stored under `name` ("lxd", "incus"); None for anything else (not known yet)."""
    return KINDS.get(name or "")


@dataclass(frozen=True)
class ServerInfo:
    """What GET /1.0 says a server is."""

    kind: ServerKind | None  # None while we are untrusted (no `environment` yet)
    version: str
    extensions: frozenset[str]

    @classmethod
    def from_metadata(cls, info: dict | None) -> ServerInfo:
        info = info if isinstance(info, dict) else {}
        env = info.get("environment") if isinstance(info.get("environment"), dict) else {}
        server = str(env.get("server") or "")
        kind = kind_named(server)
        if kind is None and server:
            # Another server speaking the same API: LXD's headers are what it most likely takes.
            kind = LXD
        extensions = info.get("api_extensions") if isinstance(info.get("api_extensions"), list) else []
        return cls(kind, str(env.get("server_version") or ""), frozenset(str(e) for e in extensions))

    def has(self, extension: str) -> bool:
        return extension in self.extensions

    @property
    def label(self) -> str:
        """ "Incus 6.0.4", "LXD 5.0.2", or "" while unknown."""
        if self.kind is None:
            return ""
        return f"{self.kind.label} {self.version}".strip()


def trust_token_fields(info: ServerInfo, token: str) -> dict[str, str]:
    """The fields of POST /1.0/certificates that carry a trust token to this server.

    - LXD 6.1+ advertises `explicit_trust_token` and reads `trust_token`; from 6.2 a non-empty
      `password` is answered with 501, so the token goes there alone.
    - LXD 5.0.x and 5.21 read the token from `password` and ignore `trust_token`.
    - Incus reads `trust_token` and ignores `password` (it has no trust passwords).
    Untrusted, Incus 6.0 and LXD 5.0 look alike (both list `certificate_token`, neither
    `explicit_trust_token`, no `environment`), so where no extension settles it the token goes
    in both fields: checked on LXD 5.0.2 and Incus 6.0.4, each ignores the one it does not know.
    """
    if info.has("explicit_trust_token"):
        return {"trust_token": token}
    return {"password": token, "trust_token": token}
