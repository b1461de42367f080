"""Copy, move and backups (issue 16) of an instance in a project other than `default`: each
stays in (or goes to) the instance's project, never the default project's namesake."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hosts.domain.schedules import tick
from hosts.models import BackupRecord, BackupSchedule
from tests.config_helpers import made_fixture  # noqa: F401 (fixture)
from tests.test_move_views import wait_task
from tests.test_projects import shared_project, twin

pytestmark = pytest.mark.django_db(transaction=True)


def exists(daemon, name: str, project: str) -> bool:
    return daemon.lxc("query", f"/1.0/instances/{name}?project={project}", check=False).returncode == 0


def test_a_copy_and_a_backup_stay_in_the_instance_project(admin_client, unix_host, lab, instances, made):
    project = shared_project(made, lab.d1)
    name = instances.make(lab.d1, running=False)
    twin(lab.d1, name, project)
    base = f"/hosts/lab1/instances/{name}"
    instances.track(lab.d1, f"{name}-c")  # removed should it land in the default project

    copied = admin_client.post(
        f"{base}/transfer/?project={project}",
        {"action": "copy", "target": "lab1", "target_name": f"{name}-c", "mode": "pull"},
    )
    assert copied.status_code == 302, copied.content.decode()
    task = wait_task(op_class="transfer", targets__contains=f" instance:{name}-c ")
    assert task.status == "success", task.error
    assert exists(lab.d1, f"{name}-c", project) and not exists(lab.d1, f"{name}-c", "default")

    backed_up = admin_client.post(
        f"{base}/backups/create/?project={project}", {"name": "pb1", "compression": "gzip", "where": "both"}
    )
    assert backed_up.status_code == 302
    task = wait_task(op_class="backup", targets__contains=f" instance:{name} ")
    assert task.status == "success", task.error
    assert BackupRecord.objects.get(instance=name, name="pb1").project == project
    on_host = json.loads(lab.d1.lxc("query", f"/1.0/instances/{name}/backups?project={project}").stdout)
    assert [b.rsplit("/", 1)[-1].split("?")[0] for b in on_host] == ["pb1"]
    assert json.loads(lab.d1.lxc("query", f"/1.0/instances/{name}/backups").stdout) == []
    page = admin_client.get(f"{base}/backups/?project={project}").content.decode()
    assert 'id="backup-pb1"' in page and f"{base}/backups/pb1/delete/?project={project}" in page

    # the export restores into the project it was made in
    record = BackupRecord.objects.get(instance=name, name="pb1")
    instances.track(lab.d1, f"{name}-r")  # removed should it land in the default project
    restored = admin_client.post(
        "/backups/restore/", {"record": record.pk, "host": "lab1", "name": f"{name}-r"}
    )
    assert restored.status_code == 302, restored.content.decode()
    task = wait_task(op_class="backup", targets__contains=f" instance:{name}-r ")
    assert task.status == "success", task.error
    assert exists(lab.d1, f"{name}-r", project) and not exists(lab.d1, f"{name}-r", "default")


def test_a_bulk_move_takes_the_project_from_the_selection(admin_client, unix_host, https_host, lab, made):
    project = shared_project(made, lab.d1)
    made.project(lab.d2, project, "features.images=false", "features.profiles=false")
    name = made.name("prj-mv")
    lab.d1.lxc("init", "busybox", name, "--project", project)
    answer = admin_client.post(
        "/instances/bulk/move/", {"sel": f"lab1/{project}/{name}", "target": "lab2", "mode": "pull"}
    )
    assert answer.status_code == 200 and "started" in answer.content.decode(), answer.content.decode()
    task = wait_task(op_class="transfer", targets__contains=f" instance:{name} ")
    assert task.status == "success", task.error
    assert exists(lab.d2, name, project) and not exists(lab.d1, name, project)
    assert not exists(lab.d2, name, "default")


def test_a_schedule_picks_instances_by_project_and_the_stale_list_names_it(
    admin_client, unix_host, lab, instances, made, settings, tmp_path
):
    settings.DASHBOARD_BACKUP_DIR = tmp_path / "backups"
    project = shared_project(made, lab.d1)
    name = instances.make(lab.d1, running=False)
    twin(lab.d1, name, project)
    common = {
        "host_name": "lab1",
        "name_pattern": name,
        "cron": "0 2 * * *",
        "created_at": at("2026-03-01 00:00"),
    }
    BackupSchedule.objects.create(name="in-project", project=project, **common)
    [report] = tick("p1", at("2026-03-01 02:00:30"))
    assert [(r.project, r.instance) for r in report.made] == [(project, name)] and report.errors == []
    assert len(backups(lab.d1, name, project)) == 1 and backups(lab.d1, name, "default") == []

    stale = admin_client.get("/backups/stale/?hours=1").content.decode()
    default_row = stale.split(f'id="stale-lab1-{name}"', 1)[1].split("</tr>", 1)[0]
    assert "<td>default</td>" in default_row  # never backed up
    project_row = stale.split(f'id="stale-lab1-{project}-{name}"', 1)[1].split("</tr>", 1)[0]
    assert f"<td>{project}</td>" in project_row and f"?project={project}" in project_row


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def backups(daemon, name: str, project: str) -> list:
    return json.loads(daemon.lxc("query", f"/1.0/instances/{name}/backups?project={project}").stdout)


def test_a_copy_to_a_host_without_the_project_is_refused_before_anything_moves(
    admin_client, unix_host, https_host, lab, made
):
    project = shared_project(made, lab.d1)
    name = made.name("prj-cp")
    lab.d1.lxc("init", "busybox", name, "--project", project)
    refused = admin_client.post(
        f"/hosts/lab1/instances/{name}/transfer/?project={project}",
        {"action": "copy", "target": "lab2", "mode": "pull"},
    )
    assert refused.status_code == 404
    assert f"lab2 has no project {project}" in refused.content.decode()
    assert not exists(lab.d2, name, "default")
