"""The project's LXD test lab, as tests see it (started by bin/lab; never /var/lib/lxd)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hosts.lxd import LXDClient

ROOT = Path(__file__).resolve().parent.parent


INCUS_SNAPSHOT_VERBS = {"create", "delete", "list", "rename", "restore", "show"}


@dataclass(frozen=True)
class LabDaemon:
    index: int
    socket: str
    url: str
    lxd_dir: str
    kind: str = "lxd"  # or "incus"

    @property
    def name(self) -> str:
        return f"{'i' if self.kind == 'incus' else 'd'}{self.index}"

    def admin(self) -> LXDClient:
        """Direct admin access over the unix socket: the test's own `lxc`, not the dashboard."""
        return LXDClient(self.socket, label=self.name, timeout=(5, 60))

    def lxc(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """The daemon's own command line tool: `lxc` (LXD) or `incus` (Incus), same verbs
        (LXD 5.0's `snapshot NAME SNAP` is `snapshot create NAME SNAP` in Incus)."""
        if self.kind == "incus":
            env, tool = {**os.environ, "INCUS_DIR": self.lxd_dir}, "incus"
            if args[:1] == ("snapshot",) and args[1:2] and args[1] not in INCUS_SNAPSHOT_VERBS:
                args = ("snapshot", "create", *args[1:])
        else:
            env, tool = {**os.environ, "LXD_DIR": self.lxd_dir}, "lxc"
        return subprocess.run(
            [tool, *args], env=env, capture_output=True, text=True, check=check, timeout=timeout
        )

    def trust_token(self, name: str = "dashboard-test", *, restricted_to: list[str] | None = None) -> str:
        """A fresh single-use trust token, built as `lxc config trust add` builds it (for a
        certificate restricted to the given projects, if any)."""
        if restricted_to is None:
            op = self.admin().create_trust_token(name)
        else:
            body = {
                "name": name,
                "type": "client",
                "token": True,
                "restricted": True,
                "projects": restricted_to,
            }
            op = self.admin().call("POST", "/1.0/certificates", json_body=body, project_scoped=False)[0]
        meta = op.metadata
        token = {
            "client_name": name,
            "fingerprint": meta["fingerprint"],
            "addresses": meta["addresses"],
            "secret": meta["secret"],
            "expires_at": "0001-01-01T00:00:00Z",
        }
        return base64.b64encode(json.dumps(token).encode()).decode()

    def fingerprint(self) -> str:
        info, _ = self.admin().server()
        return info["environment"]["certificate_fingerprint"]

    def shutdown(self) -> None:
        """`lxd shutdown`: the daemon stops (its containers with it)."""
        subprocess.run(["lxd", "shutdown", "--timeout", "60"], env=self._env(), check=True, timeout=90)

    def start(self, *options: str) -> None:
        """Start this daemon again (after a shutdown or a kill) as bin/lab starts it, detached,
        without touching the lab's other daemons; back once it answers.  `options`: --debug..."""
        script = 'setsid lxd --group root --logfile "$0/lxd.log" "$@" </dev/null >>"$0/stdout.log" 2>&1 &'
        # From "/": the daemon's rsync runs in its working directory, which must outlive it.
        subprocess.run(["sh", "-c", script, self.lxd_dir, *options], env=self._env(), check=True, cwd="/")
        subprocess.run(["lxd", "waitready", "--timeout", "60"], env=self._env(), check=True, timeout=90)

    def _env(self) -> dict[str, str]:
        assert self.kind == "lxd", "an LXD daemon of the lab"
        return {**os.environ, "LXD_DIR": self.lxd_dir}

    def client_fingerprints(self) -> set[str]:
        return {cert["fingerprint"] for cert in self.admin().certificates()}

    def forget_client_certificates(self, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Untrust every client certificate but `keep` (what a test found trusted: the live
        dashboard's, registered once per session, must outlive a test's cleanup)."""
        admin = self.admin()
        for cert in admin.certificates():
            if cert["fingerprint"] not in keep:
                admin.delete_certificate(cert["fingerprint"])


@dataclass(frozen=True)
class Lab:
    daemons: tuple[LabDaemon, ...]
    trust_password: str
    incus: LabDaemon | None = None  # one Incus daemon (i1)
    pg_url: str = ""  # PostgreSQL of the scale-out mode (postgresql://postgres@127.0.0.1:PORT/postgres)
    redis_url: str = ""  # Redis of the scale-out mode
    env: dict[str, str] | None = None  # everything `bin/lab env` printed

    @property
    def all_daemons(self) -> tuple[LabDaemon, ...]:
        """Every daemon of the lab, LXD and Incus."""
        return self.daemons + ((self.incus,) if self.incus else ())

    @property
    def d1(self) -> LabDaemon:
        return self.daemons[0]

    @property
    def d2(self) -> LabDaemon:
        return self.daemons[1]

    @property
    def d3(self) -> LabDaemon:
        """A third daemon, for tests that may wreck a daemon's configuration (the sweep)."""
        return self.daemons[2]


@dataclass(frozen=True)
class LabHost:
    """A host registered in the dashboard and the lab daemon behind it (LXD or Incus)."""

    host: object  # hosts.models.Host
    daemon: LabDaemon

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def kind(self) -> str:
        return self.daemon.kind


def start_lab(count: int = 2) -> Lab:
    out = subprocess.run(
        [str(ROOT / "bin" / "lab"), "up", str(count)], capture_output=True, text=True, timeout=600
    )
    if out.returncode != 0:
        raise RuntimeError(f"bin/lab up failed:\n{out.stdout}\n{out.stderr}")
    env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    daemons = tuple(
        LabDaemon(i, env[f"LAB_D{i}_SOCKET"], env[f"LAB_D{i}_URL"], str(Path(env[f"LAB_D{i}_SOCKET"]).parent))
        for i in range(1, count + 1)
    )
    incus = None
    if "LAB_I1_SOCKET" in env:
        socket = env["LAB_I1_SOCKET"]
        incus = LabDaemon(1, socket, env["LAB_I1_URL"], str(Path(socket).parent), kind="incus")
    return Lab(
        daemons,
        env["LAB_TRUST_PASSWORD"],
        incus=incus,
        pg_url=env.get("LAB_PG_URL", ""),
        redis_url=env.get("LAB_REDIS_URL", ""),
        env=env,
    )
