"""Loading the fleet without letting the expensive part hold the page.

A host whose live model is fresh (hosts/fleet/model.py) is read from it: no LXD call at all,
state included.  The rest of this module is the fallback for the other hosts, asked directly
(and the page says why):

The first paint needs only `GET /1.0/instances?recursion=1` per host (database reads, tens of
ms), asked of every host in parallel within the page timeout. The state (`recursion=2`: IPs,
memory, snapshots) costs a state query per running instance, so it is fetched in the
background *from the same moment* and handed to the page's lazy per-host requests when they
arrive (keyed by a one-page token), instead of being started only once the browser asks.
A lazy request that finds no prefetch (another process, an expired token) fetches for itself.

Worker threads only speak LXD: no database access there (see hosts/status.py).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from concurrent.futures import Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from django.conf import settings

from ..concurrency import SLOW, submit
from ..domain.hoststatus import status_of_error
from ..lxd import LXDClient, LXDError
from ..lxd.errors import HostUnreachable
from ..models import Host
from . import model as fleet_model
from .rows import FleetQuery, InstanceRow

# recursion=2 grows with the number of running instances (130-230 ms each on busy hosts).
STATE_TIMEOUT = (0.5, 60.0)
PREFETCH_TTL = 90.0
# How long the state fetch of a network host waits for the cheap listing of the same host
# before starting anyway (a local unix-socket host has no latency to hide: it always waits).
STATE_HEAD_START = 0.05


@dataclass
class HostListing:
    host: Host
    instances: list[dict] = field(default_factory=list)
    error: LXDError | None = None
    elapsed: float = 0.0
    model: fleet_model.Freshness | None = None
    rows: list[InstanceRow] | None = None  # from the live model (fresh, or the host failed)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def live(self) -> bool:
        """Shown from a fresh live model (nothing asked of LXD)."""
        return self.model is not None and self.model.fresh

    @property
    def count(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.instances)

    @property
    def status(self) -> str:
        if self.live:
            return self.host.status
        return Host.Status.ONLINE if self.error is None else status_of_error(self.error)


@dataclass
class FleetLoad:
    token: str
    listings: list[HostListing]
    rows: list[InstanceRow]
    total: int

    @property
    def version(self) -> float:
        """The newest model write the page shows (its live socket catches up past it)."""
        return max((listing.model.version for listing in self.listings if listing.live), default=0.0)


class _Prefetches:
    """token+host -> the future of that host's recursion=2 listing, for one user, for a while."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], tuple[float, int | None, Future]] = {}

    def put(self, token: str, host_name: str, user_id: int | None, future: Future) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, (t, _, _) in self._items.items() if now - t > PREFETCH_TTL]:
                del self._items[key]
            self._items[(token, host_name)] = (now, user_id, future)

    def take(self, token: str, host_name: str, user_id: int | None) -> Future | None:
        with self._lock:
            item = self._items.get((token, host_name))
            if item is None or item[1] != user_id or time.monotonic() - item[0] > PREFETCH_TTL:
                return None
            del self._items[(token, host_name)]
            return item[2]

    def drop(self, token: str, host_name: str) -> None:
        with self._lock:
            self._items.pop((token, host_name), None)


prefetches = _Prefetches()


def _listing(client: LXDClient, recursion: int, timeout) -> list[dict]:
    return client.instances(recursion=recursion, timeout=timeout)


def load_fleet(hosts: list[Host], query: FleetQuery, user_id: int | None) -> FleetLoad:
    """Every host: from its live model when fresh, else asked directly (in parallel)."""
    token = secrets.token_urlsafe(12)
    found = fleet_model.freshness(hosts)
    live = [h for h in hosts if found[h.pk].fresh]
    rows = fleet_model.host_rows(live, found)
    asked = {
        listing.host.pk: listing
        for listing in _ask_hosts([h for h in hosts if not found[h.pk].fresh], token, user_id)
    }
    listings = []
    for host in hosts:
        listing = asked.get(host.pk) or HostListing(host, rows=rows[host.pk])
        listing.model = found[host.pk]
        if not listing.ok and listing.model.exists:
            # Better than nothing: what the model last knew, and how old that is.
            listing.rows = fleet_model.host_rows([host], found)[host.pk]
        listings.append(listing)
    shown = [
        row
        for listing in listings
        for row in (
            listing.rows
            if listing.rows is not None
            else (InstanceRow.from_lxd(listing.host.name, inst) for inst in listing.instances)
        )
        if query.keep(row)
    ]
    total = sum(listing.count for listing in listings)
    return FleetLoad(token, listings, query.sorted(shown), total)


def _ask_hosts(hosts: list[Host], token: str, user_id: int | None) -> list[HostListing]:
    """Every host's cheap listing, in parallel; start every host's state fetch alongside."""
    if not hosts:
        return []
    # Build clients here: decrypting keys and reading settings stay in the request thread.
    clients = {host.name: host.client() for host in hosts}
    futures = {host.name: submit(_timed_listing, clients[host.name]) for host in hosts}
    for host in hosts:
        if host.status in (Host.Status.ONLINE, Host.Status.UNKNOWN):
            # Healthy: start the state fetch as soon as the listing is done, or after a short
            # head start if the listing is slow (a distant host): the expensive call then
            # neither competes with the listing for the host's CPU nor waits on its latency.
            head_start = None if host.is_unix else STATE_HEAD_START
            future = submit(_state_after, futures[host.name], clients[host.name], head_start, pool=SLOW)
        else:
            # Down last time: only once the listing shows it is back, so a hanging host
            # does not hold a state thread for every page load.
            future = Future()
            futures[host.name].add_done_callback(_chain_state(clients[host.name], future))
        prefetches.put(token, host.name, user_id, future)
    # Each call is bounded by the page timeout; this bound only guards against a stuck pool.
    wait(futures.values(), timeout=sum(settings.LXD_PAGE_TIMEOUT) + 2)
    listings = []
    for host in hosts:
        future = futures[host.name]
        if not future.done():
            listing = HostListing(host, error=HostUnreachable(f"{host.name} did not answer in time"))
        else:
            listing = future.result()
            listing.host = host
        if not listing.ok:
            prefetches.drop(token, host.name)  # nobody will ask for its state
        listings.append(listing)
    return listings


def _state_after(listing_future: Future, client: LXDClient, head_start: float | None) -> list[dict]:
    with contextlib.suppress(FutureTimeout):
        listing = listing_future.result(timeout=head_start)
        if not listing.ok:
            raise listing.error
    return _listing(client, 2, STATE_TIMEOUT)


def _chain_state(client: LXDClient, target: Future):
    def start(listing_future: Future) -> None:
        listing = listing_future.result()
        if not listing.ok:
            target.set_exception(listing.error)
            return
        state = submit(_listing, client, 2, STATE_TIMEOUT, pool=SLOW)
        state.add_done_callback(lambda done: _copy_result(done, target))

    return start


def _copy_result(source: Future, target: Future) -> None:
    if source.exception() is not None:
        target.set_exception(source.exception())
    else:
        target.set_result(source.result())


def _timed_listing(client: LXDClient) -> HostListing:
    started = time.monotonic()
    try:
        instances = _listing(client, 1, None)
    except LXDError as exc:
        return HostListing(None, error=exc, elapsed=time.monotonic() - started)  # type: ignore[arg-type]
    return HostListing(None, instances, elapsed=time.monotonic() - started)  # type: ignore[arg-type]


def host_state_rows(host: Host, token: str, user_id: int | None) -> list[InstanceRow]:
    """The host's rows with their state: from its live model when fresh, else its recursion=2
    listing (the page's prefetch if there is one, else fetched now).  Raises LXDError, or
    TimeoutError if the host is slower than STATE_TIMEOUT allows."""
    found = fleet_model.freshness([host])
    if found[host.pk].fresh:
        prefetches.drop(token, host.name)
        return fleet_model.host_rows([host], found)[host.pk]
    future = prefetches.take(token, host.name, user_id) if token else None
    if future is None:
        future = submit(_listing, host.client(), 2, STATE_TIMEOUT, pool=SLOW)
    instances = future.result(timeout=sum(STATE_TIMEOUT) + 5)
    return [InstanceRow.from_lxd(host.name, instance) for instance in instances]
