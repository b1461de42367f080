"""Backups through a real daphne server: schedules that run with no browser (started with the
server; several processes, one run), and a backup file restored over the websocket."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.lab import ROOT
from tests.move_helpers import describe, made_fixture, marker_of  # noqa: F401 (fixture)
from tests.support import DashboardSession, LiveDashboard

MiB = 1024 * 1024


def lxd_backups(daemon, name):
    return [b["name"] for b in daemon.admin().backups(name)]


def wait_for(predicate, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def lease(db) -> tuple[str, str] | None:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT holder, expires_at FROM hosts_lease").fetchone()


@pytest.fixture
def idle_dashboard(tmp_path, lab):
    """A dashboard nobody browses, its scheduler looking every half second, with a schedule
    whose last run was three days ago (it was down since): not started yet."""
    server = LiveDashboard(tmp_path)
    server.env["DASHBOARD_SCHEDULER_TICK_SECONDS"] = "0.5"
    server.env["DASHBOARD_BACKUP_DIR"] = str(tmp_path / "backups")
    server.manage("migrate", "--noinput", "-v", "0")
    server.manage("addhost", "lab1", lab.d1.socket)
    yield server
    server.stop()


def add_missed_schedule(server, pattern: str) -> None:
    server.manage(
        "shell",
        "-c",
        "import datetime as dt\n"
        "from django.utils import timezone\n"
        "from hosts.models import BackupSchedule\n"
        "past = timezone.now() - dt.timedelta(days=3)\n"
        f"BackupSchedule.objects.create(name='nightly', name_pattern={pattern!r}, cron='0 3 * * *',"
        " created_at=past - dt.timedelta(days=1), last_slot=past)\n",
    )


def test_a_missed_run_runs_once_at_startup_with_no_browser_and_two_servers(idle_dashboard, lab, made):
    name, _ = made.make(lab.d1)
    add_missed_schedule(idle_dashboard, name)
    twin = LiveDashboard(idle_dashboard.tmp)  # a second web process on the same database
    twin.env = dict(idle_dashboard.env)
    idle_dashboard.serve()
    twin.serve()
    try:
        wait_for(lambda: lxd_backups(lab.d1, name), "the missed run")
        db = idle_dashboard.tmp / "live.sqlite3"
        first = lease(db)
        # two more ticks of whoever holds the lease: the run is not repeated
        wait_for(lambda: (now := lease(db)) and now[1] != first[1], "a later tick")
        second = lease(db)
        wait_for(lambda: (now := lease(db)) and now[1] != second[1], "another tick")
        assert len(lxd_backups(lab.d1, name)) == 1
        assert lease(db)[0].split(":")[1] in (str(idle_dashboard.proc.pid), str(twin.proc.pid))
    finally:
        twin.stop()


def test_the_relay_process_runs_schedules_in_external_mode(idle_dashboard, lab, made):
    name, _ = made.make(lab.d1)
    add_missed_schedule(idle_dashboard, name)
    env = {**idle_dashboard.env, "DASHBOARD_RELAY": "external"}
    relay = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "relay"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: lxd_backups(lab.d1, name), "the relay process's run")
    finally:
        relay.terminate()
        relay.wait(20)
    assert len(lxd_backups(lab.d1, name)) == 1


def ws_restore(server, session, header: dict, data: bytes, frame: int = MiB) -> dict:
    from websockets.sync.client import connect

    uri = server.url.replace("http://", "ws://") + "/ws/backups/restore/"
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    with connect(uri, origin=server.url, additional_headers={"Cookie": cookie}, max_size=None) as ws:
        ws.send(json.dumps({**header, "size": len(data)}))
        reply = json.loads(ws.recv(timeout=30))
        if reply["type"] != "ready":
            return reply
        acked = sent = 0
        for start in range(0, len(data), frame):
            while sent - acked >= 4 * frame:
                reply = json.loads(ws.recv(timeout=60))
                if reply["type"] != "ack":
                    return reply
                acked = reply["received"]
            ws.send(data[start : start + frame])
            sent += len(data[start : start + frame])
        while True:
            reply = json.loads(ws.recv(timeout=120))
            if reply["type"] != "ack":
                return reply


def test_a_backup_file_restores_over_the_websocket_and_junk_is_refused(live_hosts, lab, made, tmp_path):
    name, marker = made.make(lab.d1, snapshots=2, data_mib=3)
    path = tmp_path / "export.tar.gz"
    lab.d1.lxc("export", name, str(path), timeout=120)
    session = DashboardSession(live_hosts.url, live_hosts.username, live_hosts.password)
    restored = made.name()
    reply = ws_restore(live_hosts, session, {"host": "lab2", "name": restored}, path.read_bytes())
    assert reply == {"type": "done", "status": 201, "message": f"Restored as {restored} on lab2 (stopped)."}
    instance = describe(lab.d2, restored)
    assert instance["status"] == "Stopped" and len(instance["snapshots"]) == 2
    assert marker_of(lab.d2, restored) == marker

    junk = made.name()
    reply = ws_restore(live_hosts, session, {"host": "lab2", "name": junk}, os.urandom(3 * MiB))
    assert reply["type"] == "error" and reply["status"] == 400
    assert "this is not an LXD instance backup" in reply["message"]
    assert describe(lab.d2, junk) is None
    taken = ws_restore(live_hosts, session, {"host": "lab2", "name": restored}, path.read_bytes())
    assert taken == {
        "type": "error",
        "status": 409,
        "message": f"lab2 already has an instance named {restored}",
    }
