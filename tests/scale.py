"""The scale-out mode as deployed: PostgreSQL and Redis (the lab's own, bin/lab), several daphne
processes and `manage.py relay` processes, each its own OS process (nothing shared in memory)."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

from tests.lab import ROOT, Lab

PASSWORD = "correct-horse-battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}:\n" + log.read_text(errors="replace")[-4000:])


class Process:
    """One OS process of the deployment, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict, log: Path):
        self.name, self.argv, self.env, self.log_path = name, argv, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as a crash or the OOM killer."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class ScaleDeployment:
    """A fresh PostgreSQL database and a flushed Redis for this deployment; `web(n)` daphne
    processes and `relay()` processes started on demand."""

    def __init__(self, tmp: Path, lab: Lab):
        if not (lab.pg_url and lab.redis_url):
            raise RuntimeError("the lab has no PostgreSQL/Redis (bin/lab up with LAB_SERVICES=1)")
        self.tmp, self.lab = tmp, lab
        self.db_name = "dash_" + secrets.token_hex(4)
        parts = urlsplit(lab.pg_url)
        self.database_url = urlunsplit(parts._replace(path="/" + self.db_name))
        self.redis_url = lab.redis_url
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DASHBOARD_"))},
            "DASHBOARD_DATA_DIR": str(tmp),  # the generated secrets, shared by every process
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "PYTHONPATH": str(ROOT),
        }
        self.webs: list[Process] = []
        self.relays: list[Process] = []
        self.username, self.password = "admin", PASSWORD

    # -- setup -------------------------------------------------------------------------------

    def create(self) -> ScaleDeployment:
        with psycopg.connect(self.lab.pg_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        redis.Redis.from_url(self.redis_url).flushdb()
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            f"User.objects.create_superuser('{self.username}', '', '{self.password}')",
        )
        return self

    def add_lab_hosts(self) -> None:
        """lab1 = d1 over its unix socket, lab2 = d2 over HTTPS (token)."""
        self.manage("addhost", "lab1", self.lab.d1.socket)
        self.manage("addhost", "lab2", self.lab.d2.url, "--token", self.lab.d2.trust_token())

    def manage(
        self, *args: str, check: bool = True, timeout: float = 120, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            cwd=ROOT,
        )

    # -- processes ---------------------------------------------------------------------------

    def web(self, port: int | None = None, *extra: str, env: dict | None = None) -> Process:
        """One more daphne process (a free port unless given; `env`: settings of its own)."""
        port = port or free_port()
        index = len(self.webs) + 1
        process = Process(
            f"web{index}",
            [
                sys.executable,
                "-m",
                "daphne",
                *extra,
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "dashboard.asgi:application",
            ],
            {**self.env, **(env or {})},
            self.tmp / f"web{index}-{port}.log",
        ).start()
        process.port, process.url = port, f"http://127.0.0.1:{port}"
        wait_for_port(port, process.proc, process.log_path)
        self.webs.append(process)
        return process

    def relay(self, *extra: str) -> Process:
        index = len(self.relays) + 1
        process = Process(
            f"relay{index}",
            [sys.executable, "-u", str(ROOT / "manage.py"), "relay", *extra],
            {**self.env, "DASHBOARD_LOG_LEVEL": "INFO"},
            self.tmp / f"relay{index}.log",
        ).start()
        self.relays.append(process)
        return process

    def active_relays(self) -> list[Process]:
        """Relays that say they hold the lock now (their last leadership line)."""
        active = []
        for relay in self.relays:
            if not relay.alive():
                continue
            states = re.findall(r"relay: (active|standby)", relay.output())
            if states and states[-1] == "active":
                active.append(relay)
        return active

    def wait_until_relaying(self, timeout: float = 30, hosts: tuple[str, ...] = ("lab1", "lab2")) -> Process:
        """The active relay, once it has opened the events stream of every host (its log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for relay in self.active_relays():
                since = relay.output().rsplit("relay: active", 1)[-1]
                if all(f"{host}: events stream open" in since for host in hosts):
                    return relay
            time.sleep(0.05)
        logs = "\n".join(f"--- {r.name}\n{r.output()[-2000:]}" for r in self.relays)
        raise AssertionError(f"no relay relaying within {timeout} s:\n{logs}")

    def stop(self) -> None:
        for process in [*self.webs, *self.relays]:
            process.stop()
        try:
            with psycopg.connect(self.lab.pg_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        except psycopg.Error:
            pass  # PostgreSQL itself is down (a fault test failed half-way): the next run's name differs


# -- browser-like clients ---------------------------------------------------------------------


def login_cookie(url: str, username: str = "admin", password: str = PASSWORD) -> str:
    from tests.support import DashboardSession

    return DashboardSession(url, username, password).cookie_header()


async def live_socket(web: Process, cookie: str, query: str = "topics=instances,operations&host=lab1"):
    from websockets.asyncio.client import connect

    return await connect(
        f"ws://127.0.0.1:{web.port}/ws/live/?{query}",
        additional_headers={"Cookie": cookie, "Origin": web.url},
        proxy=None,
        max_size=None,
    )


async def frame_matching(ws, predicate, timeout: float = 15.0, what: str = "a frame") -> str:
    """The first frame from now on that matches (earlier frames are read and dropped)."""
    import asyncio

    async def read():
        async for frame in ws:
            if predicate(frame):
                return frame
        raise AssertionError(f"the socket closed ({ws.close_code}) before {what}")

    try:
        return await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout} s") from None


def status_cell(host: str, name: str, status: str):
    """A predicate: a pushed status cell saying `status` for the instance."""
    pattern = re.compile(
        rf'id="instance-{host}-{re.escape(name)}-status"[^>]*>\s*<span class="badge status-\w+">{status}<'
    )
    return lambda frame: bool(pattern.search(frame))


def redis_down(lab: Lab) -> None:
    """Shut the lab's Redis down as a crash would leave it: nothing saved (bin/lab runs it
    with no persistence, so it comes back empty: no channels, no group memberships)."""
    port = lab.env["LAB_REDIS_PORT"]
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", port, "shutdown", "nosave"], capture_output=True, timeout=30
    )


def postgres_down(lab: Lab) -> None:
    """Stop the lab's PostgreSQL as a crash would (`immediate`: no clean shutdown; every
    connection is cut).  `services_up` starts it again, with what it had committed."""
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            "/usr/lib/postgresql/15/bin/pg_ctl",
            "-D",
            lab.env["LAB_PG_DIR"],
            "-m",
            "immediate",
            "-w",
            "stop",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )


def services_up() -> None:
    """bin/lab up starts what is not running (LAB_ID from the environment, as the lab fixture)."""
    out = subprocess.run([str(ROOT / "bin" / "lab"), "up", "3"], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"bin/lab up failed:\n{out.stderr}")
