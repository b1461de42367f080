"""The README's screenshots, taken from the live dashboard on the lab daemons (run by
bin/screenshots, not part of the test suite: its name is not test_*.py).

Writes docs/screenshots/{fleet,fleet-dark,fleet-narrow,instance,terminal}.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.lab import ROOT
from tests.support.dashboard import log_in_browser

pytestmark = pytest.mark.browser

OUT = ROOT / "docs" / "screenshots"
# name, daemon, running, an address to show
INSTANCES = [
    ("web-1", "d1", True, "192.0.2.11"),
    ("web-2", "d2", True, "192.0.2.12"),
    ("build", "d1", False, None),
]


@pytest.fixture
def demo(live_dashboard, lab):
    live_dashboard.ensure_lab_hosts(lab)
    made = []
    for name, daemon_name, running, ip in INSTANCES:
        daemon = getattr(lab, daemon_name)
        daemon.lxc("delete", "--force", name, check=False)
        daemon.lxc("launch" if running else "init", "busybox", name)
        made.append((daemon, name))
        if ip:
            daemon.lxc("exec", name, "--", "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
    lab.d1.lxc("snapshot", "build", "before-upgrade")
    yield
    for daemon, name in made:
        daemon.lxc("delete", "--force", name, check=False)


def settled(page):
    page.wait_for_load_state("networkidle")
    expect(page.locator(".state-loader:not(.done)")).to_have_count(0)
    return page


def test_take_screenshots(browser, live_dashboard, demo):
    OUT.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=live_dashboard.url, viewport={"width": 1280, "height": 760})
    context.set_default_timeout(20_000)
    log_in_browser(context, live_dashboard, live_dashboard.username, live_dashboard.password)
    page = context.new_page()
    try:
        page.goto("/?q=web")
        settled(page).screenshot(path=OUT / "fleet.png")
        page.emulate_media(color_scheme="dark")
        page.goto("/")
        settled(page).screenshot(path=OUT / "fleet-dark.png")
        page.emulate_media(color_scheme="light")
        page.set_viewport_size({"width": 390, "height": 760})
        page.goto("/")
        settled(page).screenshot(path=OUT / "fleet-narrow.png")
        page.set_viewport_size({"width": 1280, "height": 760})
        page.goto("/hosts/lab1/instances/web-1/")
        settled(page).screenshot(path=OUT / "instance.png")
        page.click("#terminal-open")
        expect(page.locator("#terminal-status")).to_contain_text("Running ")
        page.locator("#terminal .xterm-helper-textarea").focus()
        page.keyboard.type("uname -sr; ip -4 -o addr show eth0; ls /")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#terminal .xterm-rows > div')]"
            ".some(row => row.textContent.includes('192.0.2.11'))"
        )
        page.locator("#terminal-section").scroll_into_view_if_needed()
        page.locator("#terminal-section").screenshot(path=OUT / "terminal.png")
    finally:
        context.close()
