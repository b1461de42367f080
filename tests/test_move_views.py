"""The copy/move and backup pages through Django's test client, on the real lab daemons."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group

from hosts.models import AuditEntry, BackupRecord, BackupSchedule, Task
from tests.move_helpers import describe, made_fixture, marker_of  # noqa: F401 (fixture)
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def wait_task(**filters) -> Task:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        task = Task.objects.filter(**filters).order_by("-started_at").first()
        if task is not None and task.is_final:
            return task
        time.sleep(0.2)
    raise AssertionError(f"no finished task {filters}")


@pytest.fixture
def viewer_client(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password=PASSWORD)
    client.force_login(user)
    return client


@pytest.fixture
def operator_client(client, django_user_model):
    user = django_user_model.objects.create_user("op", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    client.force_login(user)
    return client


def test_the_transfer_form_warns_about_a_running_instance_and_moves_it(
    admin_client, unix_host, https_host, lab, made
):
    name, marker = made.make(lab.d1, running=True, snapshots=1)
    page = admin_client.get(f"/hosts/lab1/instances/{name}/transfer/")
    assert page.status_code == 200 and 'id="transfer-running"' in page.content.decode()
    data = {"action": "move", "target": "lab2", "mode": "pull"}
    refused = admin_client.post(f"/hosts/lab1/instances/{name}/transfer/", data)
    assert refused.status_code == 409 and "is running" in refused.content.decode()
    done = admin_client.post(f"/hosts/lab1/instances/{name}/transfer/", {**data, "stop_running": "on"})
    assert done.status_code == 302 and done["Location"] == f"/tasks/?instance={name}"
    task = wait_task(op_class="transfer", targets__contains=f" instance:{name} ")
    assert task.status == "success", task.error
    assert task.progress == "now on lab2"
    assert describe(lab.d1, name) is None and describe(lab.d2, name)["status"] == "Running"
    assert marker_of(lab.d2, name) == marker
    listing = admin_client.get(f"/tasks/?instance={name}").content.decode()
    assert f"Move {name} from lab1 to lab2" in listing and "now on lab2" in listing


def test_a_missing_profile_comes_back_with_the_targets_profiles_to_pick(
    admin_client, unix_host, https_host, lab, made
):
    name, _ = made.make(lab.d1)
    lab.d1.lxc("profile", "create", "mv-views-only", check=False)
    try:
        lab.d1.lxc("profile", "add", name, "mv-views-only")
        url = f"/hosts/lab1/instances/{name}/transfer/"
        page = admin_client.post(url, {"action": "copy", "target": "lab2", "mode": "pull"})
        html = page.content.decode()
        assert page.status_code == 409
        assert "lab2 has no profile mv-views-only" in html
        assert 'id="profile-mapping"' in html and 'name="profiles_pick" value="default"' in html
        mapped = {"action": "copy", "target": "lab2", "mode": "pull", "profiles_mapped": "1"}
        done = admin_client.post(url, {**mapped, "profiles_pick": ["default"]})
        assert done.status_code == 302
        assert wait_task(op_class="transfer", targets__contains=f" instance:{name} ").status == "success"
        assert describe(lab.d2, name)["profiles"] == ["default"]
    finally:
        lab.d1.lxc("delete", "--force", name, check=False)
        lab.d1.lxc("profile", "delete", "mv-views-only", check=False)


def test_a_viewer_can_neither_move_nor_download_nor_schedule(viewer_client, unix_host, https_host, lab, made):
    name, _ = made.make(lab.d1)
    assert (
        viewer_client.post(f"/hosts/lab1/instances/{name}/transfer/", {"target": "lab2"}).status_code == 403
    )
    assert (
        viewer_client.post("/instances/bulk/move/", {"sel": f"lab1/{name}", "target": "lab2"}).status_code
        == 403
    )
    assert viewer_client.get(f"/hosts/lab1/instances/{name}/backups/x/download/").status_code == 403
    assert viewer_client.post("/backups/schedules/new/", {"name": "x"}).status_code == 403
    assert viewer_client.get(f"/hosts/lab1/instances/{name}/backups/").status_code == 200
    assert describe(lab.d2, name) is None
    assert AuditEntry.objects.filter(outcome="refused").count() == 3  # the three writes


def test_bulk_move_moves_each_selected_instance_and_reports_each_refusal(
    admin_client, unix_host, https_host, lab, made
):
    one, _ = made.make(lab.d1)
    two, _ = made.make(lab.d1)
    running, _ = made.make(lab.d1, running=True)
    data = {"sel": [f"lab1/{one}", f"lab1/{two}", f"lab1/{running}"], "target": "lab2", "parallel": "2"}
    page = admin_client.post("/instances/bulk/move/", data)
    html = page.content.decode()
    assert page.status_code == 200
    assert f"lab1/{running}: {running} is running" in html
    for name in (one, two):
        assert f"lab1/{name}: started" in html
        assert wait_task(op_class="transfer", targets__contains=f" instance:{name} ").status == "success"
        assert describe(lab.d1, name) is None and describe(lab.d2, name) is not None
    assert describe(lab.d1, running)["status"] == "Running"


def test_backups_page_makes_downloads_and_deletes_a_backup(
    admin_client, unix_host, lab, made, settings, tmp_path
):
    settings.DASHBOARD_BACKUP_DIR = tmp_path / "backups"
    name, _ = made.make(lab.d1)
    made_it = admin_client.post(
        f"/hosts/lab1/instances/{name}/backups/create/",
        {"name": "b1", "compression": "gzip", "where": "both"},
    )
    assert made_it.status_code == 302
    task = wait_task(op_class="backup", targets__contains=f" instance:{name} ")
    assert task.status == "success" and task.progress.startswith("b1: ")
    page = admin_client.get(f"/hosts/lab1/instances/{name}/backups/").content.decode()
    assert 'id="backup-b1"' in page
    download = admin_client.get(f"/hosts/lab1/instances/{name}/backups/b1/download/")
    body = b"".join(download.streaming_content)
    assert download.status_code == 200 and body[:2] == b"\x1f\x8b"
    assert int(download["Content-Length"]) == len(body)
    record = BackupRecord.objects.get(instance=name)
    stored = admin_client.get(f"/backups/files/{record.pk}/download/")
    assert b"".join(stored.streaming_content)[:2] == b"\x1f\x8b"
    gone = admin_client.post(f"/hosts/lab1/instances/{name}/backups/b1/delete/")
    assert gone.status_code == 302 and lab.d1.admin().backups(name) == []


def test_an_operator_may_back_up_but_not_download(operator_client, unix_host, lab, made):
    name, _ = made.make(lab.d1)
    assert (
        operator_client.post(
            f"/hosts/lab1/instances/{name}/backups/create/",
            {"name": "op", "compression": "gzip", "where": "host"},
        ).status_code
        == 302
    )
    assert wait_task(op_class="backup").status == "success"
    assert operator_client.get(f"/hosts/lab1/instances/{name}/backups/op/download/").status_code == 403


def test_schedule_form_refuses_a_bad_cron_and_saves_a_good_one(admin_client, unix_host):
    data = {"name": "nightly", "enabled": "on", "cron": "61 2 * * *", "keep_last": "7", "keep_daily": "0"}
    data.update({"keep_weekly": "0", "keep_monthly": "0", "where": "host", "compression": "gzip"})
    refused = admin_client.post("/backups/schedules/new/", data)
    assert refused.status_code == 400 and "outside 0-59 in the minute field" in refused.content.decode()
    assert admin_client.post("/backups/schedules/new/", {**data, "cron": "30 2 * * *"}).status_code == 302
    assert BackupSchedule.objects.get().cron == "30 2 * * *"
    home = admin_client.get("/backups/").content.decode()
    assert "nightly" in home and "30 2 * * *" in home


def test_the_stale_page_lists_instances_without_a_recent_backup(admin_client, unix_host, lab, made):
    name, _ = made.make(lab.d1)
    page = admin_client.get("/backups/stale/").content.decode()
    assert f'id="stale-lab1-{name}"' in page
