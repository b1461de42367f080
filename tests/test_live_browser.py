"""Live pages in a real browser (Debian's chromium) on the real lab daemons, served by daphne
in its own process with the relay embedded.

The fleet table's rows belong to another module: where a test needs a row, it adds the
row the fleet page will have (the ids of hosts.ids.dom_id: instance-<host>-<name>, cells
-status, -ips, -snapshots, -memory, tbody instances-<host>) with its live connection, as
that page will.  Everything else is the dashboard's own markup.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from hosts.lxd import LXDClient
from tests.lab import ROOT
from tests.live import tcp_local_ports

pytestmark = pytest.mark.browser

FLEET_ROW = """
<div id="fleet-stub" hx-ext="ws" ws-connect="/ws/live/?topics=instances&amp;host={host}">
 <table><tbody id="instances-{host}">
  <tr id="instance-{host}-{name}"><td>{name}</td><td id="instance-{host}-{name}-status">Stopped</td>
   <td id="instance-{host}-{name}-ips"></td><td id="instance-{host}-{name}-snapshots">0</td>
   <td id="instance-{host}-{name}-memory"></td></tr>
 </tbody></table>
</div>"""


@pytest.fixture(scope="session")
def live_hosts(live_dashboard, lab):
    """d1 over its unix socket and d2 over HTTPS, registered in the live dashboard."""
    live_dashboard.manage("addhost", "live1", lab.d1.socket)
    live_dashboard.manage("addhost", "live2", lab.d2.url, "--token", lab.d2.trust_token())
    return "live1", "live2"


@pytest.fixture
def container(lab):
    made = []

    def make(daemon, *args: str) -> str:
        name = "ev3-br-" + uuid.uuid4().hex[:6]
        daemon.lxc("init", "busybox", name, *args)
        made.append((daemon, name))
        return name

    yield make
    for daemon, name in made:
        daemon.lxc("delete", "--force", name, check=False)


def wait_live(page, selector: str = "#live") -> None:
    expect(page.locator(selector)).to_have_attribute("data-live", "open")


def add_fleet_row(page, host: str, name: str) -> None:
    page.evaluate(
        """(html) => {
            document.querySelector('main').insertAdjacentHTML('beforeend', html);
            const stub = document.getElementById('fleet-stub');
            stub.addEventListener('htmx:wsOpen', () => { stub.dataset.live = 'open'; });
            htmx.process(stub);
        }""",
        FLEET_ROW.format(host=host, name=name),
    )
    wait_live(page, "#fleet-stub")


def test_lxc_start_changes_the_row_with_no_reload(page, live_hosts, lab, container):
    name = container(lab.d1)
    page.goto("/hosts/")
    wait_live(page)
    add_fleet_row(page, "live1", name)
    page.evaluate("window.notReloaded = true")

    lab.d1.lxc("start", name)  # outside the dashboard, as an operator would
    expect(page.locator(f"#instance-live1-{name}-status")).to_have_text("Running")
    expect(page.locator(f"#instance-live1-{name}-memory")).to_contain_text("iB")
    lab.d1.lxc("exec", name, "--", "ip", "addr", "add", "192.0.2.10/24", "dev", "eth0")
    expect(page.locator(f"#instance-live1-{name}-ips")).to_have_text("192.0.2.10")
    lab.d1.lxc("snapshot", name, "s1")
    expect(page.locator(f"#instance-live1-{name}-snapshots")).to_have_text("1")
    lab.d1.lxc("stop", "--force", name)
    expect(page.locator(f"#instance-live1-{name}-status")).to_have_text("Stopped")
    assert page.evaluate("window.notReloaded") is True


def test_the_task_log_gains_rows_live(page, live_hosts, lab, container):
    name = container(lab.d1)
    page.goto("/tasks/?host=live1")
    wait_live(page)
    lab.d1.lxc("start", name)
    row = page.locator("#task-rows tr.task", has_text="Starting instance").filter(has_text=name)
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("success")
    # And it lasts (the live row may beat the database write by a few milliseconds).
    for _ in range(20):
        page.reload()
        if row.count() == 1:
            break
        time.sleep(0.1)
    expect(row.locator(".badge")).to_have_text("success")


def remote_create(lab, name: str) -> str:
    """Create `name` on d1 from busybox-d2, an image only d2 holds (as the UI's create does:
    fingerprint + a one-time secret + d2's certificate).  Returns the operation id."""
    d1 = LXDClient(lab.d1.socket, timeout=(5, 60))
    d2 = LXDClient(lab.d2.socket, timeout=(5, 60))
    fingerprint = d2.get("/1.0/images/aliases/busybox-d2")["target"]
    if any(i["fingerprint"] == fingerprint for i in d1.get("/1.0/images", params={"recursion": 1})):
        d1.run("DELETE", f"/1.0/images/{fingerprint}")  # a cached copy would skip the download
    secret = d2.call("POST", f"/1.0/images/{fingerprint}/secret")[0].data["metadata"]["secret"]
    source = {
        "type": "image",
        "mode": "pull",
        "server": lab.d2.url,
        "protocol": "lxd",
        "certificate": d2.server()[0]["environment"]["certificate"],
        "fingerprint": fingerprint,
        "secret": secret,
    }
    op = d1.call("POST", "/1.0/instances", json_body={"name": name, "source": source})[0]
    return op.id


def test_a_create_from_the_other_hosts_image_shows_a_progress_bar_then_the_row(page, live_hosts, lab):
    name = "ev3-br-remote-" + uuid.uuid4().hex[:4]
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    page.goto("/tasks/")
    wait_live(page)
    add_fleet_row(page, "live1", "placeholder")
    try:
        op_id = remote_create(lab, name)
        item = page.locator(f"#operation-live1-{op_id}")
        expect(item).to_contain_text("done")
        op_frames = [f for f in frames if f"operation-live1-{op_id}" in f]
        bars = [int(v) for f in op_frames for v in re.findall(r'aria-valuenow="(\d+)"', f)]
        assert bars, f"no progress bar with a percentage: {op_frames}"
        assert any("Downloading image" in f or "Unpacking image" in f for f in op_frames)
        # The row is pushed when the operation is done, not when LXD first lists the instance.
        deadline = time.monotonic() + 10
        while not any(f"instance-live1-{name}" in f for f in frames) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        row_frames = [i for i, f in enumerate(frames) if f"instance-live1-{name}" in f]
        done = max(i for i, f in enumerate(frames) if f"operation-live1-{op_id}" in f and "done" in f)
        assert row_frames and min(row_frames) > done
        task = page.locator(f"#task-live1-{op_id}")
        expect(task.locator(".badge")).to_have_text("success")
    finally:
        lab.d1.lxc("delete", "--force", name, check=False)


def _listeners_from_debug_log(text: str) -> list[str]:
    started = dict(
        re.findall(r'msg="Event listener server handler started" id=(\S+) .*?remote="?([\d.:@]+)', text)
    )
    stopped = set(re.findall(r'msg="Event listener server handler stopped" listener=(\S+)', text))
    return [remote for listener, remote in started.items() if listener not in stopped]


def test_a_restarted_daemon_goes_offline_then_online_with_one_connection(
    page, live_dashboard, live_hosts, lab
):
    page.goto("/hosts/")
    wait_live(page)
    badge = page.locator("#host-status-live2")
    expect(badge).to_have_text("online")
    page.evaluate("window.notReloaded = true")

    env = {**os.environ, "LXD_DIR": lab.d2.lxd_dir}
    log = Path(lab.d2.lxd_dir) / "lxd.log"
    subprocess.run(["lxd", "shutdown", "--timeout", "60"], env=env, check=True, timeout=90)
    expect(badge).to_have_text("offline", timeout=20_000)
    offset = log.stat().st_size if log.exists() else 0
    # --debug: the daemon logs every events listener it serves, with its remote address.
    subprocess.run(  # detached, as bin/lab starts it
        [
            "sh",
            "-c",
            'setsid lxd --group root --debug --logfile "$1" </dev/null >/dev/null 2>&1 &',
            "sh",
            str(log),
        ],
        env=env,
        check=True,
    )
    subprocess.run(["lxd", "waitready", "--timeout", "60"], env=env, check=True, timeout=90)
    expect(badge).to_have_text("online", timeout=30_000)
    assert page.evaluate("window.notReloaded") is True

    time.sleep(1)
    text = log.read_text(errors="replace")
    text = text[offset:] if len(text) >= offset else text
    port = int(lab.d2.url.rsplit(":", 1)[1])
    ours = tcp_local_ports(live_dashboard.proc.pid, port)
    open_listeners = [r for r in _listeners_from_debug_log(text) if r.startswith("127.0.0.1:")]
    from_dashboard = [r for r in open_listeners if int(r.rsplit(":", 1)[1]) in ours]
    assert len(from_dashboard) == 1, (open_listeners, ours)


def _task_status(live_dashboard, instance: str) -> str | None:
    with sqlite3.connect(live_dashboard.tmp / "live.sqlite3", timeout=20) as db:
        row = db.execute(
            "SELECT status FROM hosts_task WHERE description = 'Starting instance' AND targets LIKE ?",
            (f"% instance:{instance} %",),
        ).fetchone()
    return row[0] if row else None


def test_a_page_reconnects_by_itself_and_catches_up(page, live_dashboard, live_hosts, lab, container):
    """The web server goes away; meanwhile the relay runs as its own process
    (`manage.py relay`, as with a cross-process channel layer) and logs an lxc start; the
    server comes back, and the open page reconnects and shows the task, with no reload."""
    name = container(lab.d1)
    page.goto("/tasks/?host=live1")
    wait_live(page)
    page.evaluate("window.notReloaded = true")
    live_dashboard.stop()
    expect(page.locator("#live")).to_have_attribute("data-live", "reconnecting")

    relay = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "relay", "--hosts-poll", "1"],
        env=live_dashboard.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = [relay.stdout.readline()]
        while "relay running" not in lines[-1] and lines[-1] and len(lines) < 5:
            lines.append(relay.stdout.readline())  # after the in-memory layer's warning
        assert "relay running" in lines[-1], lines
        time.sleep(1.5)  # its connections are up
        lab.d1.lxc("start", name)
        deadline = time.monotonic() + 15
        while _task_status(live_dashboard, name) != "success" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _task_status(live_dashboard, name) == "success"
    finally:
        relay.send_signal(signal.SIGTERM)
        output, _ = relay.communicate(timeout=15)
    assert relay.returncode == 0 and "relay stopped" in output, output

    live_dashboard.serve()
    expect(page.locator("#live")).to_have_attribute("data-live", "open", timeout=20_000)
    row = page.locator("#task-rows tr.task", has_text="Starting instance").filter(has_text=name)
    expect(row).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True
