"""LXD configuration as every page shows it (server, instance, snapshot): one list of
entries, built by `config_entries`, so a secret-bearing value (hosts.lxd.config) reaches the
template only for a user who may see it (hosts.roles.may_see_secrets).  Templates render an
entry with `hosts/partials/config_value.html`."""

from __future__ import annotations

from dataclasses import dataclass

from ..lxd.config import is_secret_key
from .roles import may_see_secrets

HIDDEN = "•••• (hidden: admins only)"


def config_value(value) -> str:
    """LXD answers config values as strings, but a few come back as JSON booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass(frozen=True)
class ConfigEntry:
    key: str
    value: str  # "" when hidden: the secret never reaches the template
    hidden: bool = False
    source: str = ""  # instance config: "instance" or "profile"

    @property
    def volatile(self) -> bool:
        return self.key.startswith("volatile.")

    @property
    def shown(self) -> str:
        return HIDDEN if self.hidden else self.value


def config_entries(config: dict | None, user, *, local: dict | None = None) -> list[ConfigEntry]:
    """Sorted entries of `config`; with `local` (an instance's own config, `config` being the
    expanded one) each entry says whether it comes from the instance or a profile."""
    reveal = may_see_secrets(user)
    entries = []
    for key, value in sorted((config or {}).items()):
        hidden = not reveal and is_secret_key(key)
        source = "" if local is None else ("instance" if key in local else "profile")
        entries.append(ConfigEntry(key, "" if hidden else config_value(value), hidden, source))
    return entries
