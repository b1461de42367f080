"""The dashboard served by daphne in its own process, and clients that log in to it as a
person does (the login form): over HTTP, over its websockets, and in a browser."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from tests.lab import ROOT, Lab
from tests.support.users import PASSWORD
from tests.support.waits import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


OWN_ORIGIN = "own origin"


class DashboardSession:
    """A login through the form, as a browser makes it.  Paths are relative to the
    dashboard (full URLs work too); unsafe methods carry the CSRF header; redirects are
    returned, not followed, except by get()."""

    def __init__(self, base_url: str, username: str, password: str, *, verify: str | bool = True):
        """`verify`: the CA file of an HTTPS dashboard (a proxy's own certificate)."""
        self.base = base_url
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = verify
        if base_url.startswith("https://"):
            # Django checks an HTTPS form's Origin (or, without one, its Referer), as a browser sends it.
            self.http.headers["Origin"] = base_url
        self.http.get(self.url("/accounts/login/"), timeout=10)
        done = self.http.post(
            self.url("/accounts/login/"),
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": self.http.cookies["csrftoken"],
            },
            allow_redirects=False,
            timeout=10,
        )
        if done.status_code != 302:
            raise AssertionError(f"login as {username} failed: {done.status_code} {done.text[:300]}")

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base + path

    @property
    def cookies(self) -> dict[str, str]:
        return dict(self.http.cookies.items())

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def websocket(self, path: str, *, origin: str | None = OWN_ORIGIN, **options):
        """A websocket (websockets' sync client) with this login's cookies, sent from the
        dashboard's own origin unless told otherwise (None: no Origin header at all)."""
        from websockets.sync.client import connect

        return connect(
            self.base.replace("http://", "ws://") + path,
            origin=self.base if origin is OWN_ORIGIN else origin,
            additional_headers={"Cookie": self.cookie_header()},
            **options,
        )

    def _unsafe(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"X-CSRFToken": self.http.cookies.get("csrftoken", ""), **kwargs.pop("headers", {})}
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 60)
        return self.http.request(method, self.url(path), headers=headers, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.url(path), timeout=kwargs.pop("timeout", 30), **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs) -> requests.Response:
        return self._unsafe("POST", path, data=data or {}, **kwargs)

    def put(self, path: str, data=None, **kwargs) -> requests.Response:
        return self._unsafe("PUT", path, data=data, **kwargs)


def log_in_page(page, username: str, password: str) -> None:
    """Log a browser page in through the login form, as a person does (page's base URL)."""
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def log_in_browser(context, live: LiveDashboard, username: str, password: str) -> None:
    """Give a Playwright browser context the session of a form login (the same login the
    HTTP clients make), so its pages start logged in."""
    session = live.login(username, password)
    context.add_cookies([{"name": k, "value": v, "url": live.url} for k, v in session.cookies.items()])


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
            # tests/support/startup: SIGUSR1 dumps the threads' stacks into daphne.log (thread_dump)
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "support" / "startup")]),
        }
        self.username, self.password = "admin", PASSWORD
        self.proc: subprocess.Popen | None = None
        self._lab_hosts = False

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
        with contextlib.suppress(AssertionError):
            wait_until(lambda: self.proc.poll() is not None or port_open(self.port), 30, "daphne listening")
        if self.proc.poll() is not None or not port_open(self.port):
            raise RuntimeError("daphne did not start:\n" + (self.tmp / "daphne.log").read_text())

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

    def thread_dump(self) -> str:
        """Every thread's Python stack, as the process has it now (tests/support/startup)."""
        log = self.tmp / "daphne.log"
        before = log.stat().st_size
        self.proc.send_signal(signal.SIGUSR1)

        def dumped() -> str:
            text = log.read_bytes()[before:].decode(errors="replace")
            return text if "Current thread" in text or text.count("Thread 0x") > 1 else ""

        with contextlib.suppress(AssertionError):
            return wait_until(dumped, 5, "the thread dump")
        return "(no thread dump came)"

    def login(self, username: str | None = None, password: str | None = None) -> DashboardSession:
        """A DashboardSession as `username` (the live dashboard's own admin by default)."""
        if username is None:
            username, password = self.username, self.password
        return DashboardSession(self.url, username, password or PASSWORD)

    def ensure_lab_hosts(self, lab: Lab) -> None:
        """lab1 = d1 over its unix socket, lab2 = d2 over HTTPS (token): registered once."""
        if self._lab_hosts:
            return
        self.manage("addhost", "lab1", lab.d1.socket)
        self.manage("addhost", "lab2", lab.d2.url, "--token", lab.d2.trust_token())
        self._lab_hosts = True

    # -- its database, through manage.py shell --------------------------------------------

    def _shell_value(self, code: str):
        return self.manage("shell", "-c", code).stdout.strip().splitlines()[-1]

    def create_users(self, names: list[str], role: str, password: str = PASSWORD) -> None:
        code = (
            "from django.contrib.auth.models import Group, User\n"
            f"g = Group.objects.get(name={role!r})\n"
            f"for n in {names!r}:\n"
            f"    u, _ = User.objects.get_or_create(username=n)\n"
            f"    u.set_password({password!r}); u.save(); u.groups.add(g)\n"
        )
        self.manage("shell", "-c", code)

    def audit_outcomes(self, usernames: list[str]) -> dict[str, int]:
        """How the instance actions of these users ended, counted by outcome."""
        code = (
            "from collections import Counter\n"
            "from hosts.models import AuditEntry\n"
            f"qs = AuditEntry.objects.filter(username__in={usernames!r}, action__startswith='instance.')\n"
            "print(dict(Counter(qs.values_list('outcome', flat=True))))\n"
        )
        return ast.literal_eval(self._shell_value(code))

    def audit_entries(self, **filters) -> list[dict]:
        """The audit entries matching `filters` (ORM lookups), newest first."""
        code = (
            "import json\n"
            "from hosts.models import AuditEntry\n"
            f"qs = AuditEntry.objects.filter(**{filters!r})\n"
            "print(json.dumps(list(qs.values('username', 'action', 'host_name', 'target', 'outcome', 'error'))))\n"
        )
        return json.loads(self._shell_value(code))


def ws_upload(
    session: DashboardSession,
    host: str,
    name: str,
    path: str,
    chunks,
    size: int,
    *,
    overwrite: bool = False,
    frame: int = 1024 * 1024,
    window: int = 4 * 1024 * 1024,
    stop_after: int | None = None,
) -> dict:
    """Upload as the page's script does: header, frames within the window, wait for the outcome.

    `stop_after` closes the socket once that many bytes are sent (an interrupted upload)."""
    with session.websocket(f"/ws/hosts/{host}/instances/{name}/files/upload/", max_size=None) as ws:
        ws.send(json.dumps({"path": path, "size": size, "overwrite": overwrite}))
        reply = json.loads(ws.recv(timeout=30))
        if reply["type"] != "ready":
            return reply
        sent = acked = 0

        def pieces():
            for chunk in chunks:
                if len(chunk) <= frame:
                    yield chunk
                else:
                    yield from (chunk[i : i + frame] for i in range(0, len(chunk), frame))

        for piece in pieces():
            while sent - acked >= window:
                reply = json.loads(ws.recv(timeout=60))
                if reply["type"] != "ack":
                    return reply
                acked = reply["received"]
            ws.send(piece)
            sent += len(piece)
            if stop_after is not None and sent >= stop_after:
                return {"type": "stopped", "sent": sent}
        while True:
            reply = json.loads(ws.recv(timeout=60))
            if reply["type"] != "ack":
                return reply
