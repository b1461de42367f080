"""Issue 14 in a real browser, against the lab daemons (lab1 = d1 by its socket, lab2 = d2 over
HTTPS): the editor sets limits.memory and adds a proxy on a running instance (LXD has both); a
profile made on one host, copied to the other and applied to an instance on each; an instance
in a second project shows in the fleet and starts from there."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from hosts.domain.ids import instance_dom_id
from tests.config_helpers import made_fixture  # noqa: F401 (fixture)
from tests.support import free_port
from tests.test_projects import shared_project

pytestmark = pytest.mark.browser


def shown(daemon, name: str, project: str = "default") -> dict:
    """What `lxc config show` has of the instance (its own config and devices, and profiles)."""
    return json.loads(daemon.lxc("query", f"/1.0/instances/{name}?project={project}").stdout)


def edit(page, host: str, name: str, *, config: str = "", devices: str = "", profiles: str = "") -> None:
    """Open the instance's editor, append to its fields, and save."""
    page.goto(f"/hosts/{host}/instances/{name}/")
    page.click("#edit-config")
    for field, extra in (("#id_config", config), ("#id_devices", devices)):
        if extra:
            box = page.locator(field)
            box.fill((box.input_value() + "\n" + extra).strip())
    if profiles:
        page.fill("#id_profiles", profiles)
    page.click("#editor-save")
    expect(page.locator("#edit-config")).to_be_visible()  # back on the instance's page: saved


def test_limits_memory_and_a_proxy_on_a_running_instance(page, live_hosts, lab, instances):
    name = instances.make(lab.d1)
    port = free_port()
    edit(
        page,
        "lab1",
        name,
        config="limits.memory = 96MiB",
        devices=f"web proxy listen=tcp:127.0.0.1:{port} connect=tcp:127.0.0.1:80",
    )
    data = shown(lab.d1, name)
    assert data["config"]["limits.memory"] == "96MiB"
    assert data["devices"]["web"] == {
        "type": "proxy",
        "listen": f"tcp:127.0.0.1:{port}",
        "connect": "tcp:127.0.0.1:80",
    }
    assert data["status"] == "Running"


def test_a_profile_made_on_one_host_applied_on_two(page, live_hosts, lab, instances, made):
    profile = made.track_profile(lab.d1, made.name("brp"))
    made.track_profile(lab.d2, profile)
    one = instances.make(lab.d1, running=False)
    two = instances.make(lab.d2, running=False)

    page.goto("/hosts/lab1/profiles/")
    page.fill("#id_name", profile)
    page.fill("#id_config", "limits.processes = 321\nuser.made-by = browser")
    page.click("#profile-create")
    expect(page.locator("#profile-compare")).to_be_visible()  # the new profile's page

    page.check("#profile-copy-form input[value=lab2]")
    page.click("#profile-compare")
    expect(page.locator("#copy-lab2")).to_have_attribute("data-state", "missing")
    page.click("#profile-copy-submit")
    expect(page.locator("#copy-results li[data-host=lab2]")).to_have_class("ok")

    edit(page, "lab1", one, profiles=f"default, {profile}")
    edit(page, "lab2", two, profiles=f"default, {profile}")
    for daemon, name in ((lab.d1, one), (lab.d2, two)):
        data = shown(daemon, name)
        assert data["profiles"] == ["default", profile]
        assert data["expanded_config"]["limits.processes"] == "321"


def test_an_instance_in_a_second_project_shows_in_the_fleet_and_starts(page, live_hosts, lab, made):
    project = shared_project(made, lab.d1)
    name = made.name("brp-c")
    lab.d1.lxc("init", "busybox", name, "--project", project)
    row = f"#{instance_dom_id('lab1', name, project)}"

    page.goto(f"/?project={project}")
    expect(page.locator(f"{row} td.project")).to_have_text(project)
    page.locator(f"{row} button[data-action=start]").click()
    expect(page.locator(f"{row}-status")).to_have_text("Running", timeout=30_000)
    assert shown(lab.d1, name, project)["status"] == "Running"

    page.click("#create-link")  # a create from the filtered fleet is in that project
    expect(page.locator("#id_project")).to_have_value(project)
    page.go_back()

    page.locator(f"{row} a.instance-link").click()
    expect(page.locator(f"{row}-status")).to_have_text("Running")
    assert f"project={project}" in page.url
