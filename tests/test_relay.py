"""The events relay against the real lab daemons: one upstream connection per host, the two
pushes per change, reconnection with resynchronisation, hosts coming and going."""

from __future__ import annotations

import asyncio
import json

import pytest

from hosts.live import groups
from hosts.live.relay import Relay
from tests.servers import CuttableProxy
from tests.support import Inbox, ListenerLog, fresh_channel_layer, relay_synced, wait_until_async

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def layer():
    return fresh_channel_layer()


@pytest.fixture
async def start_relay(layer):
    started: list[asyncio.Task] = []

    async def start(**kwargs) -> Relay:
        relay = Relay(layer, **kwargs)
        started.append(asyncio.get_running_loop().create_task(relay.run(), name="relay"))
        await asyncio.wait_for(relay.ready.wait(), 10)
        return relay

    yield start
    for task in started:
        task.cancel()
    await asyncio.gather(*started, return_exceptions=True)
    leftovers = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("relay")]
    assert leftovers == [], "the relay left tasks running"


@pytest.fixture
def containers(instances):
    """Make a stopped instance, from a test running on the event loop."""

    async def make(daemon, tag: str, **options) -> str:
        return await asyncio.to_thread(instances.make, daemon, instances.name(tag), running=False, **options)

    return make


def is_(kind: str, **fields):
    return lambda m: m.get("type") == kind and all(m.get(k) == v for k, v in fields.items())


def online(host: str):
    return is_(groups.HOST_STATUS, host=host, status="online")


async def test_lxc_start_pushes_the_status_at_once_then_the_state(
    layer, start_relay, unix_host, https_host, lab, containers
):
    inbox = await Inbox(layer).join(groups.HOSTS, groups.host_group("lab1"), groups.host_group("lab2"))
    async with ListenerLog(lab.d2.socket) as listeners:
        relay = await start_relay()
        await inbox.wait_for(online("lab1"), what="lab1 online")
        await inbox.wait_for(online("lab2"), what="lab2 online")
        name = await containers(lab.d1, "start")
        created = await inbox.wait_for(is_(groups.INSTANCE_STATE, instance=name), what="the new row")
        assert created["new"] is True and created["data"]["status"] == "Stopped"

        await asyncio.to_thread(lab.d1.lxc, "start", name)
        status = await inbox.wait_for(is_(groups.INSTANCE_STATUS, instance=name, status="Running"))
        state = await inbox.wait_for(
            lambda m: is_(groups.INSTANCE_STATE, instance=name)(m) and m["data"]["status"] == "Running"
        )
        assert inbox.received.index(status) < inbox.received.index(state)
        assert state["new"] is False
        assert state["data"]["state"]["pid"] > 0

        # Exactly one upstream connection per host, as the daemon itself counts them.
        assert {n: r.connections for n, r in relay.hosts.items()} == {"lab1": 1, "lab2": 1}
        ours = "{}:{}".format(*relay.hosts["lab2"].local_address[:2])
        assert listeners.open_from(lambda remote: remote.startswith("127.0.0.1:")) == [ours]


async def test_no_event_reaches_the_groups_as_such(layer, start_relay, unix_host, lab, containers):
    """Exec operations carry websocket secrets in their metadata: none may leave the relay."""
    inbox = await Inbox(layer).join(groups.host_group("lab1"))
    await start_relay()
    name = await containers(lab.d1, "exec")
    await asyncio.to_thread(lab.d1.lxc, "start", name)
    await asyncio.to_thread(lab.d1.lxc, "exec", name, "--", "true")
    await inbox.wait_for(
        is_(groups.OPERATION, description="Executing command", status="success"), what="the exec's end"
    )
    text = json.dumps(inbox.received)
    assert '"fds"' not in text and "secret" not in text and '"metadata"' not in text


async def test_instance_rows_carry_no_secret_config(layer, start_relay, unix_host, lab, containers):
    """What the relay copies to every browser's socket holds the image keys a row shows, and
    neither environment.* nor cloud-init data."""
    inbox = await Inbox(layer).join(groups.host_group("lab1"))
    await start_relay()
    name = await containers(
        lab.d1,
        "secret",
        config={"environment.API_TOKEN": "relay-env-secret", "user.user-data": "relay-user-data-secret"},
    )
    row = await inbox.wait_for(is_(groups.INSTANCE_STATE, instance=name), what="the new row")
    assert row["data"]["config"]["image.os"] == "busybox"
    await asyncio.to_thread(lab.d1.lxc, "start", name)
    await inbox.wait_for(
        lambda m: is_(groups.INSTANCE_STATE, instance=name)(m) and m["data"]["status"] == "Running",
        what="the running row",
    )
    text = json.dumps(inbox.received)
    assert "relay-env-secret" not in text and "relay-user-data-secret" not in text


async def test_a_dropped_connection_shows_offline_then_reconnects_and_resyncs(
    layer, start_relay, lab, containers, db
):
    from hosts.domain.registration import register_host

    proxy = CuttableProxy("127.0.0.1", int(lab.d2.url.rsplit(":", 1)[1]))
    try:
        await asyncio.to_thread(register_host, "labp", proxy.url, token=lab.d2.trust_token())
        name = await containers(lab.d2, "resync")
        inbox = await Inbox(layer).join(groups.HOSTS, groups.host_group("labp"))
        async with ListenerLog(lab.d2.socket) as listeners:
            relay = await start_relay()
            await inbox.wait_for(online("labp"))
            await relay_synced("labp", relay)

            def ours() -> list[str]:
                return listeners.open_from(lambda remote: remote.startswith("127.0.0.1:"))

            first = await wait_until_async(ours, what="our events listener on d2")
            assert len(first) == 1
            proxy.cut()
            offline = await inbox.wait_for(is_(groups.HOST_STATUS, host="labp", status="offline"))
            assert offline["detail"]
            # A change LXD will never replay to us: made while we are disconnected.
            await asyncio.to_thread(lab.d2.lxc, "start", name)
            proxy.restore()
            await inbox.wait_for(
                lambda m: online("labp")(m) and inbox.received.index(m) > inbox.received.index(offline)
            )
            await inbox.wait_for(
                is_(groups.INSTANCE_STATUS, instance=name, status="Running"), what="the resync"
            )
            state = await inbox.wait_for(is_(groups.INSTANCE_STATE, instance=name))
            assert state["data"]["status"] == "Running"
            assert relay.hosts["labp"].connections == 2

            def replaced() -> list[str]:
                now = ours()
                assert len(now) == 1 and now != first, now
                return now

            # The daemon itself sees one listener from us again: a new one, the cut one ended.
            await wait_until_async(replaced, what="one new events listener on d2, the cut one gone")
    finally:
        proxy.close()


async def test_hosts_added_and_removed_later_are_followed(layer, start_relay, lab, db):
    from hosts.domain.registration import register_host
    from hosts.models import Host

    inbox = await Inbox(layer).join(groups.HOSTS)
    relay = await start_relay(hosts_poll=60)  # the signal, not the poll, must do it
    assert relay.hosts == {}
    await asyncio.to_thread(register_host, "lab1", lab.d1.socket)
    await inbox.wait_for(online("lab1"), timeout=5)
    task = relay.hosts["lab1"].task
    await asyncio.to_thread(lambda: Host.objects.filter(name="lab1").delete())
    await asyncio.wait_for(asyncio.shield(asyncio.gather(task, return_exceptions=True)), 5)
    assert task.done() and relay.hosts == {}
