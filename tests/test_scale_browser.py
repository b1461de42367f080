"""The scale-out mode in a real browser (Debian's chromium): pages served by two daphne
processes (tests/scale.py: PostgreSQL, Redis, `manage.py relay` as its own process), on the
real lab daemons (lab1 = d1 over its unix socket)."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from tests.support import an_instance, pull
from tests.support.dashboard import log_in_page
from tests.test_live_browser import open_fleet
from tests.test_terminal_browser import open_terminal, type_line, wait_for_line

pytestmark = pytest.mark.browser


@pytest.fixture
def pages(browser, scale):
    """One logged-in page per web process: pages[0] on web1, pages[1] on web2."""
    contexts = []

    def login(web):
        context = browser.new_context(base_url=web.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        log_in_page(page, scale.username, scale.password)
        return page

    yield [login(web) for web in scale.webs[:2]]
    for context in contexts:
        context.close()


@pytest.fixture
def stopped(lab, instances):
    return instances.make(lab.d1, running=False)


@pytest.fixture(scope="module")
def running(lab):
    with an_instance(lab.d1) as name:
        yield name


def test_an_lxc_change_shows_on_pages_of_both_web_processes(pages, lab, stopped):
    for page in pages:
        open_fleet(page)
        expect(page.locator(f"#instance-lab1-{stopped}-status")).to_have_text("Stopped")
        page.evaluate("window.notReloaded = true")
    lab.d1.lxc("start", stopped)  # outside the dashboard
    for page in pages:
        expect(page.locator(f"#instance-lab1-{stopped}-status")).to_have_text("Running")
    lab.d1.lxc("stop", "--force", stopped)
    for page in pages:
        expect(page.locator(f"#instance-lab1-{stopped}-status")).to_have_text("Stopped")
        assert page.evaluate("window.notReloaded") is True


@pytest.mark.parametrize("actor", [0, 1], ids=["web1-acts", "web2-acts"])
def test_an_action_on_one_web_process_shows_on_the_other(pages, lab, stopped, actor):
    acting, watching = pages[actor], pages[1 - actor]
    for page in pages:
        open_fleet(page)
    watching.evaluate("window.notReloaded = true")
    acting.locator(f"#instance-lab1-{stopped} button[data-action=start]").click()
    expect(watching.locator(f"#instance-lab1-{stopped}-status")).to_have_text("Running")
    assert lab.d1.admin().get(f"/1.0/instances/{stopped}/state")["status"] == "Running"
    assert watching.evaluate("window.notReloaded") is True


@pytest.mark.parametrize("web", [0, 1], ids=["web1", "web2"])
def test_an_upload_and_a_terminal_session_through_either_web_process(pages, lab, running, web):
    page = pages[web]
    page.goto(f"/hosts/lab1/instances/{running}/files/?path=/root")
    data, name = os.urandom(3 * 1024 * 1024), f"via-web{web + 1}.bin"
    page.set_input_files(
        "#upload-file", files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}]
    )
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-status")).to_have_text(f"Created /root/{name} ({len(data)} bytes).")
    assert pull(lab.d1, running, f"/root/{name}") == data

    open_terminal(page, "lab1", running)
    type_line(page, f"echo $((6*{web + 7}))")
    wait_for_line(page, str(6 * (web + 7)))
