"""Image uploads over the page's websocket and a copy whose source dies, against the live
dashboard (daphne in its own process) and the real lab daemons: lab1 is d1 (unix socket)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid

import pytest

from tests.images_helpers import (
    build_image,
    build_split_image,
    forget_image,
    images_dir_leftovers,
    sha256_of,
    ws_import,
)
from tests.lab import ROOT
from tests.support import DashboardSession, wait_until

MiB = 1024 * 1024


@pytest.fixture
def session(live_hosts):
    return DashboardSession(live_hosts.url, live_hosts.username, live_hosts.password)


def task_of(live_dashboard, host: str, operation_id: str) -> str:
    """The task log's row for an operation, as `targets username status`."""
    code = (
        "from hosts.models import Task\n"
        f"t = Task.objects.filter(host_name={host!r}, operation_id={operation_id!r}).first()\n"
        "print(t and f'{t.targets.strip()} {t.username} {t.status}')\n"
    )
    return live_dashboard.manage("shell", "-c", code).stdout.strip().splitlines()[-1]


def import_operation(live_dashboard, host: str) -> str:
    code = (
        "from hosts.models import AuditEntry\n"
        f"print(AuditEntry.objects.filter(action='image.import', host_name={host!r}).latest('time').operation_id)\n"
    )
    return live_dashboard.manage("shell", "-c", code).stdout.strip().splitlines()[-1]


class LiveFrames:
    """The page's live socket (ws/live/), read in a thread: the fragments the relay pushes."""

    def __init__(self, live, session, query: str):
        from websockets.sync.client import connect

        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        uri = live.url.replace("http://", "ws://") + "/ws/live/?" + query
        self.socket = connect(uri, origin=live.url, additional_headers={"Cookie": cookie}, open_timeout=30)
        self.frames: list[str] = []

    def __enter__(self) -> LiveFrames:
        self.ws = self.socket.__enter__()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.socket.__exit__(*exc)
        self.thread.join(5)

    def _read(self):
        from websockets.exceptions import ConnectionClosed

        try:
            for message in self.ws:
                self.frames.append(message if isinstance(message, str) else message.decode())
        except ConnectionClosed:
            pass

    def wait_for(self, *needles: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in list(self.frames):
                if all(n in frame for n in needles):
                    return frame
            time.sleep(0.05)
        raise AssertionError(f"no frame with {needles} in {len(self.frames)} frames")


def test_a_unified_image_is_streamed_into_the_host_with_its_alias(live_hosts, session, lab, tmp_path):
    path = build_image(tmp_path / "unified.tar", lab.env["LAB_DIR"], blob_mib=8)
    fingerprint, alias = sha256_of(path), "t-" + uuid.uuid4().hex[:8]
    try:
        with LiveFrames(live_hosts, session, "topics=operations,tasks&host=lab1") as live:
            live.wait_for("live-indicator", "data-synced")
            reply = ws_import(live_hosts.url, session, "lab1", [path], aliases=[alias])
            assert reply["type"] == "done" and reply["status"] == 201, reply
            assert (
                f"Imported image {fingerprint[:12]}" in reply["message"] and f"as {alias}" in reply["message"]
            )
            assert lab.d1.admin().alias_target(alias) == fingerprint
            assert images_dir_leftovers(lab.d1) == []
            # LXD's operation is in the task log, live and kept, naming the image and who imported it
            op = import_operation(live_hosts, "lab1")
            # (the unpacking may end before the claim is written: the relay looks again)
            row = live.wait_for(f'id="task-lab1-{op}"', "status-success", "<td>admin</td>")
            assert "Downloading image" in row
            assert f"image {fingerprint[:12]}" in row or "upload unified.tar" in row
            # The kept row ends naming the image: the import claims the operation a second time
            # once LXD has said the fingerprint, which may be after the row went "success".
            expected = f"image:{fingerprint} admin success"
            wait_until(
                lambda: task_of(live_hosts, "lab1", op) == expected, 15, "the kept row naming the image"
            )
    finally:
        forget_image(lab.d1, fingerprint)


def test_a_split_image_goes_up_as_its_two_files(live_hosts, session, lab, tmp_path):
    metadata, rootfs = build_split_image(tmp_path, lab.env["LAB_DIR"])
    fingerprint = sha256_of(metadata, rootfs)
    try:
        reply = ws_import(live_hosts.url, session, "lab1", [metadata, rootfs], frame=64 * 1024)
        assert reply["type"] == "done", reply
        image = lab.d1.admin().image(fingerprint)
        assert image["properties"]["release"] == "split" and image["filename"] == "rootfs.tar"
    finally:
        forget_image(lab.d1, fingerprint)


def test_an_upload_that_is_no_image_is_refused_and_the_host_keeps_nothing(live_hosts, session, lab, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(3 * MiB))
    before = {i["fingerprint"] for i in lab.d1.admin().images()}
    reply = ws_import(live_hosts.url, session, "lab1", [junk])
    assert reply["type"] == "error" and reply["status"] == 400, reply
    assert "lab1 did not take junk.bin as an image tarball: Unsupported compression" in reply["message"]
    assert {i["fingerprint"] for i in lab.d1.admin().images()} == before
    assert images_dir_leftovers(lab.d1) == []


def test_a_taken_alias_is_refused_before_a_byte_is_sent(live_hosts, session, lab, tmp_path):
    path = build_image(tmp_path / "clash.tar", lab.env["LAB_DIR"])
    busybox = lab.d1.admin().resolve_image("busybox")
    reply = ws_import(live_hosts.url, session, "lab1", [path], aliases=["busybox"])
    assert reply["type"] == "error" and reply["status"] == 409, reply
    assert f"The alias busybox is taken on lab1: it points to image {busybox[:12]}" in reply["message"]
    assert not lab.d1.admin().has_image(sha256_of(path))
    bad = ws_import(live_hosts.url, session, "lab1", [path], aliases=[".."])
    assert bad["status"] == 400 and "is not a valid image alias" in bad["message"]


def test_an_interrupted_upload_leaves_nothing_on_the_host(live_hosts, session, lab, tmp_path):
    path = build_image(tmp_path / "cut.tar", lab.env["LAB_DIR"], blob_mib=24)
    reply = ws_import(live_hosts.url, session, "lab1", [path], stop_after=12 * MiB)
    assert reply["type"] == "stopped"
    deadline = time.monotonic() + 20
    while images_dir_leftovers(lab.d1) and time.monotonic() < deadline:
        time.sleep(0.1)  # LXD removes its build directory once it sees the body end
    assert images_dir_leftovers(lab.d1) == []
    assert not lab.d1.admin().has_image(sha256_of(path))


def test_a_viewer_cannot_import(live_hosts, lab, tmp_path):
    live_hosts.create_users(["image-viewer"], "viewer", "viewer-password-1")
    viewer = DashboardSession(live_hosts.url, "image-viewer", "viewer-password-1")
    path = build_image(tmp_path / "viewer.tar", lab.env["LAB_DIR"])
    reply = ws_import(live_hosts.url, viewer, "lab1", [path])
    assert reply == {"type": "error", "status": 403, "message": "Importing images needs the operator role."}


@pytest.fixture
def lab3(live_dashboard, lab):
    """d3 registered as lab3 (over HTTPS); the test kills it, this starts it again and deletes
    the images the test listed in `forget`."""
    live_dashboard.manage(
        "addhost", "lab3", lab.d3.url, "--token", lab.d3.trust_token("images-kill"), check=False
    )
    forget: list[str] = []
    yield lab.d3, forget
    subprocess.run([str(ROOT / "bin" / "lab"), "up", "3"], check=True, capture_output=True, timeout=120)
    for fingerprint in forget:
        forget_image(lab.d3, fingerprint)


def test_a_source_killed_mid_copy_fails_the_copy_and_the_target_keeps_nothing(
    live_hosts, session, lab, lab3, tmp_path
):
    lab3, forget = lab3
    path = build_image(tmp_path / "big.tar", lab.env["LAB_DIR"], blob_mib=200)
    fingerprint = sha256_of(path)
    lab3.lxc("image", "import", str(path), timeout=300)
    forget.append(fingerprint)
    forget_image(lab.d1, fingerprint)
    pid = lab3.admin().server()[0]["environment"]["server_pid"]
    target = lab.d1.admin()
    killed = threading.Event()

    def kill_when_the_download_runs():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for op in target.operations():
                if op.progress is not None and op.progress.stage == "download":
                    os.kill(pid, signal.SIGKILL)
                    killed.set()
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_when_the_download_runs)
    killer.start()
    response = session.post(
        f"{live_hosts.url}/hosts/lab3/images/{fingerprint}/copy/",
        data={"target": "lab1"},
        headers={"HX-Request": "true"},
        timeout=120,
    )
    killer.join()
    assert killed.is_set(), "the download never showed progress"
    body = response.text
    assert response.status_code == 502 and "Traceback" not in body, body[:500]
    assert "The copy to lab1 failed: lab3 stopped answering mid-copy" in body and "lab1 kept nothing" in body
    assert not target.has_image(fingerprint)
    assert images_dir_leftovers(lab.d1) == []
