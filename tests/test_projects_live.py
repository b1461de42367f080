"""The relay's events name their project (one events stream per host covers every project):
an instance named like one in the default project starts, and only its project's row moves."""

from __future__ import annotations

import asyncio

import pytest

from hosts.live import groups
from hosts.models import ClientCertificate
from tests.config_helpers import made_fixture  # noqa: F401 (fixture)
from tests.support import Inbox
from tests.test_projects import register_restricted, shared_project, twin
from tests.test_relay import is_, layer, online, start_relay  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_events_are_tagged_with_their_project(
    layer,  # noqa: F811
    start_relay,  # noqa: F811
    unix_host,
    lab,
    instances,
    made,
    settings,
):
    settings.DASHBOARD_COUNTERS_SECONDS = 3600  # one state listing, on the connect
    project = await asyncio.to_thread(shared_project, made, lab.d1)
    name = await asyncio.to_thread(instances.make, lab.d1, running=False)
    inbox = await Inbox(layer).join(groups.HOSTS, groups.host_group("lab1"))
    await start_relay()
    await inbox.wait_for(online("lab1"), what="lab1 online")
    # The state listing after the connect pushes every instance's state, the default
    # project's one too: what follows it comes by the events.
    await inbox.wait_for(
        is_(groups.INSTANCE_STATE, instance=name, project="default"), 30, "the first state listing's push"
    )
    since = len(inbox.received)

    await asyncio.to_thread(twin, lab.d1, name, project)
    created = await inbox.wait_for(
        is_(groups.INSTANCE_STATE, instance=name, project=project), what="the new row"
    )
    assert created["new"] is True

    await asyncio.to_thread(lab.d1.lxc, "start", name, "--project", project)
    await inbox.wait_for(is_(groups.INSTANCE_STATUS, instance=name, project=project, status="Running"))
    await inbox.wait_for(
        lambda m: (
            is_(groups.INSTANCE_STATE, instance=name, project=project)(m) and m["data"]["status"] == "Running"
        ),
        what="the started instance's state",
    )
    about_the_default_one = [
        m for m in inbox.received[since:] if m.get("instance") == name and m.get("project") != project
    ]
    assert about_the_default_one == []


async def test_a_host_restricted_to_one_project_is_online_and_live(layer, start_relay, lab, made):  # noqa: F811
    """The relay's first listing of a host whose certificate is restricted to a project (LXD
    5.0.2 refuses it all-projects listings) goes project by project: online, and live."""
    project = await asyncio.to_thread(shared_project, made, lab.d2)
    await asyncio.to_thread(register_restricted, "labr", lab.d2, [project])
    try:
        inbox = await Inbox(layer).join(groups.HOSTS, groups.host_group("labr"))
        await start_relay()
        await inbox.wait_for(online("labr"), what="labr online")
        # its first listing (what pages resynchronise from) went through
        await inbox.wait_for(is_(groups.HOST_SYNCED, host="labr"), what="labr synced")
        name = made.name("prj-r")
        await asyncio.to_thread(lab.d2.lxc, "init", "busybox", name, "--project", project)
        created = await inbox.wait_for(
            is_(groups.INSTANCE_STATE, instance=name, project=project), what="its row"
        )
        assert created["new"] is True
        assert not [
            m for m in inbox.received if m.get("type") == groups.HOST_STATUS and m.get("status") != "online"
        ]
    finally:
        fingerprint = await asyncio.to_thread(lambda: ClientCertificate.default().fingerprint)
        await asyncio.to_thread(
            lab.d2.admin().call, "DELETE", f"/1.0/certificates/{fingerprint}", project_scoped=False
        )
