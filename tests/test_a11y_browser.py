"""Accessibility, in a real browser against real daemons: every page the route walker knows,
with real data behind it, passes axe-core with no critical or serious violation, in the light
and the dark colour scheme; the main pages fit a 390 px wide screen; the keyboard alone
starts, stops and deletes an instance.

One browser context for the whole module (one login), so the walk stays fast."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import expect

from tests.routes import dashboard_routes, fill
from tests.support.dashboard import log_in_browser
from tests.support.instances import new_name, status_of
from tests.support.waits import wait_until

pytestmark = pytest.mark.browser

VIEWER_ZONE = "Asia/Kolkata"
HOST = "lab1"  # d1 over its unix socket (live_dashboard.ensure_lab_hosts)
FAILING = ("critical", "serious")
# Lesser rules the pages were fixed for (issue 18), kept from coming back.
ALSO_FAILING = {"empty-table-header", "landmark-unique", "label-title-only"}
# Routes that answer no page of their own: htmx fragments, downloads, the logout POST.
NOT_PAGES = {
    "fleet-state",
    "instance-row",
    "instance-file-download",
    "instance-backup-download",
    "backup-record-download",
    "image-export",
}


@pytest.fixture(scope="module")
def world(live_dashboard, lab):
    """Real data on d1: a running instance with a snapshot and a backup, a stopped one, a
    custom volume; the values that fill every route's parameters."""
    live_dashboard.ensure_lab_hosts(lab)
    d1 = lab.d1
    running, stopped, volume = new_name("a11y-run"), new_name("a11y-stop"), new_name("a11y-vol")
    d1.lxc("launch", "busybox", running)
    d1.lxc("init", "busybox", stopped)
    d1.lxc("snapshot", running, "snap0")
    d1.lxc("storage", "volume", "create", "default", volume)
    d1.lxc("query", "--wait", "-X", "POST", f"/1.0/instances/{stopped}/backups", "--data", '{"name": "b0"}')
    admin = d1.admin()
    # an operation in progress (an exec), shown on the operations page and in the live panel
    busy = subprocess.Popen(
        ["lxc", "exec", running, "--", "sleep", "300"],
        env={**os.environ, "LXD_DIR": d1.lxd_dir},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(
        lambda: any(
            op["description"] == "Executing command"
            for op in admin.get("/1.0/operations", params={"recursion": 1}).get("running", [])
        ),
        what="the exec's operation running",
    )
    fingerprint = admin.get("/1.0/images")[0].rsplit("/", 1)[-1]
    network = next(n["name"] for n in admin.get("/1.0/networks", params={"recursion": 1}) if n["managed"])
    values = {
        "host": HOST,
        "name": running,
        "snap": "snap0",
        "filename": "lxc.log",
        "fingerprint": fingerprint,
        "network": network,
        "pool": "default",
        "volume": volume,
        "backup": "b0",
        "pk": "1",
        "op_id": "00000000-0000-0000-0000-000000000000",
        "action": "start",
        "device": "eth0",
        "profile": "default",
        "project_name": "default",
    }
    yield {"values": values, "running": running, "stopped": stopped, "volume": volume}
    busy.kill()
    busy.wait(10)
    for name in (running, stopped):
        d1.lxc("delete", "--force", name, check=False)
    d1.lxc("storage", "volume", "delete", "default", volume, check=False)


@pytest.fixture(scope="module")
def session_page(browser, live_dashboard):
    """One logged-in page for the module (the conftest `page` logs in per test)."""
    # a viewer far from UTC (and at a half hour), so local times differ visibly from UTC
    context = browser.new_context(base_url=live_dashboard.url, timezone_id=VIEWER_ZONE)
    context.set_default_timeout(15_000)
    log_in_browser(context, live_dashboard, live_dashboard.username, live_dashboard.password)
    yield context.new_page()
    context.close()


def violations(page) -> list[str]:
    """axe-core's critical and serious violations on the page as it is, one line per element."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    result = page.evaluate("options => axe.run(document, options)", {"resultTypes": ["violations"]})
    lines = []
    for v in result["violations"]:
        if v["impact"] not in FAILING and v["id"] not in ALSO_FAILING:
            continue
        for node in v["nodes"]:
            target = " ".join(json.dumps(t) if not isinstance(t, str) else t for t in node["target"])
            lines.append(
                f"{v['id']} ({v['impact']}): {target}: {node['failureSummary'].splitlines()[-1].strip()}"
            )
    return lines


def settle(page) -> None:
    """Wait until the page's own lazy requests (state loaders) have answered."""
    page.wait_for_function(
        "() => document.readyState === 'complete' && !document.querySelector('.htmx-request')"
    )
    expect(page.locator(".state-loader:not(.done)")).to_have_count(0)


def check_both_schemes(page, where: str, failures: list[str]) -> None:
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        failures.extend(f"{where} [{scheme}] {line}" for line in violations(page))
    page.emulate_media(color_scheme="light")


def test_every_page_passes_axe_in_light_and_dark(session_page, world, lab):
    page = session_page
    # something in the task log and in the audit log, made through the dashboard
    page.goto(f"/hosts/{HOST}/instances/{world['stopped']}/")
    page.locator("button[data-action=start]").first.click()
    expect(page.locator(f"#instance-{HOST}-{world['stopped']}-status")).to_have_text(
        "Running", timeout=30_000
    )

    failures: list[str] = []
    visited = []
    values = world["values"]
    routes = [(r, n) for r, n in dashboard_routes() if n not in NOT_PAGES]
    extra = [
        (f"/hosts/{HOST}/instances/{world['running']}/files/?path=/etc", "file listing"),
        (f"/hosts/{HOST}/instances/{world['running']}/files/?path=/etc/passwd", "file view"),
        (f"/hosts/{HOST}/instances/no-such-instance/", "error page"),
        (f"/tasks/?host={HOST}", "tasks of a host"),
    ]
    targets = [(fill(r, lambda p: values[p]), n) for r, n in routes] + extra
    for path, name in targets:
        # chromium shows no page for an error answer without a body (405 from a POST-only route)
        probe = page.request.get(path, max_redirects=0)
        if probe.status == 405 or "text/html" not in probe.headers.get("content-type", ""):
            continue
        response = page.goto(path)
        settle(page)
        visited.append((name, response.status))
        if name == "operation-list":  # the page is checked with an operation in progress in it
            expect(page.locator("#task-rows tr.task")).not_to_have_count(0)
        if page.title() == "LXD fleet · LXD fleet dashboard":  # base.html's default: says nothing
            failures.append(f"{path} ({name}): the page has no title of its own")
        check_both_schemes(page, f"{path} ({name}, {response.status})", failures)
    assert ("home", 200) in visited and ("instance-detail", 200) in visited and ("audit", 200) in visited
    assert len(visited) >= 30, visited
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(icon).headers["content-type"] == "image/svg+xml"
    assert not failures, f"{len(failures)} accessibility violations:\n" + "\n".join(failures)


# The outermost elements that reach past the viewport's right edge: what makes a page scroll.
WIDEST = """() => Array.from(document.querySelectorAll("body *"))
  .filter(e => e.getBoundingClientRect().right > innerWidth + 1
               && !(e.parentElement.getBoundingClientRect().right > innerWidth + 1)
               && !e.closest("[hidden]"))
  .slice(0, 3).map(e => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className).join(", ")"""
NARROW_PAGES = ["/", "/hosts/", "/tasks/", "/images/", "/audit/", "/operations/", "/backups/"]


def test_main_pages_fit_a_390px_screen(session_page, world):
    page = session_page
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        for path in [
            *NARROW_PAGES,
            f"/hosts/{HOST}/",
            f"/hosts/{HOST}/instances/{world['running']}/",
            f"/hosts/{HOST}/instances/{world['running']}/files/?path=/etc",
            f"/hosts/{HOST}/instances/{world['running']}/snapshots/",
        ]:
            page.goto(path)
            settle(page)
            width = page.evaluate("document.documentElement.scrollWidth")
            wide = page.evaluate(WIDEST)
            assert width <= 390, f"{path} scrolls sideways at 390 px: the page is {width} px wide ({wide})"
        # the fleet table keeps the columns a person needs, in its own box
        page.goto("/")
        settle(page)
        expect(page.locator(f"#instance-{HOST}-{world['running']} .instance-link")).to_be_visible()
        expect(page.locator(f"#instance-{HOST}-{world['running']}-status")).to_be_visible()
        expect(page.locator("#fleet-table th[data-col=image]")).to_be_hidden()
        # and its actions, without scrolling the table sideways
        for button in page.locator(f"#instance-{HOST}-{world['running']} td.actions button").all():
            box = button.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (button.text_content(), box)
    finally:
        page.set_viewport_size({"width": 1280, "height": 720})


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches `selector` (the keyboard's own path)."""
    for _ in range(limit):
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{limit} presses of Tab never reached {selector}")


def focused(page, selector: str) -> bool:
    return page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector)


def test_start_stop_and_delete_with_the_keyboard_only(session_page, world, lab):
    page = session_page
    name = new_name("a11y-key")
    lab.d1.lxc("init", "busybox", name)
    row = f"#instance-{HOST}-{name}"
    try:
        page.goto("/")
        settle(page)
        page.keyboard.press("/")
        assert focused(page, "#fleet-filter input[name=q]")
        page.keyboard.type(name)
        # filtered (live pushes may still bring other rows in: no count of rows here)
        expect(page).to_have_url(re.compile(rf"[?&]q={name}"))
        expect(page.locator(row)).to_be_visible()

        tab_to(page, f"{row} button[data-action=start]")
        # the focus ring shows (a keyboard focus: :focus-visible)
        ring = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
        assert ring == "solid"
        page.keyboard.press("Enter")
        expect(page.locator(f"{row}-status")).to_have_text("Running", timeout=30_000)

        tab_to(page, f"{row} button[data-action=stop]")
        page.keyboard.press("Enter")
        expect(page.locator(f"{row}-status")).to_have_text("Stopped", timeout=60_000)

        # delete: a modal dialog; Escape closes it and leaves the instance alone
        tab_to(page, f"{row} button[data-action=delete]")
        page.keyboard.press("Enter")
        dialog = page.locator(f"{row} dialog")
        expect(dialog).to_be_visible()
        assert page.evaluate("() => document.querySelector('dialog').matches(':modal')")
        failures: list[str] = []
        check_both_schemes(page, "the delete dialog", failures)
        assert not failures, "\n".join(failures)
        page.keyboard.press("Escape")
        expect(page.locator(f"{row} dialog")).to_have_count(0)
        expect(page.locator(f"{row} button[data-action=delete]")).to_be_focused()
        assert status_of(lab.d1, name) == "Stopped"

        page.keyboard.press("Enter")
        expect(dialog).to_be_visible()
        tab_to(page, f"{row} dialog button[data-action=confirm-delete]", limit=5)
        page.keyboard.press("Enter")
        expect(page.locator(row)).to_have_count(0, timeout=30_000)
        # the outcome is announced
        expect(page.locator("#fleet-notice[role=status]")).to_contain_text(f"Deleted {name}")
        assert status_of(lab.d1, name) is None
    finally:
        lab.d1.lxc("delete", "--force", name, check=False)


def test_times_show_in_the_viewers_zone_with_utc_on_hover(session_page, world):
    page = session_page
    page.goto(f"/tasks/?host={HOST}")
    first = page.locator("#task-rows time").first
    expect(first).not_to_have_attribute("data-local", re.compile(".*"))  # converted by time.js
    stamp, title, text = first.get_attribute("datetime"), first.get_attribute("title"), first.inner_text()
    utc = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert title == utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert text == utc.astimezone(ZoneInfo(VIEWER_ZONE)).strftime("%Y-%m-%d %H:%M:%S")
    # and in a row the fleet renders (minutes)
    page.goto(f"/hosts/{HOST}/instances/{world['running']}/")
    created = page.locator("time[datetime]").first
    expect(created).to_have_attribute("title", re.compile(r" UTC$"))
    expect(created).not_to_contain_text("UTC")
