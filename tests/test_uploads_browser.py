"""The upload forms that stream over a websocket (static/js/upload.js) in a real browser
(Playwright + chromium), against the live dashboard and the lab daemons: an image import (a split
image: two files, one stream) and a backup restored as a new instance.  (The file upload has its
own: tests/test_files_browser.py.)"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.images_helpers import build_split_image, forget_image, sha256_of
from tests.move_helpers import describe, made_fixture, marker_of  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def test_a_split_image_imported_from_the_page(page, live_hosts, lab, tmp_path):
    metadata, rootfs = build_split_image(tmp_path, lab.env["LAB_DIR"])
    fingerprint, alias = sha256_of(metadata, rootfs), "t-" + uuid.uuid4().hex[:8]
    try:
        page.goto("/images/import/")
        page.select_option("#image-import-host", "lab1")
        page.set_input_files("#image-import-file", str(metadata))
        page.set_input_files("#image-import-rootfs", str(rootfs))
        page.fill("#image-import-aliases", alias)
        page.click("#image-import-submit")
        expect(page.locator("#image-import-status")).to_contain_text(
            f"Imported image {fingerprint[:12]}", timeout=60_000
        )
        expect(page.locator("#image-import-status")).to_have_class("ok")
        assert page.locator("#image-import-progress").evaluate("p => p.value") == 1
        assert lab.d1.admin().alias_target(alias) == fingerprint
    finally:
        forget_image(lab.d1, fingerprint)


def test_a_backup_file_restored_from_the_page(page, live_hosts, lab, made, tmp_path):
    name, marker = made.make(lab.d1, snapshots=1)
    path = tmp_path / "export.tar.gz"
    lab.d1.lxc("export", name, str(path), timeout=120)
    restored = made.name()
    page.goto("/backups/restore/")
    page.set_input_files("#restore-file", str(path))
    page.select_option("#restore-host", "lab2")
    page.fill("#restore-name", restored)
    page.click("#restore-submit")
    status = page.locator("#restore-status")
    expect(status).to_have_text(f"Restored as {restored} on lab2 (stopped).", timeout=60_000)
    expect(status).to_have_class("ok")
    assert len(describe(lab.d2, restored)["snapshots"]) == 1
    assert marker_of(lab.d2, restored) == marker
    # The same again: the server's refusal is what the page says, and the form is usable again.
    page.click("#restore-submit")
    expect(status).to_have_text(f"lab2 already has an instance named {restored}")
    expect(status).to_have_class("error")
    expect(page.locator("#restore-submit")).to_be_enabled()
