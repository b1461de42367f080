"""Done-when for moves, in a real browser against real daemons: a running instance with two
snapshots moved from lab1 (d1, unix socket) to lab2 (d2, HTTPS) through the instance's Copy /
move form, while the fleet page, open in another tab, shows the row move live."""

import re

import pytest
from playwright.sync_api import expect

from tests.move_helpers import describe, made_fixture, marker_of  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def test_a_running_instance_moves_with_its_snapshots_and_files_and_the_row_follows(
    page, live_hosts, lab, made
):
    name, marker = made.make(lab.d1, running=True, snapshots=2)
    fleet = page
    fleet.goto("/")
    expect(fleet.locator("#live-indicator")).to_have_attribute("data-synced", "1", timeout=10_000)
    expect(fleet.locator(f"#instance-lab1-{name}-status")).to_have_text("Running")

    form = fleet.context.new_page()
    form.goto(f"/hosts/lab1/instances/{name}/")
    form.click("#transfer-link")
    expect(form.locator("#transfer-running")).to_contain_text("stopped")  # said before
    form.select_option("#id_action", "move")
    form.select_option("#id_target", "lab2")
    form.check("#id_stop_running")
    form.click("#transfer-submit")
    form.wait_for_url(re.compile(r"/tasks/\?instance="))
    row = form.locator("#task-rows tr", has_text=f"Move {name} from lab1 to lab2")
    expect(row).to_contain_text("now on lab2", timeout=90_000)

    # the fleet page, untouched since: the row on lab1 is gone, the one on lab2 runs with 2 snapshots
    expect(fleet.locator(f"#instance-lab2-{name}-status")).to_have_text("Running", timeout=30_000)
    expect(fleet.locator(f"#instance-lab2-{name}-snapshots")).to_have_text("2")
    expect(fleet.locator(f"#instance-lab1-{name}")).to_have_class(re.compile(r"\bgone\b"))

    moved = describe(lab.d2, name)
    assert moved["status"] == "Running"
    assert [s["name"] for s in moved["snapshots"]] == ["s1", "s2"]
    assert marker_of(lab.d2, name) == marker
    assert describe(lab.d1, name) is None


def test_bulk_move_from_the_fleet_selection(page, live_hosts, lab, made):
    one, _ = made.make(lab.d2)
    two, _ = made.make(lab.d2)
    page.goto("/")
    expect(page.locator("#live-indicator")).to_have_attribute("data-synced", "1", timeout=10_000)
    for name in (one, two):
        page.check(f"#instance-lab2-{name} input[name=sel]")
    page.select_option("#bulk-form select[name=target]", "lab1")
    page.fill("#bulk-form input[name=parallel]", "2")
    page.click("#bulk-move")
    results = page.locator("#bulk-move-results")
    expect(results).to_contain_text(f"lab2/{one}: started")
    expect(results).to_contain_text(f"lab2/{two}: started")
    for name in (one, two):
        expect(page.locator(f"#instance-lab1-{name}-status")).to_have_text("Stopped", timeout=60_000)
        expect(page.locator(f"#instance-lab2-{name}")).to_have_class(re.compile(r"\bgone\b"))
    assert describe(lab.d2, one) is None and describe(lab.d1, two) is not None
