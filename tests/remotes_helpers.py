"""Configuration directories of the real `lxc` and `incus` tools, made against the lab's daemons
(real certificates, real trust), never read from this machine's ~/.config."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from tests.lab import LabDaemon


def tool(daemon_kind: str, conf: Path, *args: str) -> subprocess.CompletedProcess:
    """`lxc` or `incus` working on the configuration directory `conf` (LXD_CONF / INCUS_CONF)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LXD_DIR", "INCUS_DIR")}
    if daemon_kind == "incus":
        env["INCUS_CONF"], command = str(conf), "incus"
    else:
        env["LXD_CONF"], command = str(conf), "lxc"
    return subprocess.run([command, *args], env=env, capture_output=True, text=True, check=True, timeout=60)


def add_remote(conf: Path, name: str, daemon: LabDaemon) -> None:
    """`lxc remote add NAME TOKEN` (LXD 5.0's tool takes the token as the address) or
    `incus remote add NAME URL --token TOKEN`: the tool pins the server and gets its own
    client certificate trusted."""
    token = daemon.trust_token("cli-" + name)
    if daemon.kind == "incus":
        tool("incus", conf, "remote", "add", name, daemon.url, "--token", token, "--accept-certificate")
    else:
        tool("lxd", conf, "remote", "add", name, token)


def client_fingerprint(conf: Path) -> str:
    from hosts.lxd.certs import fingerprint_of_pem

    return fingerprint_of_pem((conf / "client.crt").read_text())


def snapshot(conf: Path) -> dict[str, tuple[str, float, int]]:
    """Every file of the directory: (sha256, mtime, mode), to prove nothing was changed."""
    return {
        str(path.relative_to(conf)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime,
            path.stat().st_mode,
        )
        for path in sorted(conf.rglob("*"))
        if path.is_file()
    }
