"""What LXD and Incus hosts can do with each other, decided before anything is sent.

Images cross freely: a target pulls from the source as an anonymous client of the same image
protocol ("lxd"), checked both ways between LXD 5.0.2 and Incus 6.0.4.

Instances do not: neither project supports migration to the other.  On the lab daemons a
stopped container without snapshots did cross both ways, but a copy with snapshots from Incus
failed on LXD after the transfer had started ("Unknown configuration key:
volatile.uuid.generation"), and config keys of one are unknown to the other.  So a copy or
move between kinds is refused up front, with the reason, rather than failing late; the copy
and move pages call `transfer_refusal` for every target they offer and before they start.
"""

from __future__ import annotations

from ..lxd import LXDError
from ..lxd.errors import UserError
from ..lxd.server import ServerKind
from ..models import Host


class AcrossServerKinds(UserError):
    """A copy or move between an LXD host and an Incus host."""

    http_status = 409


def kind_of(host: Host) -> ServerKind | None:
    """As the host's record says, else as the host says now (None if it cannot be asked)."""
    known = host.server.kind
    if known is not None:
        return known
    try:
        return host.client().kind
    except LXDError:
        return None


def transfer_refusal(source: Host, target: Host) -> str | None:
    """Why an instance cannot be copied or moved from `source` to `target`, or None."""
    if source.pk == target.pk:
        return None
    source_kind, target_kind = kind_of(source), kind_of(target)
    if source_kind is None or target_kind is None or source_kind == target_kind:
        return None
    return (
        f"{source.name} runs {source_kind.label} and {target.name} runs {target_kind.label}: "
        f"instances cannot be copied or moved between {source_kind.label} and {target_kind.label} "
        "(neither supports migrating to the other; snapshots and config keys one of them does not "
        "know fail part-way). Publish it as an image, copy that, and create from it instead."
    )


def check_transfer(source: Host, target: Host) -> None:
    """Raise AcrossServerKinds (409) for a copy or move the two servers cannot do."""
    refusal = transfer_refusal(source, target)
    if refusal is not None:
        raise AcrossServerKinds(refusal)
