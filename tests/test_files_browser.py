"""Files and snapshots in a real browser (Playwright + chromium) against the live dashboard."""

import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.support import an_instance, pull, push

pytestmark = pytest.mark.browser
HOST = "fileslab"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def live(live_dashboard, lab):
    result = live_dashboard.manage("addhost", HOST, lab.d1.socket, check=False)
    assert result.returncode == 0 or "already registered" in result.stderr, result.stderr
    return live_dashboard


@pytest.fixture(scope="module")
def instance(lab):
    with an_instance(lab.d1) as name:
        yield name


def files(instance, path="/"):
    return f"/hosts/{HOST}/instances/{instance}/files/?path={quote(path, safe='/')}"


def row(page, path):
    return page.locator(f'tr[data-path="{path}"]')


def test_browse_and_view_a_file(page, live, instance):
    page.goto(files(instance, "/"))
    page.get_by_role("link", name="etc/", exact=True).click()
    expect(row(page, "/etc/hosts")).to_be_visible()
    expect(row(page, "/etc/hosts")).to_contain_text("-rw-r--r--")
    row(page, "/etc/hosts").get_by_role("link", name="hosts", exact=True).click()
    expect(page.locator("#file-content")).to_contain_text("127.0.0.1 localhost")
    page.locator("#crumbs").get_by_role("link", name="etc").click()
    expect(page).to_have_url(re.compile(r"path=/etc$"))
    page.goto(files(instance, "/bin"))
    expect(row(page, "/bin/ls")).to_contain_text("→ /bin/busybox")


def test_upload_with_progress_then_replace_only_after_confirmation(page, live, lab, instance):
    page.goto(files(instance, "/root"))
    first, second = os.urandom(3 * MiB), os.urandom(2 * MiB)
    name = "up load ü.bin"
    page.set_input_files(
        "#upload-file", files=[{"name": name, "mimeType": "application/octet-stream", "buffer": first}]
    )
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-status")).to_have_text(f"Created /root/{name} ({len(first)} bytes).")
    expect(row(page, f"/root/{name}")).to_be_visible()  # the listing was refreshed in place
    assert pull(lab.d1, instance, f"/root/{name}") == first

    page.set_input_files(
        "#upload-file", files=[{"name": name, "mimeType": "application/octet-stream", "buffer": second}]
    )
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-status")).to_contain_text(f"/root/{name} already exists.")
    assert pull(lab.d1, instance, f"/root/{name}") == first
    page.click("#upload-replace")
    expect(page.locator("#upload-status")).to_have_text(f"Replaced /root/{name} ({len(second)} bytes).")
    assert pull(lab.d1, instance, f"/root/{name}") == second


def test_download(page, live, lab, instance):
    data = os.urandom(MiB + 7)
    push(lab.d1, instance, "/root/dl.bin", data)
    page.goto(files(instance, "/root/dl.bin"))
    expect(page.locator("#binary-notice")).to_be_visible()
    with page.expect_download() as info:
        page.click("#download-link")
    download = info.value
    assert download.suggested_filename == "dl.bin"
    assert Path(download.path()).read_bytes() == data


def test_seed_push_abc_make_a_directory_and_delete(page, live, lab, instance):
    page.goto(files(instance, "/tmp"))
    page.fill("#text-form input[name=name]", "a")
    page.fill("#text-form textarea[name=content]", "abc")
    page.click("#text-form button[type=submit]")
    expect(page.locator("#messages")).to_contain_text("Created /tmp/a (3 bytes).")
    row(page, "/tmp/a").get_by_role("link", name="a", exact=True).click()
    expect(page.locator("#file-content")).to_have_text("abc")
    assert pull(lab.d1, instance, "/tmp/a") == b"abc"

    page.goto(files(instance, "/tmp"))
    page.fill("#mkdir-form input[name=name]", "new dir")
    page.click("#mkdir-form button[type=submit]")
    expect(page.locator("#messages")).to_contain_text("Created the directory /tmp/new dir.")
    expect(row(page, "/tmp/new dir")).to_have_attribute("data-type", "directory")

    row(page, "/tmp/a").get_by_role("link", name="Delete…").click()
    expect(page.locator("h1")).to_have_text("Delete /tmp/a?")
    page.get_by_role("button", name="Delete file").click()
    expect(page.locator("#messages")).to_contain_text("Deleted the file /tmp/a.")
    expect(row(page, "/tmp/a")).to_have_count(0)
    assert pull(lab.d1, instance, "/tmp/a") is None


def test_snapshots_create_details_rename_restore_delete(page, live, lab, instance):
    page.goto(f"/hosts/{HOST}/instances/{instance}/snapshots/")
    outcome = page.locator("#snapshot-outcome")
    page.fill("#snapshot-create-form input[name=name]", "my-snapshot")
    page.click("#snapshot-create-form button[type=submit]")
    expect(outcome).to_contain_text(f"Created snapshot my-snapshot of {instance}")
    expect(page.locator('tr[data-snapshot="my-snapshot"]')).to_be_visible()

    page.fill("#snapshot-create-form input[name=name]", "my-snapshot")  # the name is taken
    page.click("#snapshot-create-form button[type=submit]")
    expect(page.locator("#snapshot-error")).to_contain_text("A snapshot named my-snapshot already exists")

    page.get_by_role("link", name="my-snapshot", exact=True).click()
    expect(page.locator("#snapshot-info")).to_contain_text("Stateful")
    expect(page.locator("#snapshot-config")).to_contain_text("image.os = busybox")
    expect(page.locator("#snapshot-devices")).to_contain_text("root")
    page.go_back()

    snap = page.locator('tr[data-snapshot="my-snapshot"]')
    snap.locator("input[name=new_name]").fill("renamed")
    snap.get_by_role("button", name="Rename").click()
    expect(outcome).to_have_text("Renamed snapshot my-snapshot to renamed.")

    push(lab.d1, instance, "/root/marker", b"after the snapshot")
    page.locator('tr[data-snapshot="renamed"]').get_by_role("link", name="Restore…").click()
    expect(page.get_by_role("heading", name=f"Restore snapshot renamed of {instance}?")).to_be_visible()
    page.get_by_role("button", name="Restore renamed").click()
    expect(
        page.get_by_text("Restoring: waiting for LXD's operation")
    ).to_be_visible()  # progress while LXD works
    expect(outcome).to_contain_text("Restored snapshot renamed")
    expect(outcome).to_contain_text("it is now Running.")
    assert pull(lab.d1, instance, "/root/marker") is None

    page.locator('tr[data-snapshot="renamed"]').get_by_role("link", name="Delete…").click()
    page.get_by_role("button", name="Delete renamed").click()
    expect(outcome).to_have_text(f"Deleted snapshot renamed of {instance}.")
    expect(page.locator('tr[data-snapshot="renamed"]')).to_have_count(0)
    assert lab.d1.admin().snapshots(instance) == []
