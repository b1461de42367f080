"""The live model of the fleet, as pages read it: every instance of every host, kept in the
database by the events relay (hosts/live/model.py writes it; nothing else does).

Why the database: every web process and `manage.py relay` share it already, it survives a
restart of either, and a page reads it with the queries it makes anyway (no second store to
run, no cross-process cache to keep coherent).  A page asks it instead of LXD when the host's
model is fresh:

    fresh   the relay that writes it is running (in the embedded mode: in this very process)
            and connected to the host, and LXD confirmed the model recently (an event, a
            listing: at least once per counters cadence)
    stale   anything else: the page says so, with the age of the model, and asks LXD itself

The shape is defined here once: `model_data` is what a fleet row shows (and what the relay
pushes to browsers: small, no config but the image keys), `model_detail` what the instance
page adds (interfaces with their counters, snapshots, the configuration's revision).
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

from ..lxd.network import detail_network, shown_network
from ..models import Host, HostSync, InstanceState
from .rows import InstanceRow, row_config

# -- the shape ---------------------------------------------------------------------------------


def model_data(instance: dict) -> dict:
    """The instance as a row needs it, small enough to copy to every browser's channel:
    LXD's instance object without devices and backups, its config reduced to the image keys
    the row shows (no secrets: environment.*, cloud-init ...), snapshots as names, and the
    network reduced to the addresses a row shows (a bounded number)."""
    data = {
        k: v
        for k, v in instance.items()
        if k not in ("backups", "snapshots", "devices", "expanded_devices", "state", "expanded_config")
    }
    data["config"] = row_config(instance.get("config"))
    if "snapshots" in instance:  # recursion=1 listings do not say
        data["snapshots"] = [
            {"name": s.get("name", ""), "created_at": s.get("created_at", "")}
            for s in instance.get("snapshots") or []
        ]
    state = instance.get("state")
    if isinstance(state, dict):
        data["state"] = {k: v for k, v in state.items() if k != "network"}
        data["state"].update(shown_network(state))
    return data


def model_detail(instance: dict) -> dict:
    """What the instance page shows beyond the row: the network bounded as the page shows
    it (with counters), snapshots with their dates and sizes, and the revision of the
    configuration (so a page knows when to ask LXD for the configuration again)."""
    detail: dict = {"rev": config_rev(instance)}
    state = instance.get("state")
    if isinstance(state, dict):
        detail.update(detail_network(state))
    if "snapshots" in instance:
        detail["snapshots"] = [
            {k: s.get(k) for k in ("name", "created_at", "expires_at", "stateful", "size")}
            for s in instance.get("snapshots") or []
        ]
    return detail


REV_FIELDS = ("architecture", "config", "devices", "ephemeral", "profiles", "description", "stateful")


def config_rev(instance: dict) -> str:
    """A keyed digest of what the instance page's configuration shows: changes whenever LXD's
    answer would, and says nothing about the values (secrets among them) to whoever sees it."""
    parts = {k: instance.get(k) for k in REV_FIELDS}
    return salted_hmac("hosts.fleet.model.config_rev", repr(sorted(_flatten(parts)))).hexdigest()[:20]


def _flatten(value, prefix: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}/{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _flatten(inner, f"{prefix}[{index}]")
    else:
        yield prefix, repr(value)


def as_instance(data: dict, detail: dict) -> dict:
    """An LXD-shaped instance (recursion=1 of one instance, without config and devices) from
    the model, for the instance page (hosts/fleet/detail.py)."""
    instance = dict(data)
    if "snapshots" in detail:
        instance["snapshots"] = detail["snapshots"]
    if isinstance(data.get("state"), dict):
        state = dict(data["state"])
        state.update({k: v for k, v in detail.items() if k in ("network", "interfaces_not_shown")})
        instance["state"] = state
    return instance


# -- who writes it -----------------------------------------------------------------------------

# Runs of the model writer alive in this process (hosts/live/model.py adds and removes them).
# In the embedded mode the only writer there can be is this process's: a model written by
# another run is one kept from before a restart.
local_writers: set[str] = set()


def cadence() -> float:
    return float(settings.DASHBOARD_COUNTERS_SECONDS)


def stale_after() -> float:
    """A connected relay confirms a host's model at least once per counters cadence (the
    state listing); past this it has stopped doing so (a relay process gone, a host hung)."""
    return 2 * cadence() + 10.0


def _embedded() -> bool:
    return getattr(settings, "DASHBOARD_RELAY", "embedded") == "embedded"


@dataclass
class Freshness:
    """What a page may say about one host's model."""

    host_id: int
    exists: bool = False  # the relay has ever listed this host
    fresh: bool = False
    kept: bool = False  # written by a relay that is no longer running (a restart)
    connected: bool = False
    confirmed_at: dt.datetime | None = None
    synced_at: dt.datetime | None = None
    counters_at: dt.datetime | None = None
    changed_at: dt.datetime | None = None
    now: dt.datetime | None = None

    @property
    def age(self) -> float | None:
        """Seconds since LXD last confirmed the model."""
        if self.confirmed_at is None or self.now is None:
            return None
        return max(0.0, (self.now - self.confirmed_at).total_seconds())

    @property
    def counters_age(self) -> float | None:
        if self.counters_at is None or self.now is None:
            return None
        return max(0.0, (self.now - self.counters_at).total_seconds())

    @property
    def version(self) -> float:
        """The model's last write, as a page passes it to its live socket."""
        return self.changed_at.timestamp() if self.changed_at else 0.0

    @property
    def why_stale(self) -> str:
        if self.fresh:
            return ""
        if not self.exists:
            return "no live model yet"
        if self.kept:
            return "live model kept from before a restart"
        if not self.connected:
            return "the events stream is down"
        return "the relay has not confirmed it lately"


def _freshness(sync: HostSync | None, host_id: int, now: dt.datetime) -> Freshness:
    if sync is None:
        return Freshness(host_id, now=now)
    alive = sync.relay in local_writers if _embedded() else True
    found = Freshness(
        host_id,
        exists=sync.synced_at is not None,
        connected=sync.connected,
        confirmed_at=sync.confirmed_at,
        synced_at=sync.synced_at,
        counters_at=sync.counters_at,
        changed_at=sync.changed_at,
        now=now,
    )
    recent = found.age is not None and found.age <= stale_after()
    found.kept = found.exists and not alive
    found.fresh = found.exists and alive and sync.connected and recent
    return found


def freshness(hosts: Iterable[Host]) -> dict[int, Freshness]:
    """Each host's model freshness (one query)."""
    ids = [h.pk for h in hosts]
    syncs = {s.host_id: s for s in HostSync.objects.filter(host_id__in=ids)}
    now = timezone.now()
    return {pk: _freshness(syncs.get(pk), pk, now) for pk in ids}


# -- reading rows ------------------------------------------------------------------------------


class _RowCache:
    """Each host's rows as built at its last write (changed_at): most page loads between two
    writes (the counters come once per cadence) read no instance from the database at all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[int, tuple[dt.datetime | None, str, list[InstanceRow]]] = {}

    def rows(self, hosts: list[Host], found: dict[int, Freshness]) -> dict[int, list[InstanceRow]]:
        out: dict[int, list[InstanceRow]] = {}
        missing: list[Host] = []
        with self._lock:
            for host in hosts:
                item = self._items.get(host.pk)
                if item is not None and item[0] == found[host.pk].changed_at and item[1] == host.name:
                    out[host.pk] = item[2]
                else:
                    missing.append(host)
        if missing:
            names = {h.pk: h.name for h in missing}
            read: dict[int, list[InstanceRow]] = {pk: [] for pk in names}
            query = InstanceState.objects.filter(host_id__in=list(names)).values_list("host_id", "data")
            for host_id, data in query.order_by("host_id", "name"):
                read[host_id].append(InstanceRow.from_lxd(names[host_id], data))
            # Stamps read before the rows: a write between the two reads is seen next time.
            with self._lock:
                for pk, rows in read.items():
                    self._items[pk] = (found[pk].changed_at, names[pk], rows)
                for pk in [pk for pk in self._items if pk not in found and len(self._items) > 1000]:
                    del self._items[pk]
            out.update(read)
        # Callers mark rows (a tentative match): each gets its own copies.
        return {pk: [copy.copy(r) for r in rows] for pk, rows in out.items()}


_rows = _RowCache()


def host_rows(hosts: list[Host], found: dict[int, Freshness]) -> dict[int, list[InstanceRow]]:
    """The rows of these hosts (whose freshness `found` was read first), in name order."""
    return _rows.rows(hosts, found)


def instance_model(host: Host, name: str) -> tuple[Freshness, tuple[dict, dict] | None]:
    """The host's freshness, and (data, detail) of the instance if the model is fresh and
    knows it (one created a moment ago may not be written yet: callers then ask LXD)."""
    found = freshness([host])[host.pk]
    if not found.fresh:
        return found, None
    row = InstanceState.objects.filter(host_id=host.pk, name=name).values_list("data", "detail").first()
    return found, row


def changed_since(host_names: Iterable[str], version: float) -> bool:
    """Did the model of any of these hosts change after `version` (a page's Freshness.version)?"""
    since = dt.datetime.fromtimestamp(version, tz=dt.UTC)
    return HostSync.objects.filter(host__name__in=list(host_names), changed_at__gt=since).exists()
