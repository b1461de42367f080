"""LXD configuration keys: which ones bear a secret, which take effect only on a restart.

Server keys (`config` of GET /1.0): LXD 5.0.2 hides only `core.trust_password` (it answers
"true"); `maas.api.key`, `candid.api.key`, `rbac.agent.private_key` and, in later releases,
`loki.auth.password`, `oidc.client.secret` or `network.ovn.client_key` come back verbatim.
Instance keys: `environment.*` is handed to every process of the instance (and LXD writes it
into the instance's lxc.conf log as `lxc.environment = NAME=value`); cloud-init and
`user.*-data` carry passwords and keys; `raw.lxc` / `raw.qemu*` may set any of those.

The rule is by name, so a key LXD adds later is covered when its name says what it holds.
`volatile.*` is LXD's own bookkeeping (MACs, id maps, the base image): never a secret.
"""

from __future__ import annotations

import re

_INSTANCE_PREFIXES = ("environment.", "cloud-init.", "raw.lxc", "raw.qemu")
_INSTANCE_KEYS = frozenset({"user.user-data", "user.vendor-data", "user.network-config", "user.meta-data"})
_WORDS = re.compile(r"pass(word|wd|phrase)|secret|private[_-]?key|token|credential", re.IGNORECASE)
# lxc.conf as LXD writes it, and raw.lxc lines as a person writes them.
_LXC_ENVIRONMENT = re.compile(r"^(\s*lxc\.environment\s*=\s*)([^=\n]*)(=[^\n]*)?$", re.MULTILINE)


def is_secret_key(key: str) -> bool:
    """Whether a server or instance config key bears a secret (a value only admins may see)."""
    name = key.lower()
    if name.startswith("volatile."):
        return False
    if name in _INSTANCE_KEYS or name.startswith(_INSTANCE_PREFIXES):
        return True
    parts = name.split(".")
    if "auth" in parts[:-1]:  # loki.auth.username, loki.auth.password, ...
        return True
    # maas.api.key, candid.api.key, network.ovn.client_key, user.ssh-key
    if parts[-1] == "key" or parts[-1].endswith(("_key", "-key")):
        return True
    return bool(_WORDS.search(name))


def redact_lxc_environment(text: str, mask: str) -> str:
    """An instance log (lxc.conf) with the value of every `lxc.environment` line replaced by
    `mask`: the variable's name stays, so a reader still sees that it is set."""

    def masked(match: re.Match) -> str:
        if match.group(3) is None:  # `lxc.environment = NAME` passes the host's value through
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}={mask}"

    return _LXC_ENVIRONMENT.sub(masked, text)


# -- which instance keys take effect only when the instance (re)starts --------------------------
# From LXD 5.0's instance options ("Live update: no"), checked on the lab for two of them: a new
# `limits.kernel.nofile` shows in the container's /proc/1/limits only after a restart, while
# `limits.memory` moves the running container's cgroup at once.  cloud-init.* is read from the
# seed LXD writes at start (a change gives the instance a new cloud-init instance-id).
_RESTART_PREFIXES = (
    "limits.kernel.",
    "linux.sysctl.",
    "nvidia.",
    "cloud-init.",
    "security.idmap.",
    "raw.idmap",
    "raw.lxc",
    "raw.qemu",
    "raw.seccomp",
)
_RESTART_KEYS = frozenset(
    {
        "security.privileged",
        "security.devlxd",
        "security.devlxd.images",
        "security.secureboot",
        "security.agent.metrics",
        "limits.memory.hugepages",
        "migration.stateful",
        "agent.nic_config",
    }
)
# security.syscalls.* need a restart, but for these three LXD applies at once.
_LIVE_SYSCALL_KEYS = frozenset(
    {
        "security.syscalls.intercept.mount.allowed",
        "security.syscalls.intercept.mount.fuse",
        "security.syscalls.intercept.mount.shift",
    }
)


def needs_restart(key: str) -> bool:
    """Whether a running instance picks up a change of `key` only once restarted."""
    if key in _RESTART_KEYS or key.startswith(_RESTART_PREFIXES):
        return True
    return key.startswith("security.syscalls.") and key not in _LIVE_SYSCALL_KEYS
