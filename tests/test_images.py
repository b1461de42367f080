"""Images across the fleet on the real lab daemons: lab1 is d1 over its unix socket, lab2 is d2
over HTTPS.  d2 holds `busybox-d2`, which d1 must not hold (each test that copies it makes sure)."""

from __future__ import annotations

import hashlib
import html
import io
import tarfile
import uuid

import pytest
from django.contrib.auth.models import Group

from hosts.models import AuditEntry, Task
from tests.images_helpers import build_image, build_split_image, forget_image, imported, sha256_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def d2_image(lab):
    """busybox-d2's fingerprint, absent from d1 (a copy from an earlier run is removed)."""
    fingerprint = lab.d2.admin().resolve_image("busybox-d2")
    forget_image(lab.d1, fingerprint)
    yield fingerprint
    forget_image(lab.d1, fingerprint)


@pytest.fixture
def user_client(client, django_user_model):
    def make(role: str):
        user = django_user_model.objects.create_user(
            f"{role}-{uuid.uuid4().hex[:6]}", password="a-long-password-1"
        )
        if role != "viewer":
            user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        return client

    return make


@pytest.fixture
def small_image(lab, tmp_path):
    """A fresh image on d1 only, alias `t-<random>`: (fingerprint, alias)."""
    alias = "t-" + uuid.uuid4().hex[:8]
    with imported(lab.d1, build_image(tmp_path / "small.tar", lab.env["LAB_DIR"]), alias) as fingerprint:
        yield fingerprint, alias


def test_the_fleet_list_says_which_host_holds_each_image(admin_client, unix_host, https_host, d2_image, lab):
    page = admin_client.get("/images/").content.decode()
    busybox = lab.d1.admin().resolve_image("busybox")
    row = page.split(f'id="image-{busybox}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-host="lab1"' in row and 'data-host="lab2"' in row
    row = page.split(f'id="image-{d2_image}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-host="lab2"' in row and 'data-host="lab1"' not in row
    assert "busybox-d2" in row and "on lab2" in row
    only = admin_client.get("/images/?host=lab1").content.decode()
    assert f'id="image-{busybox}"' in only and f'id="image-{d2_image}"' not in only


def test_the_fleet_list_sorts_by_a_column_kept_in_the_url(admin_client, unix_host, https_host, d2_image, lab):
    busybox = lab.d1.admin().resolve_image("busybox")  # on both hosts; d2_image on lab2 only

    def order(params):
        page = admin_client.get("/images/", params).content.decode()
        return page, page.index(f'id="image-{busybox}"') < page.index(f'id="image-{d2_image}"')

    page, busybox_first = order({"sort": "holders", "dir": "desc"})
    assert busybox_first and 'aria-sort="descending" data-col="holders"' in page
    assert 'href="?sort=holders&amp;dir=asc"' in page  # the header flips the direction
    assert not order({"sort": "holders", "dir": "asc"})[1]
    page = admin_client.get("/images/", {"host": "lab2", "sort": "size"}).content.decode()
    assert 'href="?host=lab2&amp;sort=size&amp;dir=desc"' in page  # the filter is kept


def test_a_copy_goes_from_host_to_host_with_a_one_time_secret(
    admin_client, unix_host, https_host, d2_image, lab
):
    response = admin_client.post(
        f"/hosts/lab2/images/{d2_image}/copy/",
        {"target": ["lab1"], "copy_aliases": "on"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200 and "Copied to lab1." in body, body
    image = lab.d1.admin().image(d2_image)
    assert [a["name"] for a in image["aliases"]] == ["busybox-d2"] and not image["cached"]
    copy = AuditEntry.objects.get(action="image.copy", host_name="lab1")
    assert copy.outcome == "ok" and copy.target == f"{d2_image[:12]} from lab2"
    secret = AuditEntry.objects.get(action="image.secret", host_name="lab2")
    # the secret was used or revoked: no image token is left running on the source
    running = [op for op in lab.d2.admin().operations() if not op.is_final]
    assert secret.operation_id not in {op.id for op in running}
    # the task log names the image the copy concerns (LXD's operation names none) and who
    task = Task.objects.get(host_name="lab1", operation_id=copy.operation_id)
    assert task.target_list() == [("image", d2_image)] and task.username == "admin"

    again = admin_client.post(
        f"/hosts/lab2/images/{d2_image}/copy/", {"target": ["lab1"]}, HTTP_HX_REQUEST="true"
    )
    assert "lab1 already holds image" in again.content.decode()


def test_images_core_path_on_each_server_kind(admin_client, unix_host, served, small_image, lab, tmp_path):
    """Copy from LXD's lab1 to the host (LXD or Incus pulls it as LXD's `lxd` protocol client),
    list, edit, export and delete there, import one over the host's own image headers, and copy
    that one back to lab1 (LXD pulling from Incus)."""
    fingerprint, alias = small_image
    host, daemon = served.name, served.daemon
    try:
        copied = admin_client.post(
            f"/hosts/lab1/images/{fingerprint}/copy/",
            {"target": [host], "copy_aliases": "on"},
            HTTP_HX_REQUEST="true",
        )
        assert f"Copied to {host}." in copied.content.decode(), copied.content.decode()
        assert [a["name"] for a in daemon.admin().image(fingerprint)["aliases"]] == [alias]
        page = admin_client.get("/images/").content.decode()
        row = page.split(f'id="image-{fingerprint}"', 1)[1].split("</tr>", 1)[0]
        assert 'data-host="lab1"' in row and f'data-host="{host}"' in row

        detail = admin_client.get(f"/hosts/{host}/images/{fingerprint}/").content.decode()
        etag = html.unescape(detail.split('name="etag" value="', 1)[1].split('"', 1)[0])
        edit = {"etag": etag, "properties": "os = busybox\ndescription = edited", "public_shown": "1"}
        assert admin_client.post(f"/hosts/{host}/images/{fingerprint}/edit/", edit).status_code == 302
        assert daemon.admin().image(fingerprint)["properties"]["description"] == "edited"
        exported = admin_client.get(f"/hosts/{host}/images/{fingerprint}/export/")
        assert hashlib.sha256(b"".join(exported.streaming_content)).hexdigest() == fingerprint
        gone = admin_client.post(f"/hosts/{host}/images/{fingerprint}/delete/", {"confirm": "yes"})
        assert gone.status_code == 302 and not daemon.admin().has_image(fingerprint)

        path = build_image(tmp_path / "imported.tar", lab.env["LAB_DIR"], release="kinds")
        client = served.host.client(timeout=(5, 60))
        op = client.upload_image(path.read_bytes(), content_type="application/octet-stream", public=True)
        made = client.wait(op, timeout=60).metadata["fingerprint"]
        try:
            assert made == sha256_of(path) and daemon.admin().image(made)["public"] is True
            # and back the other way: LXD's lab1 pulls from the host (Incus or LXD)
            back = admin_client.post(
                f"/hosts/{host}/images/{made}/copy/", {"target": ["lab1"]}, HTTP_HX_REQUEST="true"
            )
            assert "Copied to lab1." in back.content.decode(), back.content.decode()
            assert lab.d1.admin().has_image(made)
        finally:
            forget_image(daemon, made)
            forget_image(lab.d1, made)
    finally:
        forget_image(daemon, fingerprint)


def test_a_copy_to_an_unknown_host_or_to_none_is_refused(admin_client, https_host, d2_image):
    assert (
        admin_client.post(f"/hosts/lab2/images/{d2_image}/copy/", {"target": ["nowhere"]}).status_code == 400
    )
    assert admin_client.post(f"/hosts/lab2/images/{d2_image}/copy/", {}).status_code == 400
    assert AuditEntry.objects.filter(action="image.copy", outcome="refused").count() == 2


def test_an_alias_clash_is_refused_and_says_where_the_alias_points(admin_client, unix_host, small_image, lab):
    fingerprint, _ = small_image
    busybox = lab.d1.admin().resolve_image("busybox")
    response = admin_client.post(f"/hosts/lab1/images/{fingerprint}/aliases/", {"add": "busybox"})
    assert response.status_code == 409
    assert (
        f"The alias busybox is taken on lab1: it points to image {busybox[:12]}" in response.content.decode()
    )
    assert lab.d1.admin().resolve_image("busybox") == busybox
    assert AuditEntry.objects.get(action="image.alias.add").outcome == "failed"
    # a bad alias never reaches LXD; a free one is added, and removed
    assert admin_client.post(f"/hosts/lab1/images/{fingerprint}/aliases/", {"add": ".."}).status_code == 400
    assert (
        admin_client.post(f"/hosts/lab1/images/{fingerprint}/aliases/", {"add": "t-extra"}).status_code == 302
    )
    assert lab.d1.admin().alias_target("t-extra") == fingerprint
    assert (
        admin_client.post(f"/hosts/lab1/images/{fingerprint}/aliases/", {"remove": "t-extra"}).status_code
        == 302
    )
    assert lab.d1.admin().alias_target("t-extra") is None


def test_properties_and_auto_update_are_saved_whole_and_a_stale_page_is_refused(
    admin_client, unix_host, small_image, lab
):
    fingerprint, _ = small_image
    page = admin_client.get(f"/hosts/lab1/images/{fingerprint}/").content.decode()
    etag = html.unescape(page.split('name="etag" value="', 1)[1].split('"', 1)[0])
    data = {
        "etag": etag,
        "properties": "os = busybox\ndescription = renamed",
        "auto_update": "on",
        "public_shown": "1",
    }
    assert admin_client.post(f"/hosts/lab1/images/{fingerprint}/edit/", data).status_code == 302
    image = lab.d1.admin().image(fingerprint)
    assert image["properties"] == {"os": "busybox", "description": "renamed"}
    assert image["auto_update"] is True and image["public"] is False and image["profiles"] == ["default"]
    stale = admin_client.post(f"/hosts/lab1/images/{fingerprint}/edit/", {**data, "properties": "os = other"})
    assert stale.status_code == 409 and "changed on the host" in stale.content.decode()
    assert lab.d1.admin().image(fingerprint)["properties"]["os"] == "busybox"


def test_operators_copy_and_edit_but_neither_delete_nor_publish(user_client, unix_host, small_image, lab):
    fingerprint, _ = small_image
    operator = user_client("operator")
    assert operator.post(f"/hosts/lab1/images/{fingerprint}/delete/", {"confirm": "yes"}).status_code == 403
    published = operator.post(
        f"/hosts/lab1/images/{fingerprint}/edit/", {"properties": "os = busybox", "public": "on"}
    )
    assert published.status_code == 403 and "admin role" in published.content.decode()
    image = lab.d1.admin().image(fingerprint)
    assert image["public"] is False and image["properties"]["os"] == "busybox"
    assert (
        operator.post(f"/hosts/lab1/images/{fingerprint}/edit/", {"properties": "os = edited"}).status_code
        == 302
    )
    assert lab.d1.admin().image(fingerprint)["properties"] == {"os": "edited"}
    viewer = user_client("viewer")
    assert viewer.post(f"/hosts/lab1/images/{fingerprint}/copy/", {"target": ["lab1"]}).status_code == 403
    assert viewer.get(f"/hosts/lab1/images/{fingerprint}/").status_code == 200


def test_deleting_an_image_an_instance_was_made_from_is_allowed_and_said(
    admin_client, unix_host, lab, tmp_path
):
    path = build_image(tmp_path / "made-from.tar", lab.env["LAB_DIR"])
    fingerprint = sha256_of(path)
    name = "img-from-" + uuid.uuid4().hex[:6]
    lab.d1.lxc("image", "import", str(path))
    try:
        lab.d1.lxc("init", fingerprint, name)
        confirm = admin_client.get(f"/hosts/lab1/images/{fingerprint}/delete/").content.decode()
        assert (
            f"1 instance on lab1 was created from it: {name}" in confirm
            and "LXD allows the deletion" in confirm
        )
        response = admin_client.post(
            f"/hosts/lab1/images/{fingerprint}/delete/", {"confirm": "yes"}, follow=True
        )
        assert f"made from it ({name}) keep running: LXD allows this" in response.content.decode()
        assert not lab.d1.admin().has_image(fingerprint)
        assert lab.d1.admin().instance(name)["config"]["volatile.base_image"] == fingerprint  # untouched
        assert AuditEntry.objects.get(action="image.delete").outcome == "ok"
    finally:
        lab.d1.lxc("delete", "--force", name, check=False)
        forget_image(lab.d1, fingerprint)


def test_an_export_streams_the_image_as_lxd_keeps_it(admin_client, unix_host, small_image, lab, tmp_path):
    fingerprint, _ = small_image
    response = admin_client.get(f"/hosts/lab1/images/{fingerprint}/export/")
    assert response.status_code == 200 and response.streaming
    data = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(data)
    assert f"{fingerprint}.tar" in response["Content-Disposition"]
    assert hashlib.sha256(data).hexdigest() == fingerprint


def test_a_split_image_exports_as_its_two_files(admin_client, unix_host, lab, tmp_path):
    metadata, rootfs = build_split_image(tmp_path, lab.env["LAB_DIR"])
    fingerprint = sha256_of(metadata, rootfs)
    lab.d1.lxc("image", "import", str(metadata), str(rootfs))
    try:
        choice = admin_client.get(f"/hosts/lab1/images/{fingerprint}/export/").content.decode()
        assert "This is a split image" in choice and "?part=rootfs" in choice
        parts = {}
        for part in ("metadata", "rootfs"):
            response = admin_client.get(f"/hosts/lab1/images/{fingerprint}/export/?part={part}")
            assert response.status_code == 200
            parts[part] = b"".join(response.streaming_content)
        assert parts["metadata"] == metadata.read_bytes() and parts["rootfs"] == rootfs.read_bytes()
        with tarfile.open(fileobj=io.BytesIO(parts["metadata"])) as tar:
            assert tar.getnames() == ["metadata.yaml"]
        assert admin_client.get(f"/hosts/lab1/images/{fingerprint}/export/?part=other").status_code == 400
    finally:
        forget_image(lab.d1, fingerprint)


def test_a_bad_fingerprint_in_a_url_never_reaches_lxd(admin_client, unix_host):
    for bad in ("..", "ABC", "0" * 63, "x" * 64):
        response = admin_client.get(f"/hosts/lab1/images/{bad}/")
        assert response.status_code == 400 and "is not a valid image fingerprint" in response.content.decode()


def test_a_host_that_cannot_be_reached_is_named_and_the_others_listed(admin_client, unix_host, lab):
    from hosts.models import Host

    Host.objects.create(name="nowhere", endpoint="/nonexistent/unix.socket")
    response = admin_client.get("/images/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "nowhere: nowhere is unreachable: socket not found" in body
    assert f'id="image-{lab.d1.admin().resolve_image("busybox")}"' in body
