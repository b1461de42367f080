"""The deployment as documented (deploy/, README "Production"): Debian's nginx with TLS in front of
two daphne processes run with production settings, PostgreSQL, Redis and `manage.py relay`
(tests/scale.py, tests/proxy.py), on the real lab daemons (lab1 = d1 over its unix socket).
Browsers (Debian's chromium) and plain HTTPS clients reach the dashboard only through nginx."""

from __future__ import annotations

import os
import socket
import ssl

import pytest
import requests
from playwright.sync_api import expect

from tests.proxy import Nginx, established_from
from tests.support import DashboardSession, pull, wait_until
from tests.support.dashboard import log_in_page
from tests.test_live_browser import open_fleet

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def proxied(scale, tmp_path_factory):
    """nginx, and behind it two more web processes of the scale deployment run as
    deploy/dashboard-web@.service runs them: production settings, --proxy-headers, the static
    files collected for nginx to serve.  (nginx, [web, web])"""
    tmp = tmp_path_factory.mktemp("proxy")
    nginx = Nginx(tmp, tmp / "static")
    production = {
        "DASHBOARD_PRODUCTION": "1",
        "DASHBOARD_BEHIND_PROXY": "1",
        # the keys the deployment's other processes generated into its data directory
        "DJANGO_SECRET_KEY": (scale.tmp / "secret_key").read_text().strip(),
        "DASHBOARD_ENCRYPTION_KEYS": (scale.tmp / "encryption_key").read_text().strip(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_CSRF_TRUSTED_ORIGINS": nginx.url,
        "DASHBOARD_SERVE_STATIC": "0",
        "DASHBOARD_STATIC_ROOT": str(nginx.static_root),
    }
    scale.manage("collectstatic", "--noinput", "-v", "0", env=production)
    webs = []
    try:
        webs = [scale.web(None, "--proxy-headers", env=production) for _ in range(2)]
        nginx.start([web.port for web in webs])
        yield nginx, webs
    finally:
        nginx.stop()
        for web in webs:
            web.stop()
            scale.webs.remove(web)  # the deployment's list is what runs


@pytest.fixture
def page(browser, proxied, scale):
    nginx, _ = proxied
    # The proxy's certificate is self-signed for this test alone; the plain HTTPS client above
    # checks it against exactly that certificate.
    context = browser.new_context(base_url=nginx.url, ignore_https_errors=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    log_in_page(page, scale.username, scale.password)
    yield page
    context.close()


def test_pages_static_files_and_limits_through_nginx(proxied, scale):
    nginx, _ = proxied
    # Checked against the proxy's own certificate, and nothing else.
    session = DashboardSession(nginx.url, scale.username, scale.password, verify=str(nginx.cert))
    # The login passed Django's CSRF check (the origin is the proxy's) and set a secure cookie.
    assert session.cookies["sessionid"]
    assert next(c for c in session.http.cookies if c.name == "sessionid").secure
    home = session.get("/")
    assert home.status_code == 200 and "lab1" in home.text
    assert "Strict-Transport-Security" in home.headers  # production settings: HTTPS, as the proxy said
    # Static files come from nginx (collectstatic), not from daphne.
    css = session.get("/static/css/app.css")
    assert css.status_code == 200 and css.headers["Server"].startswith("nginx")
    assert "max-age=3600" in css.headers["Cache-Control"]  # the site's `expires 1h`
    # Plain HTTP is sent to HTTPS.
    plain = requests.get(f"http://127.0.0.1:{nginx.http_port}/", allow_redirects=False, timeout=30)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://127.0.0.1")
    # A body over the site's limit is refused by nginx from its headers, before it is sent.
    assert oversized_post(nginx) == 413


def oversized_post(nginx) -> int:
    context = ssl.create_default_context(cafile=str(nginx.cert))
    raw = socket.create_connection(("127.0.0.1", nginx.https_port), timeout=30)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 100000000\r\n\r\n"
        )
        status_line = tls.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def test_live_rows_an_upload_and_an_action_through_nginx(page, lab, instances):
    name = instances.make(lab.d1, running=False)
    open_fleet(page)  # the live socket is a wss:// one, through the proxy
    expect(page.locator(f"#instance-lab1-{name}-status")).to_have_text("Stopped")
    page.evaluate("window.notReloaded = true")
    lab.d1.lxc("start", name)
    expect(page.locator(f"#instance-lab1-{name}-status")).to_have_text("Running")
    page.locator(f"#instance-lab1-{name} button[data-action=stop]").click()
    expect(page.locator(f"#instance-lab1-{name}-status")).to_have_text("Stopped")
    assert page.evaluate("window.notReloaded") is True

    lab.d1.lxc("start", name)
    page.goto(f"/hosts/lab1/instances/{name}/files/?path=/root")
    data = os.urandom(3 * 1024 * 1024)
    page.set_input_files(
        "#upload-file",
        files=[{"name": "via-proxy.bin", "mimeType": "application/octet-stream", "buffer": data}],
    )
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-status")).to_have_text(f"Created /root/via-proxy.bin ({len(data)} bytes).")
    assert pull(lab.d1, name, "/root/via-proxy.bin") == data


def test_a_killed_web_process_leaves_its_pages_live_through_the_other(proxied, page, lab, instances):
    """SIGKILL the web process serving the page's live socket: the page reconnects through
    nginx to the other one, and changes reach it again without a reload."""
    _, webs = proxied
    name = instances.make(lab.d1, running=False)
    open_fleet(page)
    page.evaluate("window.notReloaded = true")
    serving = wait_until(
        lambda: [web for web in webs if web.alive() and established_from(web.port)],
        15,
        "the page's websocket held by one of the web processes",
    )
    assert len(serving) == 1, [web.name for web in serving]
    serving[0].kill()
    lab.d1.lxc("start", name)
    expect(page.locator("#live")).to_have_attribute("data-live", "open", timeout=20_000)
    expect(page.locator(f"#instance-lab1-{name}-status")).to_have_text("Running", timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    survivor = next(web for web in webs if web is not serving[0])
    assert established_from(survivor.port) >= 1
