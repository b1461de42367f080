"""Snapshots through Django's test client, against a container on the real lab daemon."""

import pytest
from django.urls import reverse

from hosts.models import AuditEntry
from tests.support import an_instance, pull, push

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def running(lab):
    with an_instance(lab.d1) as name:
        yield name


def names(lab, instance) -> list[str]:
    return [s["name"] for s in lab.d1.admin().snapshots(instance)]


def url(view, host, instance, *args):
    return reverse(view, args=[host.name, instance, *args])


@pytest.fixture(autouse=True)
def no_snapshots(lab, running):
    yield
    admin = lab.d1.admin()
    for name in names(lab, running):
        admin.wait(admin.delete_snapshot(running, name))


def test_seed_snapshot_my_snapshot_and_see_its_details(admin_client, unix_host, running, lab):
    response = admin_client.post(url("instance-snapshots", unix_host, running), {"name": "my-snapshot"})
    assert response.status_code == 302
    assert names(lab, running) == ["my-snapshot"]
    listing = admin_client.get(url("instance-snapshots", unix_host, running))
    assert "Created snapshot my-snapshot" in listing.content.decode()  # the outcome, shown after the redirect
    detail = admin_client.get(url("instance-snapshot", unix_host, running, "my-snapshot"))
    assert detail.status_code == 200
    html = detail.content.decode()
    assert detail.context["snap"]["created_at"] is not None and detail.context["snap"]["stateful"] is False
    assert "image.os = busybox" in html  # expanded config
    assert dict(detail.context["devices"])["root"] == [("path", "/"), ("pool", "default"), ("type", "disk")]
    entry = AuditEntry.objects.get(action="snapshot.create", outcome="ok")
    assert entry.target == f"{running}/my-snapshot" and entry.operation_id


def test_create_with_an_automatic_name(admin_client, unix_host, running, lab):
    response = admin_client.post(
        url("instance-snapshots", unix_host, running), {"name": ""}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    made = names(lab, running)
    assert len(made) == 1 and f"Created snapshot {made[0]} of {running}" in response.content.decode()
    assert 'id="snapshots-lab1-' in response.content.decode()  # htmx gets the panel, not a page
    assert "<html" not in response.content.decode()


def test_a_snapshot_name_already_taken(admin_client, unix_host, running, lab):
    lab.d1.admin().wait(lab.d1.admin().create_snapshot(running, "taken"))
    again = admin_client.post(url("instance-snapshots", unix_host, running), {"name": "taken"})
    assert again.status_code == 409
    assert f"A snapshot named taken already exists on {running}" in again.content.decode()
    lab.d1.admin().wait(lab.d1.admin().create_snapshot(running, "other"))
    rename = admin_client.post(
        url("instance-snapshot-rename", unix_host, running, "other"), {"new_name": "taken"}
    )
    assert rename.status_code == 409 and "already exists" in rename.content.decode()
    assert sorted(names(lab, running)) == ["other", "taken"]


@pytest.mark.parametrize("bad", ["with space", "a/b"])
def test_bad_snapshot_names_are_refused(admin_client, unix_host, running, lab, bad):
    response = admin_client.post(url("instance-snapshots", unix_host, running), {"name": bad})
    assert response.status_code == 400 and "not a valid snapshot name" in response.content.decode()
    assert names(lab, running) == []


def test_rename(admin_client, unix_host, running, lab):
    lab.d1.admin().wait(lab.d1.admin().create_snapshot(running, "before"))
    response = admin_client.post(
        url("instance-snapshot-rename", unix_host, running, "before"),
        {"new_name": "after"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "Renamed snapshot before to after" in response.content.decode()
    assert names(lab, running) == ["after"]


def test_restore_asks_first_then_restores_and_says_what_lxd_did(admin_client, unix_host, running, lab):
    push(lab.d1, running, "/root/state", b"old")
    lab.d1.admin().wait(lab.d1.admin().create_snapshot(running, "s1"))
    push(lab.d1, running, "/root/state", b"new")
    restore = url("instance-snapshot-restore", unix_host, running, "s1")
    ask = admin_client.get(restore)
    assert ask.status_code == 200 and f"Restore snapshot s1 of {running}?" in ask.content.decode()
    assert admin_client.post(restore, {}).status_code == 200  # without confirm=yes: asks again
    assert pull(lab.d1, running, "/root/state") == b"new"
    done = admin_client.post(restore, {"confirm": "yes"}, HTTP_HX_REQUEST="true")
    assert done.status_code == 200
    text = done.content.decode()
    assert "Restored snapshot s1" in text
    assert f"LXD stopped {running}, restored it and started it again; it is now Running." in text
    assert pull(lab.d1, running, "/root/state") == b"old"


def test_restore_a_missing_snapshot_is_a_404(admin_client, unix_host, running):
    response = admin_client.post(
        url("instance-snapshot-restore", unix_host, running, "nope"), {"confirm": "yes"}
    )
    assert response.status_code == 404
    assert f"There is no snapshot nope of {running}." in response.content.decode()


def test_delete_asks_first(admin_client, unix_host, running, lab):
    lab.d1.admin().wait(lab.d1.admin().create_snapshot(running, "gone"))
    delete = url("instance-snapshot-delete", unix_host, running, "gone")
    assert "Delete snapshot gone" in admin_client.get(delete).content.decode()
    assert names(lab, running) == ["gone"]
    assert admin_client.post(delete, {"confirm": "yes"}).status_code == 302
    assert names(lab, running) == []


def test_viewers_see_snapshots_but_cannot_change_them(viewer_client, unix_host, running, lab):
    lab.d1.admin().wait(lab.d1.admin().create_snapshot(running, "keep"))
    page = viewer_client.get(url("instance-snapshots", unix_host, running))
    assert (
        page.status_code == 200
        and "keep" in page.content.decode()
        and "Restore…" not in page.content.decode()
    )
    assert viewer_client.post(url("instance-snapshots", unix_host, running), {"name": "v"}).status_code == 403
    assert (
        viewer_client.post(
            url("instance-snapshot-delete", unix_host, running, "keep"), {"confirm": "yes"}
        ).status_code
        == 403
    )
    assert names(lab, running) == ["keep"]


def test_snapshots_of_a_missing_instance(admin_client, unix_host):
    response = admin_client.get(url("instance-snapshots", unix_host, "fs-no-such-instance"))
    assert response.status_code == 404 and "Instance not found" in response.content.decode()


def test_a_failed_operation_shows_lxds_error_and_is_audited(admin_client, unix_host, running, lab):
    response = admin_client.post(
        url("instance-snapshots", unix_host, running),
        {"name": "st", "stateful": "on"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 409
    assert "stateful snapshot" in response.content.decode()  # LXD's own reason (no CRIU in the lab)
    assert names(lab, running) == []
    entry = AuditEntry.objects.get(action="snapshot.create")
    assert entry.outcome == "failed" and entry.operation_id and "stateful" in entry.error
