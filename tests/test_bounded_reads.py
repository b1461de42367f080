"""Everything read from a host is bounded: JSON answers, events, symlink targets, directory
listings, and the interfaces and addresses of an instance's state."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from hosts.fleet.detail import detail_context
from hosts.fleet.rows import InstanceRow, render_row
from hosts.live.instances import slim
from hosts.lxd.errors import ResponseTooLarge
from hosts.lxd.events import events_path, open_events
from tests.servers import fake_lxd, fake_lxd_events, lxd_envelope
from tests.support import an_instance

pytestmark = pytest.mark.django_db


def files(host, name, path):
    return reverse("instance-files", args=[host.name, name]) + "?path=" + quote(path, safe="/")


# -- faults a real daemon cannot produce on demand: a fake host on loopback ----------------


def test_an_answer_larger_than_the_limit_is_refused(settings):
    settings.LXD_MAX_RESPONSE_BYTES = 1024 * 1024
    instances = [{"name": f"c{i}", "status": "Running", "description": "x" * 200} for i in range(10_000)]
    body = lxd_envelope(instances)  # about 2.5 MiB, a valid envelope

    def script(method, path):
        # Streamed without a Content-Length: only counting what arrives can stop it.
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        return 200, {"Content-Type": "application/json", "Connection": "close"}, chunks

    with fake_lxd(script) as fake:
        client = fake.register().client()
        with pytest.raises(
            ResponseTooLarge, match="fake sent an answer larger than the limit of 1048576 bytes"
        ):
            client.instances()


async def test_an_event_larger_than_the_limit_ends_the_stream_with_a_clear_error():
    event = {
        "type": "lifecycle",
        "timestamp": "2026-01-01T00:00:00Z",
        "metadata": {"action": "instance-started", "source": "/1.0/instances/c1", "context": {}},
    }
    huge = dict(event, padding="x" * (5 * 1024 * 1024))

    async def send(connection):
        await connection.send(json.dumps(huge))
        await connection.send(json.dumps(event))

    async with fake_lxd_events(handler=send) as (client, _):
        uri, kwargs = client.websocket_target(events_path())
        stream = await open_events(uri, kwargs, label="fake")
        try:
            received = []
            with pytest.raises(ResponseTooLarge, match="fake sent an event larger than the limit"):
                async for received_event in stream:
                    received.append(received_event)
                    if len(received) == 2:
                        break
            assert received == []
        finally:
            await stream.close()


# -- on the real lab -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running(lab):
    with an_instance(lab.d1) as name:
        yield name


def test_a_symlink_target_is_read_at_most_path_max_bytes(admin_client, unix_host, running, lab):
    """A relative target of 4095 bytes (Linux's longest) comes back from LXD 5.0.2 made
    absolute, so longer than PATH_MAX: it is cut, and says so."""
    lab.d1.lxc(
        "exec", running, "--", "sh", "-c",
        "mkdir -p /root/links && cd /root/links && ln -sf $(head -c 4095 /dev/zero | tr '\\0' a) long",
    )  # fmt: skip
    target = unix_host.client().symlink_target(running, "/root/links/long")
    assert target.startswith("/root/links/aaaa") and target.endswith("…")
    assert len(target.removesuffix("…").encode()) == 4096  # PATH_MAX
    listing = admin_client.get(files(unix_host, running, "/root/links"))
    (entry,) = listing.context["entries"]
    assert entry["info"].target == target


def test_a_directory_listing_stops_at_its_limit_and_says_how_many_more(
    admin_client, unix_host, running, lab, monkeypatch
):
    monkeypatch.setattr("hosts.lxd.files.LIST_SHOWN", 10, raising=False)
    monkeypatch.setattr("hosts.lxd.files.LIST_LIMIT", 4)
    lab.d1.lxc("exec", running, "--", "sh", "-c", "mkdir -p /root/many && cd /root/many && touch $(seq 1 25)")
    response = admin_client.get(files(unix_host, running, "/root/many"))
    assert response.status_code == 200
    entries = response.context["entries"]
    assert len(entries) == 10
    assert sum(e["info"].type == "file" for e in entries) == 4  # probed; the rest by name only
    assert "15 more entries not shown." in response.content.decode()


# -- plain inputs: an instance with more interfaces and addresses than anyone shows -----------


def crowded_instance(interfaces: int = 200, per_interface: int = 50) -> dict:
    nets = {
        f"eth{i}": {
            "type": "broadcast",
            "state": "up",
            "hwaddr": "00:16:3e:00:00:00",
            "counters": {},
            "addresses": [
                {
                    "family": "inet",
                    "scope": "global",
                    "address": f"10.{i}.{j // 250}.{j % 250}",
                    "netmask": "24",
                }
                for j in range(per_interface)
            ],
        }
        for i in range(interfaces)
    }
    return {"name": "c1", "status": "Running", "state": {"status": "Running", "network": nets}}


def test_the_relay_sends_a_bounded_network_and_the_row_says_how_many_more():
    instance = crowded_instance()
    sent = slim(instance)
    assert len(json.dumps(sent)) < 4096
    row = InstanceRow.from_lxd("h", sent)
    assert len(row.ips) == 8
    assert row.ips_more == 200 * 50 - 8
    assert InstanceRow.from_lxd("h", instance).ips_more == row.ips_more  # same row from the full state
    assert "9992 more" in render_row(row)


def test_the_instance_page_shows_a_bounded_network_and_says_how_many_more(unix_host):
    context = detail_context(unix_host, crowded_instance(), logs=[], user=AnonymousUser())
    assert len(context["interfaces"]) == 32
    assert context["interfaces_not_shown"] == 200 - 32
    first = context["interfaces"][0]
    assert len(first["addresses"]) == 16
    assert first["addresses_not_shown"] == 50 - 16
