"""Ordering: LXD delivers events out of order (one goroutine per event and listener).  Real
events captured from the lab are fed to the relay's trackers shuffled as LXD shuffles
them; what reaches the groups must stay ordered and monotonic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.asyncio.client import unix_connect

from hosts.live import groups
from hosts.live.instances import InstanceTracker
from hosts.live.operations import OperationTracker
from hosts.lxd.events import Lifecycle, parse_event
from hosts.lxd.operation import Operation, parse_progress
from hosts.lxd.timestamps import timestamp_ns as parse_timestamp
from tests.support import new_name

NAME = new_name("ord")  # the instance the captured events are about


def test_timestamps_compare_whatever_go_trimmed():
    # Go's RFC3339Nano trims trailing zeros, so the strings do not sort; the numbers do.
    assert parse_timestamp("2026-11-27T02:13:17.2023635Z") == parse_timestamp(
        "2026-11-27T02:13:17.202363500Z"
    )
    assert parse_timestamp("2026-11-27T02:13:17.2023635Z") < parse_timestamp("2026-11-27T02:13:17.20236351Z")
    assert parse_timestamp("2026-11-27T03:13:17.5+01:00") == parse_timestamp("2026-11-27T02:13:17.5Z")
    assert parse_timestamp("garbage") == 0


@pytest.mark.parametrize(
    ("metadata", "stage", "percent", "speed"),
    [
        # 5.0.2 image download: a string only
        ({"download_progress": "50% (170.05MB/s)"}, "download", 50, 170.05e6),
        # unpack: a string and a dict of strings
        (
            {
                "create_instance_from_image_unpack_progress": "Unpack: 42% (22.82MB/s)",
                "progress": {
                    "percent": "42",
                    "speed": "22823550",
                    "stage": "create_instance_from_image_unpack",
                },
            },
            "create_instance_from_image_unpack",
            42,
            22823550.0,
        ),
        # percent is left out while it is 0
        (
            {"progress": {"speed": "0", "stage": "create_instance_from_image_unpack"}},
            "create_instance_from_image_unpack",
            0,
            0.0,
        ),
        # later LXD: download with a dict too
        (
            {
                "download_progress": "7% (1.2GB/s)",
                "progress": {"stage": "download", "percent": "7", "speed": "1200000000"},
            },
            "download",
            7,
            1.2e9,
        ),
        # a phase without numbers
        ({"container_progress": "Remapping container filesystem"}, "container", None, None),
    ],
)
def test_progress_in_every_shape_lxd_sends(metadata, stage, percent, speed):
    progress = parse_progress(metadata)
    assert (progress.stage, progress.percent, progress.speed) == (stage, percent, speed)


def test_no_progress_when_there_is_none():
    assert parse_progress(None) is None
    assert parse_progress({"container_progress": ""}) is None
    assert parse_progress({"command": ["true"], "fds": {"0": "secret"}}) is None


@pytest.fixture(scope="module")
def captured(lab):
    """Every event of a real create + start + snapshot + stop on d1, in delivery order."""

    async def capture() -> list[dict]:
        events: list[dict] = []

        def work():
            for args in (
                ("init", "busybox", NAME),
                ("start", NAME),
                ("snapshot", NAME, "s1"),
                ("stop", "--force", NAME),
            ):
                lab.d1.lxc(*args)

        def complete() -> bool:
            """Every operation seen has reached its end, and so has the instance."""
            final: dict[str, bool] = {}
            for event in events:
                meta = event.get("metadata") or {}
                if event["type"] == "operation":
                    final[meta["id"]] = final.get(meta["id"], False) or meta["status_code"] >= 200
            stopped = any(
                e["type"] == "lifecycle" and e["metadata"]["action"] == "instance-stopped" for e in events
            )
            return stopped and all(final.values())

        async with unix_connect(lab.d1.socket, "ws://lxd/1.0/events?type=operation,lifecycle") as ws:
            running = asyncio.create_task(asyncio.to_thread(work))
            async with asyncio.timeout(60):
                while not (running.done() and complete()):
                    with contextlib.suppress(TimeoutError):
                        events.append(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
            await running
        return events

    try:
        # Its own loop in its own thread: the async tests that use this fixture run in a loop.
        with ThreadPoolExecutor(1) as pool:
            yield pool.submit(asyncio.run, capture()).result()
    finally:
        lab.d1.lxc("delete", "--force", NAME, check=False)


def lxd_shuffle(events: list, seed: int) -> list:
    """Reorder as LXD does: neighbours swap places, never far apart."""
    rng = random.Random(seed)
    shuffled = list(events)
    for i in range(len(shuffled) - 1):
        if rng.random() < 0.4:
            shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    return shuffled


class Trackers:
    """A host's two trackers on plain inputs: what they send is collected, an instance fetch
    answers from a dict (no relay, no host, no database)."""

    def __init__(self):
        self.pushes: list[dict] = []
        self.tasks: set[asyncio.Task] = set()
        self.operations = OperationTracker("lab1", send=self.pushes.append, note=lambda record: None)
        self.instances = InstanceTracker(
            send=self.pushes.append, spawn=self.spawn, fetch=self.fetch, busy=self.operations.busy
        )

    def spawn(self, coro, name):
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        return task

    async def fetch(self, name):
        return {"name": name, "status": "Stopped"}

    async def settle(self):
        """Every state fetch done, every throttled progress push sent."""
        while not all(t.done() for t in self.tasks):
            await asyncio.gather(*self.tasks)
        self.operations.flush()


@pytest.mark.parametrize("seed", range(5))
async def test_shuffled_real_events_give_ordered_monotonic_pushes(captured, seed):
    parsed = [e for e in (parse_event(raw) for raw in captured) if e is not None]
    assert any(isinstance(e, Operation) and e.progress and e.progress.percent for e in parsed)
    trackers = Trackers()
    trackers.instances.resync({NAME: "Stopped"}, 0.0)  # the row is on the page already
    for event in lxd_shuffle([e for e in parsed if getattr(e, "action", "") != "instance-created"], seed):
        if isinstance(event, Lifecycle):
            trackers.instances.on_lifecycle(event)
        else:
            trackers.operations.on_update(event)
    await trackers.settle()
    pushes = trackers.pushes

    by_op: dict[str, list[dict]] = {}
    for m in pushes:
        if m["type"] == groups.OPERATION:
            by_op.setdefault(m["id"], []).append(m)
    rank = {"pending": 0, "running": 1, "success": 2, "failure": 2, "cancelled": 2}
    for op_id, messages in by_op.items():
        ranks = [rank[m["status"]] for m in messages]
        assert ranks == sorted(ranks), f"{op_id}: status went back: {[m['status'] for m in messages]}"
        assert messages[-1]["status"] == "success" and [m["final"] for m in messages].count(True) == 1
        percents = [m["percent"] for m in messages if m["percent"] is not None]
        assert percents == sorted(percents), f"progress went back: {percents}"
    create = next(ms for ms in by_op.values() if ms[0]["description"] == "Creating instance")
    assert create[-1]["percent"] == 100

    # Status pushes follow LXD's timestamps, not its delivery order.
    when = {e.action: e.ts for e in parsed if isinstance(e, Lifecycle)}
    actions = [m["action"] for m in pushes if m["type"] == groups.INSTANCE_STATUS]
    assert actions, "no status was pushed"
    assert actions == sorted(actions, key=when.get)
    assert actions[-1] == "instance-stopped"


async def test_reversed_events_show_only_the_end(captured):
    """Everything older than the final state arrives after it: nothing may be pushed back."""
    parsed = [e for e in (parse_event(raw) for raw in captured) if isinstance(e, Operation)]
    trackers = Trackers()
    for event in reversed(parsed):
        trackers.operations.on_update(event)
    pushes = trackers.pushes
    assert {m["status"] for m in pushes} == {"success"}
    assert len(pushes) == len({e.id for e in parsed})


async def test_a_stage_left_behind_does_not_come_back():
    """LXD 5.0.2 sends a download's `download_progress` and then the unpack's; a late download
    update (same timestamp, delivered after the unpack began) must not send the bar back."""
    pushes: list[dict] = []
    ops = OperationTracker("lab1", send=pushes.append, note=lambda record: None)

    def update(ts, metadata, status_code=103):
        return Operation.from_lxd(
            {
                "id": "op1",
                "class": "task",
                "description": "Creating instance",
                "status_code": status_code,
                "metadata": metadata,
            },
            ts,
        )

    ops.on_update(update(1, {"download_progress": "4% (1MB/s)"}))
    ops.on_update(update(2, {"download_progress": "100% (1MB/s)"}))
    ops.on_update(update(3, {"progress": {"stage": "create_instance_from_image_unpack", "percent": "50"}}))
    ops.on_update(update(3, {"download_progress": "4% (1MB/s)"}))
    ops.flush()
    last = pushes[-1]
    assert (last["stage"], last["percent"]) == ("Unpacking image", 50)
