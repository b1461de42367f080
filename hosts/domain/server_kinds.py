"""What LXD and Incus hosts can do with each other, decided before anything is sent.

Images cross freely: a target pulls from the source as an anonymous client of the same image
protocol ("lxd"), checked both ways between LXD 5.0.2 and Incus 6.0.4.

Instances do not: neither project supports migration to the other.  On the lab daemons a
stopped container without snapshots did cross both ways, but a copy with snapshots from Incus
failed on LXD after the transfer had started ("Unknown configuration key:
volatile.uuid.generation"), and config keys of one are unknown to the other.  So a copy or
move between kinds is refused up front, with the reason, rather than failing late: the plan of
every copy and move (domain/copy.py) asks `transfer_refusal` first, and the copy/move page
names the hosts it cannot go to before anyone picks one.

Backups cross one way only: an LXD 5.0.2 export restores and starts on Incus 6.0.4, but LXD
refuses an Incus export once it has read it all ("Unknown configuration key:
volatile.last_state.ready"), so restoring a kept Incus export on LXD is refused up front
(`restore_refusal`).
"""

from __future__ import annotations

from ..lxd import LXDError
from ..lxd.server import INCUS, LXD, ServerKind
from ..models import Host


def kind_of(host: Host, *, ask: bool = True) -> ServerKind | None:
    """As the host's record says, else as the host says now (None if it cannot be asked, or
    `ask` is False: a page listing every host must not wait on one that does not answer)."""
    known = host.server.kind
    if known is not None or not ask:
        return known
    try:
        return host.client().kind
    except LXDError:
        return None


def transfer_refusal(source: Host, target: Host, *, ask: bool = True) -> str | None:
    """Why an instance cannot be copied or moved from `source` to `target`, or None."""
    if source.pk == target.pk:
        return None
    source_kind, target_kind = kind_of(source, ask=ask), kind_of(target, ask=ask)
    if source_kind is None or target_kind is None or source_kind == target_kind:
        return None
    return (
        f"{source.name} runs {source_kind.label} and {target.name} runs {target_kind.label}: "
        f"instances cannot be copied or moved between {source_kind.label} and {target_kind.label} "
        "(neither supports migrating to the other; snapshots and config keys one of them does not "
        "know fail part-way). Publish it as an image, copy that, and create from it instead."
    )


def restore_refusal(made_on: Host | None, target: Host) -> str | None:
    """Why a backup exported from `made_on` cannot be restored on `target`, or None (also when
    the host it came from is no longer registered or its kind is not recorded: the restore must
    not wait on that host, and LXD's own answer then says why)."""
    if made_on is None or kind_of(made_on, ask=False) is not INCUS or kind_of(target) is not LXD:
        return None
    return (
        f"this backup was made on {made_on.name}, which runs Incus, and {target.name} runs LXD: LXD "
        "cannot restore an Incus backup (it refuses Incus' config keys after reading it all). "
        "Restore it on an Incus host."
    )
