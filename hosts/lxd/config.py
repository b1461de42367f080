"""LXD configuration keys: which ones bear a secret.

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
