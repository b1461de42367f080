"""Content-Security-Policy: on every response, and the pages (htmx included) run under it."""

import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.lab import ROOT
from tests.support import an_instance, logged_in

SCRIPT_SELF = re.compile(r"(^|;)\s*script-src 'self'\s*(;|$)")


def assert_policy(header: str | None) -> None:
    assert header, "no Content-Security-Policy header"
    assert SCRIPT_SELF.search(header), header  # 'self' alone: no 'unsafe-inline', no 'unsafe-eval'
    for directive in (
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ):
        assert directive in header, header


@pytest.mark.django_db
def test_every_kind_of_response_carries_the_policy(client, admin_user):
    assert_policy(client.get("/accounts/login/").headers.get("Content-Security-Policy"))
    assert_policy(client.get("/").headers.get("Content-Security-Policy"))  # redirect to login
    logged_in(admin_user, client)
    assert_policy(client.get("/").headers.get("Content-Security-Policy"))
    assert_policy(client.get("/no/such/page/").headers.get("Content-Security-Policy"))
    assert_policy(client.get("/admin/").headers.get("Content-Security-Policy"))


def test_templates_hold_no_inline_script_and_no_event_handler_attribute():
    """What the policy would block (and htmx's hx-on, which needs eval) is not written at all."""
    offenders = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = Path(path).read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"\son[a-z]+\s*=", r"\bhx-on", r"javascript:"):
            offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert not offenders


@pytest.fixture(scope="module")
def instance(lab):
    with an_instance(lab.d1) as name:
        yield name


@pytest.mark.browser
def test_pages_run_under_the_policy_with_no_violation(page, live_hosts, instance, lab):
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    pages = [
        "/",
        "/hosts/lab1/",
        f"/hosts/lab1/instances/{instance}/files/?path={quote('/etc')}",
        f"/hosts/lab1/instances/{instance}/snapshots/",
        "/tasks/",
        "/images/",
        f"/hosts/lab1/images/{lab.d1.admin().resolve_image('busybox')}/",
        "/images/import/",
        "/hosts/lab1/networks/",
        f"/hosts/lab1/networks/lab{os.environ.get('LAB_ID', '0')}br1/",
        "/hosts/lab1/storage/",
        "/hosts/lab1/storage/default/",
        "/admin/auth/user/",
    ]
    for url in pages:
        response = page.goto(url)
        assert_policy(response.headers.get("content-security-policy"))
        if not url.startswith("/admin/"):
            # htmx and its websocket extension run: the live socket opens (connect-src 'self')
            expect(page.locator("#live")).to_have_attribute("data-live", "open")
            # htmx reads the first htmx-config only: a page's own would be ignored
            assert page.locator('meta[name="htmx-config"]').count() == 1, url
        violations += page.evaluate("window.cspViolations")
    # and an htmx request with a swap: the fleet filter
    page.goto("/")
    with page.expect_response(lambda r: "q=lab" in r.url and r.request.headers.get("hx-request") == "true"):
        page.fill("#fleet-filter input[name=q]", "lab")
    expect(page).to_have_url(re.compile(r"q=lab"))
    violations += page.evaluate("window.cspViolations")
    assert not violations
