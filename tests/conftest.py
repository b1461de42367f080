"""Fixtures: the real LXD lab, logged-in Django clients, a live daphne server and a browser.
The factories and helpers behind them are in tests/support/.

Order: tests marked `destructive` (they restart or kill a daemon or the live dashboard, or
wreck a daemon's configuration) run last, so a daemon they leave broken cannot take other
tests with it."""

from __future__ import annotations

import asyncio

import pytest

from tests.lab import Lab, LabHost, start_lab
from tests.support import (
    Instances,
    LiveDashboard,
    log_in_browser,
    logged_in,
    make_user,
    sweep_leftovers,
)


def pytest_collection_modifyitems(config, items):
    # Stable: destructive tests last; before them, the browser tests together (one browser).
    items.sort(
        key=lambda item: (
            item.get_closest_marker("destructive") is not None,
            bool({"browser", "page"} & set(getattr(item, "fixturenames", ()))),
        )
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Playwright's sync API leaves its event loop set as the thread's running loop while the
    browser (a session fixture) is open: every later test would look like async code to
    asyncio and Django (async tests could not start, database calls were refused).  Tests
    that do not drive the browser run, fixtures included, with that loop set aside."""
    loop = asyncio.events._get_running_loop()
    if loop is None or {"browser", "page"} & set(item.fixturenames):
        return (yield)
    asyncio.events._set_running_loop(None)
    try:
        return (yield)
    finally:
        asyncio.events._set_running_loop(loop)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory):
    """A test database in a file, not in memory: the relay writes from worker threads, and
    SQLite's shared-cache memory databases fail such writers at once ("table is locked")
    instead of waiting as a file database does."""
    from django.conf import settings

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
        tmp_path_factory.mktemp("db") / "test.sqlite3"
    )


@pytest.fixture(scope="session")
def lab() -> Lab:
    lab = start_lab(3)
    # What an interrupted run left behind (test instances and profiles are named t-...).
    sweep_leftovers(lab.all_daemons)
    for daemon in lab.all_daemons:
        daemon.forget_client_certificates()
    yield lab
    for daemon in lab.all_daemons:
        daemon.forget_client_certificates()


@pytest.fixture
def instances():
    """Throwaway instances (support.Instances), deleted when the test ends."""
    made = Instances()
    yield made
    made.cleanup()


@pytest.fixture
def admin_user(db):
    return make_user("admin", superuser=True)


@pytest.fixture
def admin_client(client, admin_user):
    return logged_in(admin_user, client)


@pytest.fixture
def viewer_client(client, db):
    """Logged in as `viewer`, a user in no group (who may only look)."""
    return logged_in(make_user("viewer"), client)


@pytest.fixture
def https_host(db, lab):
    """d2 registered over HTTPS with a trust token (fresh per test)."""
    from hosts.domain.registration import register_host

    return register_host("lab2", lab.d2.url, token=lab.d2.trust_token())


@pytest.fixture
def incus_host(db, lab):
    """The lab's Incus daemon i1 registered over HTTPS with a trust token (fresh per test)."""
    from hosts.domain.registration import register_host

    if lab.incus is None:
        pytest.skip("the lab runs no Incus daemon (LAB_INCUS=0)")
    return register_host("inc1", lab.incus.url, token=lab.incus.trust_token())


@pytest.fixture(params=["lxd", "incus"])
def served(request, db, lab) -> LabHost:
    """The same kind of registered host on each server kind: LXD's d2 as `lab2` or Incus' i1 as
    `inc1`, both over HTTPS with a trust token (fresh per test).  A feature's core-path test
    takes this fixture to run on both; the rest of the suite stays on LXD."""
    from hosts.domain.registration import register_host

    daemon = lab.d2 if request.param == "lxd" else lab.incus
    if daemon is None:
        pytest.skip("the lab runs no Incus daemon (LAB_INCUS=0)")
    name = "lab2" if request.param == "lxd" else "inc1"
    return LabHost(register_host(name, daemon.url, token=daemon.trust_token()), daemon)


@pytest.fixture
def unix_host(db, lab):
    from hosts.domain.registration import register_host

    return register_host("lab1", lab.d1.socket)


@pytest.fixture(scope="session")
def live_dashboard(tmp_path_factory, lab):
    server = LiveDashboard(tmp_path_factory.mktemp("live"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_hosts(live_dashboard, lab):
    """The live dashboard with lab1 (d1, unix socket) and lab2 (d2, HTTPS) registered."""
    live_dashboard.ensure_lab_hosts(lab)
    return live_dashboard


@pytest.fixture(params=["lxd", "incus"])
def live_served(request, live_hosts, lab) -> tuple[str, object]:
    """(host name, lab daemon): the live dashboard's HTTPS host on each server kind: lab2 (d2),
    or inc1 (i1), registered for the test and removed after it (the other live tests see the
    two LXD hosts only)."""
    if request.param == "lxd":
        yield "lab2", lab.d2
        return
    if lab.incus is None:
        pytest.skip("the lab runs no Incus daemon (LAB_INCUS=0)")
    live_hosts.manage("addhost", "inc1", lab.incus.url, "--token", lab.incus.trust_token())
    yield "inc1", lab.incus
    live_hosts.manage("removehost", "inc1", "--revoke", check=False)


@pytest.fixture(scope="session")
def scale(tmp_path_factory, lab):
    """The scale-out mode (tests/scale.py): PostgreSQL and Redis, two web processes and two
    `manage.py relay` (one active, one standing by), lab1 and lab2 registered."""
    from tests.scale import ScaleDeployment

    tmp = tmp_path_factory.mktemp("scale")
    tmp.chmod(0o700)
    deployment = ScaleDeployment(tmp, lab).create()
    try:
        deployment.add_lab_hosts()
        deployment.web()
        deployment.web()
        deployment.relay()
        deployment.relay()
        deployment.wait_until_relaying()
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        playwrights_loop = asyncio.events._get_running_loop()
        yield browser
        # (the session may end after a test that ran with this loop set aside)
        asyncio.events._set_running_loop(playwrights_loop)
        browser.close()


@pytest.fixture
def page(browser, live_dashboard):
    """A browser page logged in to the live dashboard (as its admin)."""
    context = browser.new_context(base_url=live_dashboard.url)
    context.set_default_timeout(15_000)
    log_in_browser(context, live_dashboard, live_dashboard.username, live_dashboard.password)
    page = context.new_page()
    yield page
    context.close()
