"""Done-when for the fleet: in a real browser, against real daemons, create, start, stop, freeze,
unfreeze and delete instances on two hosts through the UI; the fleet page lists both hosts."""

import re

import pytest
from playwright.sync_api import expect

from tests.support import status_of

pytestmark = pytest.mark.browser


@pytest.fixture
def fleet_hosts(live_dashboard, lab):
    """d1 over its unix socket and d2 over HTTPS (token), registered in the live dashboard."""
    live_dashboard.manage("addhost", "fleet1", lab.d1.socket)
    live_dashboard.manage("addhost", "fleet2", lab.d2.url, "--token", lab.d2.trust_token("fleet-browser"))
    yield "fleet1", "fleet2"
    live_dashboard.manage("removehost", "fleet1", check=False)
    # Not --revoke: the live dashboard has one client certificate for all its hosts, and
    # revoking it on d2 would leave lab2 (live_hosts) untrusted for the tests after this one.
    live_dashboard.manage("removehost", "fleet2", check=False)


def create_through_the_form(page, host: str, name: str, start: bool) -> None:
    page.goto("/")
    page.click("#create-link")
    page.select_option("#id_host", host)
    page.fill("#id_name", name)
    page.fill("#id_image", "busybox")
    if not start:
        page.uncheck("#id_start")
    page.click("#create-submit")
    # the instance page: its fleet row, with the status
    expect(page.locator(f"#instance-{host}-{name}-status")).to_have_text("Running" if start else "Stopped")


def press(page, host: str, name: str, action: str, expected: str) -> None:
    page.locator(f"#instance-{host}-{name} button[data-action={action}]").click()
    expect(page.locator(f"#instance-{host}-{name}-status")).to_have_text(expected, timeout=30_000)


def test_lifecycle_on_two_hosts_through_the_ui(page, fleet_hosts, lab, instances):
    one = instances.track(lab.d1, instances.name())
    two = instances.track(lab.d2, instances.name())
    create_through_the_form(page, "fleet1", one, start=False)
    create_through_the_form(page, "fleet2", two, start=True)
    lab.d2.lxc("exec", two, "--", "ip", "addr", "add", "192.0.2.42/24", "dev", "eth0")

    page.goto("/")
    expect(page.locator(f"#instance-fleet1-{one}")).to_be_visible()
    expect(page.locator(f"#instance-fleet2-{two}")).to_be_visible()
    # the state columns fill in after the first paint, per host
    expect(page.locator(f"#instance-fleet2-{two}-ips")).to_have_text("192.0.2.42")
    expect(page.locator(f"#instance-fleet1-{one}-memory")).not_to_have_text("…")

    press(page, "fleet1", one, "start", "Running")
    press(page, "fleet1", one, "freeze", "Frozen")
    press(page, "fleet1", one, "unfreeze", "Running")
    press(page, "fleet1", one, "stop", "Stopped")  # graceful, with a timeout
    press(page, "fleet2", two, "freeze", "Frozen")
    press(page, "fleet2", two, "unfreeze", "Running")
    press(page, "fleet2", two, "kill", "Stopped")  # force
    press(page, "fleet2", two, "start", "Running")
    assert status_of(lab.d1, one) == "Stopped" and status_of(lab.d2, two) == "Running"

    # a failure shows LXD's text in the row (start on a running instance, from a stale page:
    # one whose live connection is gone, or the row would already show it running)
    page.goto("/")
    page.evaluate("document.getElementById('live').remove()")
    lab.d1.lxc("start", one)
    page.locator(f"#instance-fleet1-{one} button[data-action=start]").click()
    expect(page.locator(f"#instance-fleet1-{one} .outcome.error")).to_contain_text("already running")
    expect(page.locator(f"#instance-fleet1-{one}-status")).to_have_text("Running")

    # bulk across both hosts: each instance reported on its own
    page.check(f"#instance-fleet1-{one} input[name=sel]")
    page.check(f"#instance-fleet2-{two} input[name=sel]")
    page.select_option("#bulk-form select[name=action]", "stop")
    page.check("#bulk-form input[name=force]")
    page.click("#bulk-apply")
    expect(page.locator("#bulk-summary")).to_contain_text("2 instances, 0 failed")
    expect(page.locator(f"#instance-fleet1-{one}-status")).to_have_text("Stopped")
    expect(page.locator(f"#instance-fleet2-{two}-status")).to_have_text("Stopped")

    # delete, confirming in the row; a running one is offered a stop first
    press(page, "fleet2", two, "start", "Running")
    for host, name in (("fleet1", one), ("fleet2", two)):
        page.locator(f"#instance-{host}-{name} button[data-action=delete]").click()
        page.locator(f"#instance-{host}-{name} button[data-action=confirm-delete]").click()
        expect(page.locator(f"#instance-{host}-{name}")).to_have_count(0)
    expect(page.locator("#fleet-notice")).to_contain_text(f"Deleted {two}")
    assert status_of(lab.d1, one) is None and status_of(lab.d2, two) is None


def test_filter_and_sort_in_the_browser(page, fleet_hosts, lab, instances):
    # named so that before the state arrives (memory unknown, ties broken by name) b sorts first
    a = instances.make(lab.d1, name=instances.name("aaa"), ip="192.0.2.61")
    b = instances.make(lab.d2, name=instances.name("zzz"), running=False)
    page.goto("/")
    expect(page.locator(f"#instance-fleet2-{b}")).to_be_visible()
    # by IP: the row appears once its host's state has arrived
    page.fill("#fleet-filter input[name=q]", "192.0.2.61")
    expect(page.locator(f"#instance-fleet1-{a}")).to_be_visible()
    expect(page.locator(f"#instance-fleet2-{b}")).to_have_count(0)
    assert "q=192.0.2.61" in page.url
    page.fill("#fleet-filter input[name=q]", "")
    page.select_option("#fleet-filter select[name=status]", "stopped")
    expect(page.locator(f"#instance-fleet2-{b}")).to_be_visible()
    expect(page.locator(f"#instance-fleet1-{a}")).to_have_count(0)
    page.select_option("#fleet-filter select[name=status]", "")
    expect(page.locator(f"#instance-fleet1-{a}")).to_be_visible()
    # sort by memory (a state column): descending puts the running one first once state arrives
    page.click("#fleet-table th[data-col=memory] a")
    expect(page.locator("#fleet-table")).to_have_attribute("data-sort-col", "memory")
    page.click("#fleet-table th[data-col=memory] a")
    expect(page.locator("#fleet-table")).to_have_attribute("data-sort-dir", "desc")
    expect(page.locator(f"#instance-fleet2-{b}-memory")).not_to_have_text("…")
    expect(page.locator(f"#instance-fleet1-{a}-memory")).not_to_have_text("…")
    page.wait_for_function(
        """([a, b]) => {
            const names = [...document.querySelectorAll("#fleet-table tbody tr")].map(r => r.dataset.name);
            return names.includes(a) && names.indexOf(a) < names.indexOf(b);
        }""",
        arg=[a, b],
    )
    assert re.search(r"sort=memory", page.url)
