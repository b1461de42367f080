"""Fixtures: the real LXD lab, a logged-in Django client, a live daphne server and a browser."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab import ROOT, Lab, start_lab

PASSWORD = "correct-horse-battery"


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
    for daemon in lab.daemons:
        daemon.forget_client_certificates()
    yield lab
    for daemon in lab.daemons:
        daemon.forget_client_certificates()


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.test", PASSWORD)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def https_host(db, lab):
    """d2 registered over HTTPS with a trust token (fresh per test)."""
    from hosts.domain.registration import register_host

    return register_host("lab2", lab.d2.url, token=lab.d2.trust_token())


@pytest.fixture
def unix_host(db, lab):
    from hosts.domain.registration import register_host

    return register_host("lab1", lab.d1.socket)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveDashboard:
    """The dashboard served by daphne in its own process, on its own SQLite file."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DASHBOARD_DATA_DIR": str(tmp),
            "DASHBOARD_DB": str(tmp / "live.sqlite3"),
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "PYTHONPATH": str(ROOT),
        }
        self.username, self.password = "admin", PASSWORD
        self.proc: subprocess.Popen | None = None

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
            cwd=ROOT,
        )

    def start(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            f"User.objects.create_superuser('{self.username}', '', '{self.password}')",
        )
        self.serve()

    def serve(self) -> None:
        """Start daphne (again, after stop(): same port, same database, same sessions)."""
        self.log = open(self.tmp / "daphne.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "dashboard.asgi:application",
            ],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError("daphne did not start:\n" + (self.tmp / "daphne.log").read_text())

    def ensure_lab_hosts(self, lab: Lab) -> None:
        """lab1 = d1 over its unix socket, lab2 = d2 over HTTPS (token): registered once."""
        if getattr(self, "_lab_hosts", False):
            return
        self.manage("addhost", "lab1", lab.d1.socket)
        self.manage("addhost", "lab2", lab.d2.url, "--token", lab.d2.trust_token())
        self._lab_hosts = True

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "log", None) is not None:
            self.log.close()


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
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_dashboard):
    """A browser page logged in to the live dashboard."""
    context = browser.new_context(base_url=live_dashboard.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", live_dashboard.username)
    page.fill("input[name=password]", live_dashboard.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    yield page
    context.close()


def pytest_collection_modifyitems(config, items):
    """Tests that drive the browser run after the others: Playwright's sync API keeps its own
    event loop running in the main thread from the first browser test to the end of the
    session, and asyncio tests cannot start a loop of their own after that."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))
