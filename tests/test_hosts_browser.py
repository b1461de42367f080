"""The hosts pages in a real browser, against the live dashboard and real lab daemons."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_register_over_https_from_the_ui_then_edit_its_config(page, lab, live_dashboard):
    lab.d1.forget_client_certificates()  # d1's HTTPS side starts out not trusting us
    page.goto("/hosts/add/")
    page.fill("input[name=name]", "web1")
    page.fill("input[name=url]", lab.d1.url)
    page.check("input[name=auth][value=password]")
    page.fill("input[name=secret]", lab.trust_password)
    page.click("#host-add-submit")
    # first contact: the fingerprint is shown and must be confirmed
    expect(page.locator("#confirm-certificate")).to_contain_text(lab.d1.fingerprint())
    page.click("#host-add-submit")
    expect(page).to_have_url(re.compile(r"/hosts/web1/$"))
    expect(page.locator("#server-info")).to_contain_text("5.0.2")
    expect(page.locator("#server-info")).to_contain_text(lab.d1.fingerprint())

    page.click("text=Edit configuration")
    textarea = page.locator("textarea[name=config]")
    textarea.fill(textarea.input_value() + "\nuser.browser-test = yes")
    page.click("button:has-text('Save')")
    expect(page.locator("#server-config")).to_contain_text("user.browser-test = yes")
    assert lab.d1.admin().server()[0]["config"]["user.browser-test"] == "yes"
    lab.d1.admin().patch_server_config({"user.browser-test": ""}, "")


def test_hosts_added_with_addhost_show_online(page, lab, live_hosts):
    page.goto("/hosts/")
    expect(page.locator("#host-status-lab1")).to_have_text("online")
    expect(page.locator("#host-status-lab2")).to_have_text("online")


def test_anonymous_browser_is_sent_to_login(browser, live_dashboard):
    context = browser.new_context(base_url=live_dashboard.url)
    anonymous = context.new_page()
    anonymous.goto("/hosts/")
    expect(anonymous).to_have_url(re.compile(r"/accounts/login/\?next=/hosts/"))
    context.close()
