"""A host's storage on the real lab daemons (lab1 = d1 over its unix socket, `dir` pools)."""

from __future__ import annotations

import html
import secrets
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from hosts.models import AuditEntry
from tests.support import new_name

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client, django_user_model):
    user = django_user_model.objects.create_user("st-operator", password="a-long-password-1")
    user.groups.add(Group.objects.get(name="operator"))
    client.force_login(user)
    return client


@pytest.fixture
def volume_name(lab):
    """A free custom volume name in d1's default pool, removed afterwards (with what uses it)."""
    name = "vol-" + secrets.token_hex(3)
    yield name
    for instance in lab.d1.admin().instances():
        for device, spec in (instance.get("devices") or {}).items():
            if spec.get("source") in (name, name + "-copy"):
                lab.d1.lxc("config", "device", "remove", instance["name"], device, check=False)
    for volume in (name, name + "-copy"):
        lab.d1.lxc("storage", "volume", "delete", "default", volume, check=False)


@pytest.fixture
def running(lab):
    name = new_name("st")
    lab.d1.lxc("launch", "busybox", name)
    yield name
    lab.d1.lxc("delete", "--force", name, check=False)


def volume_dir(lab, name: str) -> Path:
    """Where a dir pool keeps a custom volume (what the tests read, not the dashboard)."""
    return Path(lab.d1.lxd_dir) / "storage-pools" / "default" / "custom" / f"default_{name}"


def mounts(lab, instance: str) -> str:
    return lab.d1.lxc("exec", instance, "--", "mount").stdout


def test_pools_show_driver_source_usage_and_users(admin_client, unix_host, lab):
    page = admin_client.get("/hosts/lab1/storage/").content.decode()
    row = page.split('id="pool-default"', 1)[1].split("</tr>", 1)[0]
    space = lab.d1.admin().pool_resources("default")["space"]
    percent = round(100 * space["used"] / space["total"])
    assert "<td>dir</td>" in row and f"{lab.d1.lxd_dir}/storage-pools/default" in row
    assert f'aria-valuenow="{percent}"' in row and "profile default" in row
    assert "the file system the pool" in row


def test_a_custom_volume_is_created_once_and_a_clash_is_a_409(operator_client, unix_host, lab, volume_name):
    created = operator_client.post("/hosts/lab1/storage/default/", {"name": volume_name, "size": "10MiB"})
    assert created.status_code == 302
    assert lab.d1.admin().volume("default", volume_name)["config"] == {"size": "10MiB"}
    pools = operator_client.get("/hosts/lab1/storage/").content.decode()
    assert f"volume default/{volume_name}" in pools.split('id="pool-default"', 1)[1].split("</tr>", 1)[0]
    clash = operator_client.post("/hosts/lab1/storage/default/", {"name": volume_name})
    assert clash.status_code == 409 and "Volume by that name already exists" in clash.content.decode()
    for bad in ("..", "a b", "a/b"):
        refused = operator_client.post("/hosts/lab1/storage/default/", {"name": bad})
        assert refused.status_code == 400 and "is not a valid storage volume name" in html.unescape(
            refused.content.decode()
        )
    bad_size = operator_client.post(
        "/hosts/lab1/storage/default/", {"name": volume_name + "x", "size": "lots"}
    )
    assert bad_size.status_code == 400 and "is not a size" in html.unescape(bad_size.content.decode())
    outcomes = sorted(AuditEntry.objects.filter(action="volume.create").values_list("outcome", flat=True))
    assert outcomes == ["failed", "ok", "refused", "refused", "refused", "refused"]


def test_attach_mounts_the_volume_in_a_running_instance_and_detach_removes_it(
    operator_client, unix_host, lab, volume_name, running
):
    lab.d1.lxc("storage", "volume", "create", "default", volume_name)
    url = f"/hosts/lab1/storage/default/volumes/{volume_name}/"
    attached = operator_client.post(url + "attach/", {"instance": running, "path": "/mnt/data"}, follow=True)
    assert (
        f"Attached default/{volume_name} to {running} at /mnt/data (live: it is running)."
        in attached.content.decode()
    )
    assert " on /mnt/data " in mounts(lab, running)
    device = lab.d1.admin().instance(running)["devices"][volume_name]
    assert device == {"type": "disk", "pool": "default", "source": volume_name, "path": "/mnt/data"}
    page = operator_client.get(url).content.decode()
    assert f'data-detach="{running}"' in page and "<code>/mnt/data</code>" in page
    taken = operator_client.post(url + "attach/", {"instance": running, "path": "/mnt/again"})
    assert taken.status_code == 409 and f"already has a device named {volume_name}" in taken.content.decode()
    assert (
        operator_client.post(url + "detach/", {"instance": running, "device": volume_name}).status_code == 302
    )
    assert volume_name not in lab.d1.admin().instance(running)["devices"]
    assert " on /mnt/data " not in mounts(lab, running)
    wrong = operator_client.post(url + "detach/", {"instance": running, "device": "root"})
    assert wrong.status_code == 404 and "has no device root for volume" in wrong.content.decode()


def test_an_attach_a_running_instance_cannot_mount_is_refused_and_nothing_changes(
    operator_client, unix_host, lab, volume_name, running
):
    lab.d1.lxc("storage", "volume", "create", "default", volume_name)
    url = f"/hosts/lab1/storage/default/volumes/{volume_name}/attach/"
    # /bin/sh is a symbolic link to busybox: LXD cannot make a mount point under it
    response = operator_client.post(url, {"instance": running, "path": "/bin/sh/data"})
    body = response.content.decode()
    assert 400 <= response.status_code < 500, (response.status_code, body[:500])
    assert f"{running} is running and LXD could not attach it live" in body
    assert "Failed to start device" in body and "The device was not added; nothing changed." in body
    assert volume_name not in lab.d1.admin().instance(running)["devices"]
    assert AuditEntry.objects.get(action="volume.attach").outcome == "failed"


def test_resizing_a_dir_volume_below_what_it_holds_is_accepted_and_the_page_says_why(
    operator_client, unix_host, lab, volume_name
):
    lab.d1.lxc("storage", "volume", "create", "default", volume_name, "size=64MiB")
    (volume_dir(lab, volume_name) / "data").write_bytes(b"x" * (5 * 1024 * 1024))
    url = f"/hosts/lab1/storage/default/volumes/{volume_name}/"
    response = operator_client.post(url + "resize/", {"size": "1MiB"}, follow=True)
    body = response.content.decode()
    assert f"Volume {volume_name} set to 1MiB." in body
    assert "The dir driver neither enforces a volume&#x27;s size nor reports what a volume uses" in body
    assert lab.d1.admin().volume("default", volume_name)["config"]["size"] == "1MiB"
    assert (
        volume_dir(lab, volume_name) / "data"
    ).stat().st_size == 5 * 1024 * 1024  # nothing changed on disk
    assert "not reported by the dir driver" in body  # its usage: LXD answers "Not supported"


def test_a_volume_in_use_is_not_deleted_and_lxd_says_why(
    operator_client, unix_host, lab, volume_name, running
):
    lab.d1.lxc("storage", "volume", "create", "default", volume_name)
    lab.d1.lxc("storage", "volume", "attach", "default", volume_name, running, "/mnt/v")
    url = f"/hosts/lab1/storage/default/volumes/{volume_name}/delete/"
    response = operator_client.post(url, {"confirm": "yes"})
    assert response.status_code == 409
    assert f"The storage volume is still in use. The volume {volume_name} is used by instance {running}" in (
        response.content.decode()
    )
    assert lab.d1.admin().volume("default", volume_name)["name"] == volume_name


def test_volume_snapshots_are_taken_restored_and_deleted(operator_client, unix_host, lab, volume_name):
    lab.d1.lxc("storage", "volume", "create", "default", volume_name)
    data = volume_dir(lab, volume_name) / "f"
    data.write_text("before")
    url = f"/hosts/lab1/storage/default/volumes/{volume_name}/"
    assert operator_client.post(url + "snapshots/", {"name": "s1"}).status_code == 302
    assert operator_client.post(url + "snapshots/", {"name": "s1"}).status_code == 409
    data.write_text("after")
    assert operator_client.post(url + "snapshots/s1/restore/").status_code == 302
    assert data.read_text() == "before"
    assert operator_client.post(url + "snapshots/s1/delete/").status_code == 302
    assert lab.d1.admin().volume_snapshots("default", volume_name) == []
    actions = set(AuditEntry.objects.filter(outcome="ok").values_list("action", flat=True))
    assert {"volume.snapshot.create", "volume.snapshot.restore", "volume.snapshot.delete"} <= actions


def test_a_volume_copy_holds_the_same_data(operator_client, unix_host, lab, volume_name):
    lab.d1.lxc("storage", "volume", "create", "default", volume_name)
    (volume_dir(lab, volume_name) / "f").write_text("copied")
    url = f"/hosts/lab1/storage/default/volumes/{volume_name}/copy/"
    assert operator_client.post(url, {"new_name": volume_name + "-copy"}).status_code == 302
    assert (volume_dir(lab, volume_name + "-copy") / "f").read_text() == "copied"


def test_deleting_a_pool_in_use_shows_lxds_reason_and_its_users(admin_client, unix_host, lab):
    response = admin_client.post("/hosts/lab1/storage/default/delete/", {"confirm": "yes"})
    assert response.status_code == 409
    page = response.content.decode()
    # LXD's reason, then its users as the dashboard lists them (instances other tests keep may
    # come first: only the profile's place in the list is fixed).
    assert "The storage pool is currently in use. The pool default is used by " in page
    assert "profile default" in page.split("The pool default is used by ", 1)[1].split("</", 1)[0]
    assert lab.d1.admin().storage_pool("default")["name"] == "default"


def test_pools_are_for_admins_to_create_and_delete(operator_client, unix_host, lab):
    assert operator_client.post("/hosts/lab1/storage/", {"name": "p-op", "driver": "dir"}).status_code == 403
    assert operator_client.post("/hosts/lab1/storage/default/delete/", {"confirm": "yes"}).status_code == 403
    assert "p-op" not in {p["name"] for p in lab.d1.admin().storage_pools()}


def test_an_admin_creates_and_deletes_a_dir_pool(admin_client, unix_host, lab):
    name = "p-" + secrets.token_hex(3)
    try:
        assert admin_client.post("/hosts/lab1/storage/", {"name": name, "driver": "dir"}).status_code == 302
        assert lab.d1.admin().storage_pool(name)["driver"] == "dir"
        refused = admin_client.post("/hosts/lab1/storage/", {"name": name + "x", "driver": "zfs"})
        assert refused.status_code == 400 and "creates dir pools only" in refused.content.decode()
        relative = admin_client.post("/hosts/lab1/storage/", {"name": name + "x", "source": "srv/pool"})
        assert relative.status_code == 400 and "absolute directory" in relative.content.decode()
        assert admin_client.post(f"/hosts/lab1/storage/{name}/delete/", {"confirm": "yes"}).status_code == 302
        assert name not in {p["name"] for p in lab.d1.admin().storage_pools()}
    finally:
        lab.d1.lxc("storage", "delete", name, check=False)
