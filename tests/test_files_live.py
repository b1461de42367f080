"""Uploads and downloads through a real daphne server: the websocket upload, streamed downloads,
and failures in the middle of a stream (which Django's test client cannot produce)."""

import hashlib
import os
import threading

import pytest

from tests.raw_http import start_download
from tests.support import Instances, LiveDashboard, an_instance, head, pull, push, wait_until, ws_upload
from tests.support.channels import unix_connections

HOST = "lab1"
MiB = 1024 * 1024


def register(server: LiveDashboard, lab) -> None:
    server.ensure_lab_hosts(lab)  # HOST is d1 there


@pytest.fixture(scope="module")
def live(live_dashboard, lab):
    register(live_dashboard, lab)
    return live_dashboard


@pytest.fixture(scope="module")
def small_limit(tmp_path_factory, lab):
    """A second dashboard whose upload limit is 2 MiB."""
    server = LiveDashboard(tmp_path_factory.mktemp("small-limit"))
    server.env["DASHBOARD_MAX_UPLOAD_BYTES"] = str(2 * MiB)
    server.start()
    register(server, lab)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def instance(lab):
    with an_instance(lab.d1) as name:
        yield name


def test_websocket_upload_streams_into_the_file(live, lab, instance):
    data = os.urandom(5 * MiB + 123)
    chunks = (data[i : i + MiB] for i in range(0, len(data), MiB))
    reply = ws_upload(live.login(), HOST, instance, "/root/ws.bin", chunks, len(data))
    assert reply == {"type": "done", "status": 201, "message": f"Created /root/ws.bin ({len(data)} bytes)."}
    assert hashlib.sha256(pull(lab.d1, instance, "/root/ws.bin")).digest() == hashlib.sha256(data).digest()


def test_websocket_upload_refuses_to_replace_without_confirmation(live, lab, instance):
    push(lab.d1, instance, "/root/kept", b"original")
    session = live.login()
    refused = ws_upload(session, HOST, instance, "/root/kept", [b"new"], 3)
    assert refused["type"] == "error" and refused["status"] == 409 and "already exists" in refused["message"]
    assert pull(lab.d1, instance, "/root/kept") == b"original"
    replaced = ws_upload(session, HOST, instance, "/root/kept", [b"new"], 3, overwrite=True)
    assert replaced["status"] == 200 and pull(lab.d1, instance, "/root/kept") == b"new"


def test_websocket_upload_over_the_limit_is_refused_before_any_data(live, instance):
    size = 2 * 1024**3
    reply = ws_upload(live.login(), HOST, instance, "/root/huge", iter(()), size)
    assert reply["type"] == "error" and reply["status"] == 413
    assert f"({1024**3} bytes)" in reply["message"]


def test_an_interrupted_websocket_upload_leaves_nothing(live, lab, instance):
    data = os.urandom(4 * MiB)
    chunks = (data[i : i + MiB] for i in range(0, len(data), MiB))
    reply = ws_upload(live.login(), HOST, instance, "/root/cut", chunks, 8 * MiB, stop_after=2 * MiB)
    assert reply["type"] == "stopped"
    wait_until(lambda: head(lab.d1, instance, "/root/cut") is None, 10, "the partial file removed")


def test_a_websocket_upload_to_a_bad_instance_name_is_refused_with_the_rule(live):
    reply = ws_upload(live.login(), HOST, "a_b", "/root/x", [b"x"], 1)
    assert reply["type"] == "error" and reply["status"] == 400
    assert "is not a valid instance name" in reply["message"]


def test_viewers_cannot_upload_over_the_websocket(live, lab, instance):
    live.create_users(["fsviewer"], "viewer", "x-long-password")
    viewer = live.login("fsviewer", "x-long-password")
    reply = ws_upload(viewer, HOST, instance, "/root/by-viewer", [b"x"], 1)
    assert reply["type"] == "error" and reply["status"] == 403
    assert head(lab.d1, instance, "/root/by-viewer") is None


def test_refused_websocket_uploads_are_audited_with_their_reason(live, lab, instance):
    live.create_users(["fsviewer2"], "viewer", "x-long-password")
    viewer = live.login("fsviewer2", "x-long-password")
    assert ws_upload(viewer, HOST, instance, "/root/by-viewer2", [b"x"], 1)["status"] == 403
    admin = live.login()
    assert ws_upload(admin, HOST, instance, "/root/huge2", iter(()), 2 * 1024**3)["status"] == 413
    climbing = "/../etc/" + "x" * 600
    assert ws_upload(admin, HOST, instance, climbing, [b"x"], 1)["status"] == 400

    refused = {e["target"]: e for e in live.audit_entries(action="file.push", outcome="refused")}
    assert refused[f"{instance}:/root/by-viewer2"]["username"] == "fsviewer2"
    assert "needs the operator role" in refused[f"{instance}:/root/by-viewer2"]["error"]
    assert "upload limit" in refused[f"{instance}:/root/huge2"]["error"]
    assert "climbs above the root" in refused[f"{instance}:{climbing}"]["error"]  # the whole path
    assert refused[f"{instance}:{climbing}"]["host_name"] == HOST


def test_a_chunked_put_crossing_the_limit_midway_is_refused_and_cleaned_up(small_limit, lab, instance):
    session = small_limit.login()

    def body():  # no Content-Length: the limit can only be found while streaming
        # 2.5 MiB: over the 2 MiB upload limit, under the 3 MiB (limit plus form framing) at which
        # daphne itself refuses a body (tests/test_body_limit.py), so the view meets it midway
        for _ in range(5):
            yield b"z" * (MiB // 2)

    url = f"{small_limit.url}/hosts/{HOST}/instances/{instance}/files/upload/?path=/root/chunked"
    response = session.put(url, data=body(), timeout=60)
    assert response.status_code == 413, response.text
    assert f"upload limit of 2.0\xa0MB ({2 * MiB} bytes)" in response.text
    assert "Nothing was left at /root/chunked" in response.text
    assert head(lab.d1, instance, "/root/chunked") is None


def test_raw_put_and_streamed_download_over_http(live, lab, instance):
    session = live.login()
    data = os.urandom(3 * MiB)
    base = f"{live.url}/hosts/{HOST}/instances/{instance}/files"
    put = session.put(f"{base}/upload/?path=/root/raw.bin&mode=0600", data=data, timeout=60)
    assert put.status_code == 201, put.text
    assert head(lab.d1, instance, "/root/raw.bin")["mode"] == "0600"
    got = session.get(f"{base}/download/?path=/root/raw.bin", stream=True, timeout=60)
    assert got.status_code == 200 and got.headers["Content-Length"] == str(len(data))
    assert b"".join(got.iter_content(MiB)) == data
    log = (live.tmp / "daphne.log").read_text()
    assert "must consume synchronous iterators" not in log  # served chunk by chunk, not joined


def abandon_a_download(live, lab, instance) -> tuple[object, str]:
    """Start downloading a 16 MiB file and go away after 1 MiB, as a closed tab would (a raw
    socket, closed with data unread): (the session, the download's path)."""
    push(lab.d1, instance, "/root/abandoned", os.urandom(16 * MiB))
    session = live.login()
    path = f"/hosts/{HOST}/instances/{instance}/files/download/?path=/root/abandoned"
    browser, status, body = start_download(live.port, path, {"Cookie": session.cookie_header()}, MiB)
    try:
        assert status == 200 and len(body) >= MiB
    finally:
        browser.close()  # with most of the file unread
    return session, path


def test_a_download_abandoned_midway_is_dropped_cleanly(live, lab, instance):
    session, path = abandon_a_download(live, lab, instance)
    again = session.get(path, stream=True, timeout=30)  # the server carries on
    assert sum(len(c) for c in again.iter_content(MiB)) == 16 * MiB
    assert "Traceback" not in (live.tmp / "daphne.log").read_text()


@pytest.fixture
def abandoned_instance(lab):
    """An instance of its own: LXD 5.0.2 takes 30 s to stop one whose file download was cut
    short, so it is deleted in the background (a run that ends first leaves it to the next
    run's sweep)."""
    made = Instances()
    name = made.make(lab.d1)
    yield name
    threading.Thread(target=made.cleanup, daemon=True).start()


@pytest.mark.xfail(
    strict=False,
    reason="held once in three full runs before the reader became the only thread to close the "
    "source (hosts/views/streaming.py): no reader was left and the socket still had LXD's data; "
    "not yet seen to pass in enough full runs to drop this mark",
)
def test_an_abandoned_download_lets_go_of_its_lxd_stream(live, lab, abandoned_instance):
    instance = abandoned_instance
    # Big enough to stall: 16 MiB could all fit in what the dashboard reads ahead (8 MiB), its
    # send buffer and the client's autotuned socket buffers, and then nothing ever waited.
    push(lab.d1, instance, "/root/abandoned", os.urandom(64 * MiB))
    session = live.login()
    path = f"/hosts/{HOST}/instances/{instance}/files/download/?path=/root/abandoned"
    browser, status, body = start_download(live.port, path, {"Cookie": session.cookie_header()}, MiB)

    def stalled_streams() -> set[int]:
        """The dashboard's streams from d1 with data it has not read (well over what an
        events stream ever has waiting): it reads from LXD only as fast as the client takes."""
        return {
            inode
            for inode, queued in unix_connections(live.proc.pid, lab.d1.socket).items()
            if queued > 64 * 1024
        }

    try:
        assert status == 200 and len(body) >= MiB
        ours = wait_until(stalled_streams, 15, "the download's LXD stream stalled behind the client")
    finally:
        browser.close()  # the client goes away with most of the file unread

    def released() -> bool:
        assert not ours & stalled_streams(), f"still held: {ours}"
        return True

    try:
        wait_until(released, 15, "the dashboard letting go of the download's LXD stream")
    except AssertionError as exc:  # where the dashboard's threads are, for the next reader
        raise AssertionError(f"{exc}\n{live.thread_dump()}") from None


def test_empty_files_upload_both_ways(live, lab, instance):
    session = live.login()
    reply = ws_upload(session, HOST, instance, "/root/empty-ws", [], 0)
    assert reply["status"] == 201 and pull(lab.d1, instance, "/root/empty-ws") == b""
    url = f"{live.url}/hosts/{HOST}/instances/{instance}/files/upload/?path=/root/empty-put"
    assert session.put(url, data=b"", timeout=30).status_code == 201
    assert pull(lab.d1, instance, "/root/empty-put") == b""
