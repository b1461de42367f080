"""The live model on the real lab daemons: the relay keeps every instance of a host in the
database; a page rendered from a fresh model asks LXD nothing (the daemon's own log counts the
requests), a change made with `lxc` reaches the model by the event path, and a model nobody
maintains any more says so, with its age, and the page asks LXD as before."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from hosts.domain.ids import instance_dom_id
from hosts.fleet import model as fleet_model
from hosts.live.relay import Relay
from hosts.models import Host, HostSync, InstanceState
from tests.config_helpers import made_fixture  # noqa: F401 (fixture)
from tests.servers import CuttableProxy
from tests.support import DashboardSession, RequestLog, fresh_channel_layer, wait_until, wait_until_async
from tests.test_projects import shared_project, twin

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quiet_counters(settings):
    """No state listing during the test (an hour's cadence): whatever reaches the model after
    the first listing came by the event path, and whatever the daemon logs came from a page."""
    settings.DASHBOARD_COUNTERS_SECONDS = 3600


@pytest.fixture
async def relay():
    """An embedded relay on the test's loop (as daphne runs it); stopped and awaited after."""
    started: list[asyncio.Task] = []

    async def start() -> tuple[Relay, asyncio.Task]:
        relay = Relay(fresh_channel_layer())
        task = asyncio.get_running_loop().create_task(relay.run(), name="relay")
        started.append(task)
        await asyncio.wait_for(relay.ready.wait(), 10)
        return relay, task

    yield start
    for task in started:
        task.cancel()
    await asyncio.gather(*started, return_exceptions=True)


async def until(predicate, what: str, timeout: float = 20.0):
    """A blocking (database) condition, polled in a thread."""
    return await wait_until_async(lambda: asyncio.to_thread(predicate), timeout, what)


def fresh(host: Host) -> bool:
    return fleet_model.freshness([host])[host.pk].fresh


def modelled(host: Host, name: str, project: str = "default") -> dict | None:
    query = InstanceState.objects.filter(host=host, project=project, name=name)
    return query.values_list("data", flat=True).first()


def state_urls(html: str) -> list[str]:
    return [u.replace("&amp;", "&") for u in re.findall(r'hx-get="(/fleet/state/[^"]+)"', html)]


async def test_a_page_from_a_fresh_model_asks_lxd_nothing(
    admin_client, unix_host, lab, instances, relay, quiet_counters
):
    running = await asyncio.to_thread(instances.make, lab.d1, instances.name("run"))
    stopped = await asyncio.to_thread(instances.make, lab.d1, instances.name("stop"), running=False)
    await relay()
    await until(lambda: fresh(unix_host), "lab1's model is fresh")
    await until(
        lambda: (modelled(unix_host, running) or {}).get("state", {}).get("memory"),
        "the state listing after the connect",
    )

    def load() -> tuple[str, str, str, str, str]:
        page = admin_client.get(reverse("home")).content.decode()
        state = admin_client.get(reverse("fleet-state", args=["lab1"])).content.decode()
        row = admin_client.get(reverse("instance-row", args=["lab1", running])).content.decode()
        # The instance page's live part (reloaded on every push) and the Operations page.
        detail = admin_client.get(reverse("instance-detail", args=["lab1", running]) + "?part=live")
        operations = admin_client.get(reverse("operation-list")).content.decode()
        return page, state, row, detail.content.decode(), operations

    with RequestLog(lab.d1) as log:
        await asyncio.to_thread(log.settled)
        mark = log.mark()
        page, state, row, detail, operations = await asyncio.to_thread(load)
        await asyncio.to_thread(log.settled)
        assert log.since(mark) == [], "a page from a fresh model asked LXD"

    assert f'id="instance-lab1-{running}"' in page and f'id="instance-lab1-{stopped}"' in page
    assert "live since" in page and state_urls(page) == []  # nothing left to load lazily
    assert "Running" in page and "iB" in state  # status and memory, from the model
    assert f'id="instance-lab1-{running}"' in row and "Running" in row
    assert 'id="instance-live"' in detail and "Running" in detail and "model-stale" not in detail
    assert 'id="operations-host-lab1"' in operations and "Asked lab1 directly" not in operations


async def test_a_change_made_with_lxc_reaches_the_model_by_its_events(
    unix_host, lab, instances, relay, quiet_counters
):
    kept = await asyncio.to_thread(instances.make, lab.d1, instances.name("kept"), running=False)
    doomed = await asyncio.to_thread(instances.make, lab.d1, instances.name("doomed"), running=False)
    await relay()
    await until(lambda: fresh(unix_host), "lab1's model is fresh")
    await until(lambda: modelled(unix_host, doomed), "the first listing")

    await asyncio.to_thread(lab.d1.lxc, "start", kept)
    await asyncio.to_thread(lab.d1.lxc, "delete", doomed)
    born = await asyncio.to_thread(instances.make, lab.d1, instances.name("born"), running=False)

    await until(lambda: (modelled(unix_host, kept) or {}).get("status") == "Running", "kept Running")
    await until(lambda: modelled(unix_host, doomed) is None, "doomed gone from the model")
    await until(lambda: (modelled(unix_host, born) or {}).get("status") == "Stopped", "born in the model")
    data = await asyncio.to_thread(modelled, unix_host, kept)
    assert data["state"]["pid"] > 0  # the fetch that follows the event, not the event alone
    sync = await asyncio.to_thread(HostSync.objects.get, host=unix_host)
    assert sync.counters_at is not None and sync.counters_at < sync.changed_at  # no listing since


async def test_a_model_nobody_maintains_says_so_with_its_age_and_the_page_asks_lxd(
    admin_client, unix_host, lab, instances, relay, quiet_counters
):
    name = await asyncio.to_thread(instances.make, lab.d1, instances.name("stale"), running=False)
    _, task = await relay()
    await until(lambda: fresh(unix_host), "lab1's model is fresh")
    await until(lambda: modelled(unix_host, name), "the first listing")
    task.cancel()  # the relay stops (a restart of the web process, a relay process gone)
    await asyncio.gather(task, return_exceptions=True)
    # What it last confirmed is a minute old (the age the page must show).
    await asyncio.to_thread(
        lambda: HostSync.objects.filter(host=unix_host).update(
            confirmed_at=timezone.now() - dt.timedelta(seconds=75)
        )
    )
    assert not await asyncio.to_thread(fresh, unix_host)

    with RequestLog(lab.d1) as log:
        await asyncio.to_thread(log.settled)
        mark = log.mark()
        page = (await asyncio.to_thread(admin_client.get, reverse("home"))).content.decode()
        state_url = state_urls(page)
        await asyncio.to_thread(log.settled)
        asked = [r.url for r in log.since(mark)]

    assert "live model kept from before a restart, last confirmed 75 s ago: asked the host" in page
    assert "/1.0/instances?recursion=1&all-projects=true" in asked  # the fallback: LXD, as before
    assert [u.split("?")[0] for u in state_url] == ["/fleet/state/lab1/"]
    assert f'id="instance-lab1-{name}"' in page


async def test_a_dropped_stream_marks_the_model_stale_then_resynchronises_it(
    admin_client, lab, instances, relay, quiet_counters
):
    """What changed while the relay was away (LXD replays nothing) is right afterwards: an
    instance created and one deleted meanwhile."""
    from hosts.domain.registration import register_host

    proxy = CuttableProxy("127.0.0.1", int(lab.d2.url.rsplit(":", 1)[1]))
    try:
        host = await asyncio.to_thread(register_host, "labp", proxy.url, token=lab.d2.trust_token())
        doomed = await asyncio.to_thread(instances.make, lab.d2, instances.name("away-doomed"), running=False)
        await relay()
        await until(lambda: fresh(host) and modelled(host, doomed), "labp's model with doomed")

        proxy.cut()
        await until(lambda: not HostSync.objects.get(host=host).connected, "the model marked disconnected")
        assert not await asyncio.to_thread(fresh, host)
        page = (await asyncio.to_thread(admin_client.get, reverse("home"))).content.decode()
        assert "the events stream is down, last confirmed" in page
        assert "shown as the live model last knew" in page  # the host is unreachable too

        born = await asyncio.to_thread(instances.make, lab.d2, instances.name("away-born"), running=False)
        await asyncio.to_thread(lab.d2.lxc, "delete", doomed)
        proxy.restore()
        await until(lambda: fresh(host), "labp's model fresh again", timeout=30)
        await until(lambda: modelled(host, born) is not None, "born while away, in the model")
        assert await asyncio.to_thread(modelled, host, doomed) is None
        page = (await asyncio.to_thread(admin_client.get, reverse("home"))).content.decode()
        assert f'id="instance-labp-{born}"' in page and f'id="instance-labp-{doomed}"' not in page
        assert "live since" in page
    finally:
        proxy.close()


async def test_the_model_holds_every_project_apart_and_the_fleet_reads_them_from_it(
    admin_client, unix_host, lab, instances, made, relay, quiet_counters
):
    """One name in two projects is two rows of the model; starting one moves only its own; a
    row kept from before of a project the host no longer has is dropped by the first listing;
    the fleet's project column and filter, and the instance page of the project's one, come
    from the model without asking LXD."""
    project = await asyncio.to_thread(shared_project, made, lab.d1)
    name = await asyncio.to_thread(instances.make, lab.d1, running=False)
    await asyncio.to_thread(twin, lab.d1, name, project)
    await asyncio.to_thread(
        lambda: InstanceState.objects.create(host=unix_host, project="t-gone", name=name, data={"name": name})
    )
    running, _ = await relay()
    await until(
        lambda: fresh(unix_host) and modelled(unix_host, name) and modelled(unix_host, name, project),
        "both in lab1's model",
    )
    assert not await asyncio.to_thread(
        lambda: InstanceState.objects.filter(host=unix_host, project="t-gone").exists()
    )

    await asyncio.to_thread(lab.d1.lxc, "start", name, "--project", project)
    await until(
        lambda: (modelled(unix_host, name, project) or {}).get("status") == "Running", "the twin Running"
    )
    assert (await asyncio.to_thread(modelled, unix_host, name))["status"] == "Stopped"
    # The relay looks at a started instance again a few seconds later (its address): not a page.
    lab1 = running.hosts["lab1"]
    await wait_until_async(
        lambda: not [t for t in lab1.children if t.get_name().split(":")[2] in ("look-again", "refresh")],
        20,
        "the relay's own looks at the started twin",
    )

    home = reverse("home")
    detail_url = reverse("instance-detail", args=["lab1", name]) + f"?project={project}&part=live"

    def load() -> tuple[str, str, str]:
        page = admin_client.get(home).content.decode()
        only = admin_client.get(home + f"?project={project}").content.decode()
        return page, only, admin_client.get(detail_url).content.decode()

    with RequestLog(lab.d1) as log:
        await asyncio.to_thread(log.settled)
        mark = log.mark()
        page, only, detail = await asyncio.to_thread(load)
        await asyncio.to_thread(log.settled)
        assert log.since(mark) == [], "a page from a fresh model asked LXD"

    ours, twins = instance_dom_id("lab1", name), instance_dom_id("lab1", name, project)
    assert f'id="{ours}"' in page and f'id="{twins}"' in page
    assert f'<option value="{project}">{project}</option>' in page  # the filter offers it
    row = page.split(f'id="{twins}"', 1)[1].split("</tr>", 1)[0]
    assert f'<td data-value="{project}" class="project">{project}</td>' in row and "Running" in row
    assert f'id="{twins}"' in only and f'id="{ours}"' not in only
    assert 'id="instance-live"' in detail and "Running" in detail and "model-stale" not in detail


# -- the tracker's model on plain inputs (no relay, no host, no database) ----------------------


class ModelTrackers:
    """An InstanceTracker whose `store` keeps the model in a dict, fetching from `lxd` (what
    LXD would answer now)."""

    def __init__(self, lxd: dict[str, dict]):
        from hosts.live.instances import InstanceTracker

        self.lxd, self.model, self.tasks = lxd, {}, set()
        self.tracker = InstanceTracker(
            send=lambda m: None, spawn=self.spawn, fetch=self.fetch, busy=lambda n: False, store=self.store
        )

    def store(self, rows, every=None):
        for name, row in rows.items():
            if row is None:
                self.model.pop(name, None)
            else:
                self.model[name] = row[0]
        if every is not None:
            self.model = {n: r for n, r in self.model.items() if n in every}

    def spawn(self, coro, name):
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        return task

    async def fetch(self, name):
        return self.lxd.get(name)

    async def settle(self):
        while not all(t.done() for t in self.tasks):
            await asyncio.gather(*self.tasks)


def lifecycle(action: str, name: str, ts: int):
    from hosts.lxd.events import Lifecycle

    return Lifecycle(ts=ts, action=action, kind="instance", name=name)


async def test_an_event_for_an_instance_the_model_does_not_know_adds_it():
    trackers = ModelTrackers({"known": {"name": "known", "status": "Stopped"}})
    trackers.tracker.listing([{"name": "known", "status": "Stopped"}], 0.0, with_state=False)
    trackers.lxd["stranger"] = {"name": "stranger", "status": "Running", "state": {"pid": 7}}
    trackers.tracker.on_lifecycle(lifecycle("instance-started", "stranger", 10))
    await trackers.settle()
    assert trackers.model["stranger"]["status"] == "Running"
    assert trackers.model["stranger"]["state"]["pid"] == 7  # fetched, not guessed from the event


async def test_events_out_of_order_leave_the_model_at_the_newest():
    trackers = ModelTrackers({"c": {"name": "c", "status": "Stopped"}})
    trackers.tracker.listing([{"name": "c", "status": "Stopped"}], 0.0, with_state=False)
    trackers.tracker.on_lifecycle(lifecycle("instance-stopped", "c", 20))
    trackers.tracker.on_lifecycle(lifecycle("instance-started", "c", 10))  # older, delivered late
    assert trackers.model["c"]["status"] == "Stopped"
    trackers.tracker.on_lifecycle(lifecycle("instance-deleted", "c", 30))
    del trackers.lxd["c"]
    trackers.tracker.on_lifecycle(lifecycle("instance-stopped", "c", 25))  # late: no coming back
    await trackers.settle()
    assert "c" not in trackers.model


def test_a_failed_batch_merges_back_under_newer_notes_each_project_apart():
    """The writer's retry: what was noted since a failed write wins, per (project, name); a
    full listing of one project does not touch another's rows."""
    from hosts.live.model import Notes

    old_row, new_row = ({"status": "Stopped"}, {}), ({"status": "Running"}, {})
    failed = Notes()
    failed.every["default"] = set()
    failed.note("default", "c", old_row)
    failed.note("p", "c", old_row)
    newer = Notes()
    newer.note("p", "c", None)
    newer.note("default", "d", new_row)
    merged = failed.merge_back(newer)
    assert merged.rows == {("default", "c"): old_row, ("p", "c"): None, ("default", "d"): new_row}
    assert merged.every == {"default": {"c", "d"}} and merged.projects is None

    listed = Notes(projects={"default"})
    merged = merged.merge_back(listed)
    assert merged.projects == {"default"}  # p keeps no row: its instance is gone
    newest = Notes()
    newest.note("q", "e", new_row)  # a project that showed since: kept
    assert merged.merge_back(newest).projects == {"default", "q"}


def test_a_host_with_no_instance_at_its_first_listing_treats_later_ones_as_new():
    """The first listing of an empty host makes no tracker; one made afterwards (any project)
    is past its first listing: an instance a later listing finds is pushed as a new row."""
    from types import SimpleNamespace

    from hosts.live.model import ModelWriter
    from hosts.live.relay import HostRelay

    relay = HostRelay(
        SimpleNamespace(name="h"), layer=None, note=lambda *a: None, model=ModelWriter().host(1)
    )
    relay.listing([], 0.0, with_state=False)
    pushed = []
    relay.send = lambda message, group=None: pushed.append(message)
    relay.listing([{"name": "c", "status": "Stopped", "project": "p"}], 1.0, with_state=True)
    assert relay.instances("p").baselined and relay.instances("default").baselined
    assert [(m["type"], m["instance"], m["project"], m["new"]) for m in pushed] == [
        ("instance.state", "c", "p", True)
    ]


def test_after_a_restart_the_kept_model_says_so_until_the_relay_has_listed_again(live_hosts, lab, instances):
    """The web process restarts: the model is still in the database; the first page says it is
    kept from before the restart (and asks the hosts), then the relay started with the server
    lists every host again and the pages are live."""
    name = instances.make(lab.d1, instances.name("restart"), running=False)

    def strip(session: DashboardSession) -> dict[str, str]:
        html = session.get("/").text
        found = dict(re.findall(r'<span id="fleet-model-(lab[12])"[^>]*>([^<]*)', html))
        return found if f'id="instance-lab1-{name}"' in html else {}

    def wait_live(session: DashboardSession) -> dict[str, str]:
        def live():
            found = strip(session)
            return found if len(found) == 2 and all("live since" in v for v in found.values()) else None

        return wait_until(live, 30, "every host live, with the new instance")

    wait_live(DashboardSession(live_hosts.url, live_hosts.username, live_hosts.password))
    live_hosts.stop()
    try:
        kept = live_hosts.manage(
            "shell",
            "-c",
            f"from hosts.models import InstanceState as S; print(S.objects.filter(name={name!r}).count())",
        ).stdout
    finally:
        live_hosts.serve()
    assert kept.split()[-1] == "1"  # the model outlived the process
    session = DashboardSession(live_hosts.url, live_hosts.username, live_hosts.password)
    first = strip(session)
    assert set(first) == {"lab1", "lab2"}
    for text in first.values():  # which it is, whichever comes first
        assert "live since" in text or ("kept from before a restart" in text and "asked the host" in text)
    wait_live(session)


async def test_a_host_removed_while_its_model_is_read_is_neither_an_error_nor_written_back(
    unix_host, lab, instances, relay, quiet_counters
):
    from hosts.fleet.load import load_fleet
    from hosts.fleet.rows import FleetQuery

    name = await asyncio.to_thread(instances.make, lab.d1, instances.name("removed"), running=False)
    running, _ = await relay()
    await until(lambda: fresh(unix_host) and modelled(unix_host, name), "lab1's model")
    hosts = await asyncio.to_thread(lambda: list(Host.objects.all()))  # the page read the hosts ...
    await asyncio.to_thread(lambda: Host.objects.filter(pk=unix_host.pk).delete())  # ... then this
    # While the relay may still be writing: the page shows what the host says (it is still up).
    load = await asyncio.to_thread(load_fleet, hosts, FleetQuery.from_params({}), None)
    assert [(listing.host.name, listing.ok, listing.live) for listing in load.listings] == [
        ("lab1", True, False)
    ]
    assert name in [row.name for row in load.rows]
    await until(lambda: "lab1" not in running.hosts, "the relay let lab1 go")
    await asyncio.to_thread(lab.d1.lxc, "start", name)  # an event the relay must not write back
    await until(lambda: running.model.done >= running.model.count, "the writer idle")
    assert not await asyncio.to_thread(lambda: InstanceState.objects.filter(host_id=unix_host.pk).exists())
    assert not await asyncio.to_thread(lambda: HostSync.objects.filter(host_id=unix_host.pk).exists())
