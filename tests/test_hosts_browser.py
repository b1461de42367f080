"""The hosts pages in a real browser, against the live dashboard and real lab daemons."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_register_over_https_from_the_ui_then_edit_its_config(page, lab, live_dashboard):
    # d3: d1 and d2 are the live dashboard's lab1 and lab2, and a server is registered once
    d3 = lab.d3
    # A server is registered once: another test may have left d3 registered (as lab3).
    live_dashboard.manage(
        "shell", "-c", f"from hosts.models import Host; Host.objects.filter(endpoint={d3.url!r}).delete()"
    )
    d3.forget_client_certificates()  # d3's HTTPS side starts out not trusting us
    d3.admin().patch_server_config({"core.trust_password": lab.trust_password}, "")  # as d1 has it
    try:
        page.goto("/hosts/add/")
        page.fill("input[name=name]", "web1")
        page.fill("input[name=url]", d3.url)
        page.check("input[name=auth][value=password]")
        page.fill("input[name=secret]", lab.trust_password)
        page.click("#host-add-submit")
        # first contact: the fingerprint is shown and must be confirmed
        expect(page.locator("#confirm-certificate")).to_contain_text(d3.fingerprint())
        page.click("#host-add-submit")
        expect(page).to_have_url(re.compile(r"/hosts/web1/$"))
        expect(page.locator("#server-info")).to_contain_text("5.0.2")
        expect(page.locator("#server-info")).to_contain_text(d3.fingerprint())

        page.click("text=Edit configuration")
        textarea = page.locator("textarea[name=config]")
        textarea.fill(textarea.input_value() + "\nuser.browser-test = yes")
        page.click("button:has-text('Save')")
        expect(page.locator("#server-config")).to_contain_text("user.browser-test = yes")
        assert d3.admin().server()[0]["config"]["user.browser-test"] == "yes"
    finally:
        d3.admin().patch_server_config({"user.browser-test": "", "core.trust_password": ""}, "")
        live_dashboard.manage("removehost", "web1", check=False)  # d3 stays free for the later tests


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
