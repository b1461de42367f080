"""The live model's one writer (hosts/fleet/model.py says what it is and how pages read it).

The relay's instance trackers say what changed through the callables of a `HostModel` (one
per host); the `ModelWriter` (one per relay) gathers those notes and writes them in batches,
in a pool thread (hosts/concurrency.py), never on the event loop:

    store({name: (data, detail) or None}, every=names, project=p)
                                  one project's rows changed or gone; `every`, after a full
                                  listing: all that project has (names are unique per project)
    projects(names)               after a listing of every project: the projects the relay
                                  tracks (the model keeps no other: one kept from before)
    connected() / synced() / counters(t) / lost()       the host's HostSync: how far to trust it
    heard()                                              LXD said something (an event, an answer)

Ordering: the relay sends a change to browsers only once it is written (`written(stamp)`), so
a page that read the model before a write and opened its socket after the push still learns
of it: the write is newer than the version the page read (live/consumers.py catches up).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..concurrency import in_thread
from ..fleet import model as fleet_model
from ..lxd.projects import DEFAULT_PROJECT
from ..models import Host, HostSync, InstanceState

log = logging.getLogger(__name__)

Row = tuple[dict, dict]  # (data, detail), see hosts/fleet/model.py
Key = tuple[str, str]  # (project, name): one name may be in two projects


@dataclass
class Notes:
    """What is waiting to be written for one host (the latest note per instance wins)."""

    rows: dict[Key, Row | None] = field(default_factory=dict)
    # After a full listing: every instance of each project listed.
    every: dict[str, set[str]] = field(default_factory=dict)
    # After a listing of every project: the projects that may keep rows.
    projects: set[str] | None = None
    sync: dict = field(default_factory=dict)  # HostSync fields

    def note(self, project: str, name: str, row: Row | None) -> None:
        self.rows[(project, name)] = row
        if project in self.every:
            (self.every[project].add if row is not None else self.every[project].discard)(name)
        if self.projects is not None and row is not None:
            self.projects.add(project)

    def merge_back(self, newer: Notes) -> Notes:
        """A failed batch under the notes taken since (which win)."""
        merged = Notes(
            dict(self.rows),
            {p: set(names) for p, names in self.every.items()},
            set(self.projects) if self.projects is not None else None,
            {**self.sync, **newer.sync},
        )
        if newer.projects is not None:
            merged.projects = set(newer.projects)
        for (project, name), row in newer.rows.items():
            merged.note(project, name, row)
        merged.every.update({p: set(names) for p, names in newer.every.items()})
        return merged


class HostModel:
    """One host's handle on the writer: the callables its relay and trackers are given."""

    def __init__(self, writer: ModelWriter, host_id: int):
        self.writer, self.host_id = writer, host_id
        self.heard_at: float | None = None  # wall time LXD last said something
        self.confirmed: float | None = None  # the heard_at last written
        self.is_connected = False

    def _notes(self) -> Notes:
        return self.writer.notes(self.host_id)

    def store(
        self, rows: dict[str, Row | None], every: set[str] | None = None, *, project: str = DEFAULT_PROJECT
    ) -> None:
        notes = self._notes()
        if every is not None:
            notes.every[project] = set(every)
        for name, row in rows.items():
            notes.note(project, name, row)
        self.writer.noted()

    def projects(self, projects: set[str]) -> None:
        """A listing of every project was handed to these projects' trackers: rows of any
        other project are gone (a model kept from before a restart may hold some)."""
        notes = self._notes()
        notes.projects = set(projects) | {p for (p, _), row in notes.rows.items() if row is not None}
        self.writer.noted()

    def heard(self) -> None:
        self.heard_at = time.time()

    def connected(self) -> None:
        """The events stream is open (the model is not trusted before the first listing)."""
        self.is_connected = True

    def synced(self) -> None:
        """A full listing was applied: the model is the host's, and maintained from here on."""
        now = timezone.now()
        self.heard()
        self._notes().sync.update(
            relay=self.writer.run_id, connected=True, synced_at=now, confirmed_at=now, lost_at=None
        )
        self.writer.noted()

    def counters(self, started: float) -> None:
        """A state listing that began at `started` (wall time) was applied."""
        when = dt.datetime.fromtimestamp(started, tz=dt.UTC)
        self.heard()
        self._notes().sync.update(counters_at=when, confirmed_at=timezone.now())
        self.writer.noted()

    def lost(self) -> None:
        """The events stream ended: what the model shows is no longer followed."""
        if not self.is_connected:
            return
        self.is_connected = False
        self._notes().sync.update(relay=self.writer.run_id, connected=False, lost_at=timezone.now())
        self.writer.noted()

    def confirm(self) -> None:
        """Heartbeat: carry the last word from LXD into the database."""
        if self.is_connected and self.heard_at is not None and self.heard_at != self.confirmed:
            self.confirmed = self.heard_at
            when = dt.datetime.fromtimestamp(self.heard_at, tz=dt.UTC)
            self._notes().sync.setdefault("confirmed_at", when)


class ModelWriter:
    # A burst of events (a bulk start) still goes out in few writes: what arrives while one
    # write is under way waits for the next.  No delay before the first: pushes wait for it.
    FLUSH_DELAY = 0.0
    HEARTBEAT = 5.0
    RETRY = 1.0

    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex
        self.hosts: dict[int, HostModel] = {}
        self.pending: dict[int, Notes] = {}
        self.count = 0  # notes taken
        self.done = 0  # notes written (or given up on)
        self.wake = asyncio.Event()
        self.flushed = asyncio.Event()
        self.saving: asyncio.Future | None = None
        self._last_stamp: dt.datetime | None = None

    def host(self, host_id: int) -> HostModel:
        model = self.hosts.get(host_id)
        if model is None:
            model = self.hosts[host_id] = HostModel(self, host_id)
        return model

    def forget(self, host_id: int) -> None:
        self.hosts.pop(host_id, None)

    def notes(self, host_id: int) -> Notes:
        return self.pending.setdefault(host_id, Notes())

    def noted(self) -> int:
        self.count += 1
        self.wake.set()
        return self.count

    async def written(self, stamp: int, timeout: float = 2.0) -> None:
        """Until every note taken up to `stamp` is written (bounded: a database that does not
        answer must not hold the browsers' pushes for good)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.done < stamp:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            flushed = self.flushed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):  # wait_for may swallow a cancel (3.11)
                    await flushed.wait()

    async def run(self) -> None:
        fleet_model.local_writers.add(self.run_id)
        beat = time.monotonic()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.HEARTBEAT):  # (wait_for may swallow a cancel)
                        await self.wake.wait()
                if time.monotonic() - beat >= self.HEARTBEAT:
                    beat = time.monotonic()
                    for model in self.hosts.values():
                        model.confirm()
                await asyncio.sleep(self.FLUSH_DELAY)
                await self.flush()
        finally:
            fleet_model.local_writers.discard(self.run_id)

    async def close(self) -> None:
        """Wait for a write under way, then write what is left."""
        if self.saving is not None and not self.saving.done():
            await asyncio.wait([self.saving])
        with contextlib.suppress(Exception):
            await self.flush()

    async def flush(self) -> None:
        self.wake.clear()
        batch, self.pending = self.pending, {}
        upto = self.count
        if batch:
            self.saving = asyncio.ensure_future(in_thread(self._write, batch, self._stamp()))
            try:
                # Shielded: a cancelled relay must not leave a thread writing behind its back.
                await asyncio.shield(self.saving)
            except Exception:
                log.exception("could not write the live model of %d host(s); will try again", len(batch))
                for host_id, notes in batch.items():
                    self.pending[host_id] = notes.merge_back(self.pending.get(host_id, Notes()))
                self.wake.set()
                await asyncio.sleep(self.RETRY)
        self.done = max(self.done, upto)
        self.flushed.set()
        self.flushed = asyncio.Event()

    def _stamp(self) -> dt.datetime:
        """The write's time, strictly after the previous one's (pages compare them)."""
        now = timezone.now()
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + dt.timedelta(microseconds=1)
        self._last_stamp = now
        return now

    @staticmethod
    def _write(batch: dict[int, Notes], stamp: dt.datetime) -> None:
        for attempt in range(2):
            try:
                with transaction.atomic():
                    # A host removed meanwhile takes its rows with it (CASCADE): never write
                    # them back.  Under SQLite's IMMEDIATE transactions nobody deletes it
                    # between this read and the writes; elsewhere the foreign key refuses.
                    alive = set(Host.objects.filter(pk__in=list(batch)).values_list("pk", flat=True))
                    for host_id, notes in batch.items():
                        if host_id in alive:
                            _write_host(host_id, notes, stamp)
                return
            except IntegrityError:
                if attempt:
                    raise


CHUNK = 500


def _write_host(host_id: int, notes: Notes, stamp: dt.datetime) -> None:
    sync = dict(notes.sync)
    if notes.rows or notes.every or notes.projects is not None:
        states = InstanceState.objects.filter(host_id=host_id)
        if notes.projects is not None:
            states.exclude(project__in=sorted(notes.projects)).delete()
        gone: dict[str, set[str]] = {}
        for (project, name), row in notes.rows.items():
            if row is None:
                gone.setdefault(project, set()).add(name)
        for project, names in notes.every.items():
            known = set(states.filter(project=project).values_list("name", flat=True))
            gone.setdefault(project, set()).update(known - names)
        for project, names in gone.items():
            ordered = sorted(names)
            for start in range(0, len(ordered), CHUNK):
                states.filter(project=project, name__in=ordered[start : start + CHUNK]).delete()
        rows = [
            InstanceState(
                host_id=host_id,
                project=project,
                name=name,
                # The row names its project whatever LXD's answer said (pages read it there).
                data={**row[0], "project": project},
                detail=row[1],
                updated_at=stamp,
            )
            for (project, name), row in notes.rows.items()
            if row is not None
        ]
        InstanceState.objects.bulk_create(
            rows,
            batch_size=CHUNK,
            update_conflicts=True,
            unique_fields=["host", "project", "name"],
            update_fields=["data", "detail", "updated_at"],
        )
        sync["changed_at"] = stamp
    if sync:
        updated = HostSync.objects.filter(host_id=host_id).update(**sync)
        if not updated:
            HostSync.objects.create(host_id=host_id, **sync)
