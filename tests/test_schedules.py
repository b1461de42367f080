"""Scheduled backups on the real lab daemons, driven by a fake clock (`now` passed to the
scheduler's tick): due slots, a missed run run once, one backup per instance per minute,
the lease, retention on the host, the task log rows."""

from __future__ import annotations

import datetime as dt

import pytest

from hosts.domain.schedules import acquire_lease, tick
from hosts.models import BackupRecord, BackupSchedule, Task
from tests.move_helpers import made_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.fixture
def backup_dir(settings, tmp_path):
    settings.DASHBOARD_BACKUP_DIR = tmp_path / "backups"
    return tmp_path / "backups"


def schedule(name: str, pattern: str, cron: str = "0 2 * * *", **fields) -> BackupSchedule:
    return BackupSchedule.objects.create(
        name=name,
        host_name="lab1",
        name_pattern=pattern,
        cron=cron,
        created_at=at("2026-03-01 00:00"),
        **fields,
    )


def lxd_backups(daemon, name):
    return [b["name"] for b in daemon.admin().backups(name)]


def test_a_schedule_runs_its_slot_once_and_a_missed_slot_once_on_return(unix_host, lab, made, backup_dir):
    name, _ = made.make(lab.d1)
    nightly = schedule("nightly", name, keep_last=5)
    assert tick("p1", at("2026-03-01 01:59")) == []  # before the first slot
    [report] = tick("p1", at("2026-03-01 02:00:30"))
    assert [r.instance for r in report.made] == [name] and report.errors == []
    assert tick("p1", at("2026-03-01 02:05")) == []  # that slot has run
    # "down" for three nights: on return, the latest slot runs once, not three times
    [report] = tick("p1", at("2026-03-04 09:00"))
    assert report.slot == at("2026-03-04 02:00") and len(report.made) == 1
    assert tick("p1", at("2026-03-04 09:01")) == []
    assert lxd_backups(lab.d1, name) == [
        f"auto-{nightly.pk}-20260301-0200",
        f"auto-{nightly.pk}-20260304-0200",
    ]
    tasks = Task.objects.filter(op_class="backup", targets__contains=f" instance:{name} ").order_by(
        "started_at"
    )
    assert [t.status for t in tasks] == ["success", "success"]
    assert tasks[0].description == "Scheduled backup (nightly)"
    assert tasks[0].progress.endswith("kept on the host") and " in " in tasks[0].progress  # size and duration
    assert tasks[0].ended_at is not None


def test_two_schedules_matching_one_instance_at_the_same_minute_make_one_backup(
    unix_host, lab, made, backup_dir
):
    name, _ = made.make(lab.d1)
    schedule("a-first", name, cron="*/5 * * * *")
    schedule("b-second", f"{name[:4]}*", cron="0 * * * *")
    reports = tick("p1", at("2026-03-02 10:00"))
    assert sorted(len(r.made) for r in reports) == [0, 1]
    skipped = [s for r in reports for s in r.skipped]
    assert skipped == [f"lab1/{name}: already backed up at 2026-03-02 10:00 by schedule a-first"]
    assert len(lxd_backups(lab.d1, name)) == 1
    assert BackupRecord.objects.filter(instance=name).count() == 1


def test_only_the_lease_holder_runs_schedules(unix_host, lab, made, backup_dir):
    name, _ = made.make(lab.d1)
    schedule("leased", name)
    assert acquire_lease("p1", at("2026-03-01 02:00"))
    assert tick("p2", at("2026-03-01 02:01")) == []  # another process: not while p1 holds it
    assert lxd_backups(lab.d1, name) == []
    # p1 stopped without releasing: after the lease expires, p2 takes over and runs the slot
    [report] = tick("p2", at("2026-03-01 02:06"))
    assert len(report.made) == 1


def test_retention_prunes_on_the_host_and_in_the_backup_directory(unix_host, lab, made, backup_dir):
    name, _ = made.make(lab.d1)
    keep = schedule("keep2", name, keep_last=2, where=BackupSchedule.Where.BOTH, compression="none")
    for night in ("2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"):
        tick("p1", at(f"{night} 02:00"))
    expected = [f"auto-{keep.pk}-20260303-0200", f"auto-{keep.pk}-20260304-0200"]
    assert lxd_backups(lab.d1, name) == expected
    records = BackupRecord.objects.filter(schedule=keep).order_by("created_at")
    assert [r.name for r in records] == expected
    assert sorted(p.name for p in backup_dir.rglob("*.tar")) == [f"{n}.tar" for n in expected]
    assert Task.objects.filter(op_class="backup", status="success").count() == 4  # one row per run


def test_a_failed_scheduled_backup_is_a_failed_task_with_the_reason(unix_host, lab, made, backup_dir):
    name, _ = made.make(lab.d1)
    backup_dir.mkdir(mode=0o755)
    backup_dir.chmod(0o755)  # open to others: the export is refused
    sched = schedule("open-dir", name, where=BackupSchedule.Where.DIR)
    [report] = tick("p1", at("2026-03-01 02:00"))
    assert report.made == [] and "chmod 700" in report.errors[0]
    task = Task.objects.get(op_class="backup")
    assert task.status == "failure" and "is open to other users" in task.error
    sched.refresh_from_db()
    assert "is open to other users" in sched.last_error
    assert lxd_backups(lab.d1, name) == []
