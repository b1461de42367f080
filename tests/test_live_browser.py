"""Live pages in a real browser (Debian's chromium) on the real lab daemons, served by daphne
in its own process with the relay embedded: lab1 is d1 over its unix socket, lab2 is d2
over HTTPS (the `live_hosts` fixture)."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

from hosts.lxd import LXDClient
from tests.lab import ROOT
from tests.support import tcp_local_ports, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture
def container(instances):
    """Make a stopped instance on a daemon."""
    return lambda daemon: instances.make(daemon, running=False)


def wait_live(page, selector: str = "#live") -> None:
    """The socket is open and the page caught up with the relay (live from here on)."""
    expect(page.locator(selector)).to_have_attribute("data-live", "open")
    expect(page.locator("#live-indicator")).to_have_attribute("data-synced", "1", timeout=10_000)
    expect(page.locator(".htmx-request")).to_have_count(0)  # a catch-up refresh, if any, is done


def open_fleet(page, host: str = "lab1") -> None:
    page.goto("/")
    wait_live(page)
    # The host's state is in: from its live model, or (a model not fresh yet) from its lazy part.
    expect(page.locator(f"#fleet-model-{host}.model-live, #fleet-state-{host}.done")).to_have_count(1)


def test_lxc_start_changes_the_row_with_no_reload(page, live_hosts, lab, container):
    name = container(lab.d1)
    open_fleet(page)
    expect(page.locator(f"#instance-lab1-{name}-status")).to_have_text("Stopped")
    # Neither a reload nor a refresh of the table: the changes come as pushes.
    page.evaluate("window.notReloaded = true; document.getElementById('fleet-table').dataset.kept = '1'")

    lab.d1.lxc("start", name)  # outside the dashboard, as an operator would
    expect(page.locator(f"#instance-lab1-{name}-status")).to_have_text("Running")
    expect(page.locator(f"#instance-lab1-{name}-memory")).to_contain_text("iB")
    expect(page.locator(f"#instance-lab1-{name} button[data-action=stop]")).to_be_visible()
    lab.d1.lxc("exec", name, "--", "ip", "addr", "add", "192.0.2.10/24", "dev", "eth0")
    expect(page.locator(f"#instance-lab1-{name}-ips")).to_have_text("192.0.2.10")
    lab.d1.lxc("snapshot", name, "s1")
    expect(page.locator(f"#instance-lab1-{name}-snapshots")).to_have_text("1")
    lab.d1.lxc("stop", "--force", name)
    expect(page.locator(f"#instance-lab1-{name}-status")).to_have_text("Stopped")
    lab.d1.lxc("delete", name)
    expect(page.locator(f"#instance-lab1-{name}-status")).to_have_text("gone")
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#fleet-table")).to_have_attribute("data-kept", "1")


def test_the_row_of_a_host_of_each_server_kind_changes_live_under_its_badge(page, live_served, container):
    host, daemon = live_served
    name = container(daemon)
    open_fleet(page, host)
    label = "Incus" if daemon.kind == "incus" else "LXD"
    expect(page.locator(f"#fleet-host-{host} .badge.server-{daemon.kind}")).to_contain_text(label)
    expect(page.locator(f"#instance-{host}-{name}-status")).to_have_text("Stopped")
    page.evaluate("window.notReloaded = true")
    daemon.lxc("start", name)
    expect(page.locator(f"#instance-{host}-{name}-status")).to_have_text("Running")
    daemon.lxc("snapshot", name, "s1")
    expect(page.locator(f"#instance-{host}-{name}-snapshots")).to_have_text("1")
    daemon.lxc("delete", "--force", name)
    expect(page.locator(f"#instance-{host}-{name}-status")).to_have_text("gone")
    assert page.evaluate("window.notReloaded") is True


def test_a_pushed_row_keeps_what_the_person_is_doing_in_it(page, live_hosts, lab, container):
    name = container(lab.d1)
    lab.d1.lxc("start", name)
    open_fleet(page)
    row = page.locator(f"#instance-lab1-{name}")
    row.locator("button[data-action=delete]").click()
    row.locator("input[name=stop_first]").uncheck()
    lab.d1.lxc("snapshot", name, "s1")  # a change elsewhere: the row is pushed again
    expect(page.locator(f"#instance-lab1-{name}-snapshots")).to_have_text("1")
    expect(row.locator("input[name=stop_first]")).not_to_be_checked()  # the open confirmation stays
    row.locator("button[data-action=confirm-delete]").click()
    expect(row.locator(".outcome.error")).to_contain_text("running")
    lab.d1.lxc("snapshot", name, "s2")
    expect(page.locator(f"#instance-lab1-{name}-snapshots")).to_have_text("2")
    expect(row.locator(".outcome.error")).to_contain_text("running")  # LXD's answer stays in view


def test_the_task_log_gains_rows_live(page, live_hosts, lab, container):
    name = container(lab.d1)
    page.goto("/tasks/?host=lab1")
    wait_live(page)
    lab.d1.lxc("start", name)
    row = page.locator("#task-rows tr.task", has_text="Starting instance").filter(has_text=name)
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("success")

    # And it lasts (the live row may beat the database write by a few milliseconds).
    def after_a_reload() -> int:
        page.reload()
        return row.count()

    wait_until(after_a_reload, 10, "the row in a reloaded page")
    expect(row.locator(".badge")).to_have_text("success")


def forget_cached_copy(lab) -> None:
    """d1 must not hold busybox-d2 already, or LXD would skip the download."""
    d1 = LXDClient(lab.d1.socket, timeout=(5, 60))
    fingerprint = LXDClient(lab.d2.socket).get("/1.0/images/aliases/busybox-d2")["target"]
    if any(i["fingerprint"] == fingerprint for i in d1.get("/1.0/images", params={"recursion": 1})):
        d1.run("DELETE", f"/1.0/images/{fingerprint}")


def test_a_create_from_the_other_hosts_image_shows_a_progress_bar_then_the_row(
    page, live_hosts, lab, instances
):
    name = instances.track(lab.d1, instances.name("remote"))
    forget_cached_copy(lab)
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    open_fleet(page)
    page.evaluate("window.notReloaded = true")
    form = page.context.new_page()
    try:
        form.goto("/instances/create/")
        form.select_option("#id_host", "lab1")
        form.fill("#id_name", name)
        form.fill("#id_image", "busybox-d2")
        form.select_option("#id_image_host", "lab2")
        form.uncheck("#id_start")
        form.click("#create-submit", no_wait_after=True)  # the view answers when it is done

        # (d1 may be registered under other names too: look at lab1's entry only)
        item = page.locator('#live-operations li[id^="operation-lab1-"]', has_text="Creating instance")
        item = item.filter(has_text=name)
        expect(item.locator("[role=progressbar]")).to_have_count(1)  # a bar while it runs
        expect(item).to_contain_text("done", timeout=30_000)
        expect(page.locator(f"#instance-lab1-{name}-status")).to_have_text("Stopped")  # the row

        def entries(frame: str) -> list[str]:
            """This creation's entries on lab1 in a frame: a frame may join several entries, and
            d1's other registrations show the same operation under their own names."""
            found = re.findall(r'<li id="operation-lab1-[^"]+".*?</li>', frame, re.S)
            return [li for li in found if "Creating instance" in li and name in li]

        seen = [(i, li) for i, frame in enumerate(frames) for li in entries(frame)]
        # The bar restarts with each stage (download, then unpack): monotonic within a stage.
        by_stage: dict[str, list[int]] = {}
        for _, li in seen:
            stage = next((s for s in ("Downloading image", "Unpacking image") if s in li), "")
            by_stage.setdefault(stage, []).extend(int(v) for v in re.findall(r'aria-valuenow="(\d+)"', li))
        assert any(by_stage.values()), seen
        assert all(p == sorted(p) for p in by_stage.values()), by_stage
        assert "Downloading image" in by_stage or "Unpacking image" in by_stage
        done = min(i for i, li in seen if "done" in li)
        row = min(i for i, f in enumerate(frames) if f'<tr id="instance-lab1-{name}"' in f)
        assert row > done, "the row came before the creation had finished"
        assert page.evaluate("window.notReloaded") is True
        expect(form.locator("h1")).to_contain_text(name, timeout=30_000)
    finally:
        form.close()


def _listeners_from_debug_log(text: str) -> list[str]:
    started = dict(
        re.findall(r'msg="Event listener server handler started" id=(\S+) .*?remote="?([\d.:@]+)', text)
    )
    stopped = set(re.findall(r'msg="Event listener server handler stopped" listener=(\S+)', text))
    return [remote for listener, remote in started.items() if listener not in stopped]


@pytest.mark.destructive  # restarts d2
def test_a_restarted_daemon_goes_offline_then_online_with_one_connection(
    page, live_dashboard, live_hosts, lab
):
    # 20 browser websockets open while the daemon restarts (the issue-6 fault): this page + 19 tabs
    pages = [page] + [page.context.new_page() for _ in range(19)]
    for tab in pages:
        tab.goto("/hosts/")
        wait_live(tab)
        expect(tab.locator("#host-status-lab2")).to_have_text("online")
        tab.evaluate("window.notReloaded = true")
    badge = page.locator("#host-status-lab2")

    log = Path(lab.d2.lxd_dir) / "lxd.log"
    lab.d2.shutdown()
    for tab in pages:
        expect(tab.locator("#host-status-lab2")).to_have_text("offline", timeout=20_000)
    offset = log.stat().st_size if log.exists() else 0
    # --debug: the daemon logs every events listener it serves, with its remote address.
    lab.d2.start("--debug")
    expect(badge).to_have_text("online", timeout=30_000)
    for tab in pages:
        expect(tab.locator("#host-status-lab2")).to_have_text("online", timeout=30_000)
        assert tab.evaluate("window.notReloaded") is True

    # One per host registered at d2's address (other tests may register d2 under more names).
    with sqlite3.connect(live_dashboard.tmp / "live.sqlite3", timeout=20) as db:
        registered = db.execute(
            "SELECT count(*) FROM hosts_host WHERE endpoint = ?", (lab.d2.url,)
        ).fetchone()[0]
    port = int(lab.d2.url.rsplit(":", 1)[1])

    def one_listener_per_host() -> bool:
        text = log.read_text(errors="replace")
        text = text[offset:] if len(text) >= offset else text
        ours = tcp_local_ports(live_dashboard.proc.pid, port)
        open_listeners = [r for r in _listeners_from_debug_log(text) if r.startswith("127.0.0.1:")]
        from_dashboard = [r for r in open_listeners if int(r.rsplit(":", 1)[1]) in ours]
        assert registered >= 1 and len(from_dashboard) == registered, (open_listeners, ours, registered)
        return True

    # (the daemon logs a listener's end a moment after the connection goes)
    wait_until(one_listener_per_host, 15, "one events listener per host on d2, as d2 logs them")


def _task_status(live_dashboard, instance: str) -> str | None:
    with sqlite3.connect(live_dashboard.tmp / "live.sqlite3", timeout=20) as db:
        row = db.execute(
            "SELECT status FROM hosts_task WHERE description = 'Starting instance' AND targets LIKE ?",
            (f"% instance:{instance} %",),
        ).fetchone()
    return row[0] if row else None


@pytest.mark.destructive  # stops and restarts the live dashboard's daphne
def test_a_page_reconnects_by_itself_and_catches_up(page, live_dashboard, live_hosts, lab, container):
    """The web server goes away; meanwhile the relay runs as its own process
    (`manage.py relay`, as with a cross-process channel layer) and logs an lxc start; the
    server comes back, and the open page reconnects and shows the task, with no reload."""
    name = container(lab.d1)
    page.goto("/tasks/?host=lab1")
    wait_live(page)
    page.evaluate("window.notReloaded = true")
    live_dashboard.stop()
    expect(page.locator("#live")).to_have_attribute("data-live", "reconnecting")

    relay = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "relay", "--hosts-poll", "1"],
        env={**live_dashboard.env, "DASHBOARD_LOG_LEVEL": "INFO"},  # it says when a stream is open
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        for line in relay.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: any("lab1: events stream open" in line for line in lines),
            30,
            "the relay's events stream from lab1",
        )
        lab.d1.lxc("start", name)
        wait_until(lambda: _task_status(live_dashboard, name) == "success", 15, "the start in the task log")
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(15)
        reader.join(15)
        relay.stdout.close()
    output = "".join(lines)
    assert relay.returncode == 0 and "relay running" in output and "relay stopped" in output, output

    live_dashboard.serve()
    expect(page.locator("#live")).to_have_attribute("data-live", "open", timeout=20_000)
    row = page.locator("#task-rows tr.task", has_text="Starting instance").filter(has_text=name)
    expect(row).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True
