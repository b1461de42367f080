"""Backups on the real lab daemons: made, exported into the private backup directory, restored
on another host, refused when the input is not a backup, deleted everywhere."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import Group

from hosts.domain.backups import (
    BackupRefused,
    BackupSpec,
    delete_record,
    file_chunks,
    make_backup,
    restore,
    stored_path,
)
from hosts.domain.policy import PolicyRefused
from hosts.lxd.backups import NotABackup, PoolNotFound
from hosts.models import AuditEntry, BackupRecord
from tests.move_helpers import describe, made_fixture, marker_of  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backup_dir(settings, tmp_path):
    settings.DASHBOARD_BACKUP_DIR = tmp_path / "backups"
    return tmp_path / "backups"


def lxd_backups(daemon, name):
    return [b["name"] for b in daemon.admin().backups(name)]


def test_a_backup_exported_into_the_backup_directory_restores_on_another_host(
    admin_user, unix_host, https_host, lab, made, backup_dir
):
    name, marker = made.make(lab.d1, snapshots=2)
    record = make_backup(admin_user, unix_host, BackupSpec(name, "b1", export=True, keep_on_host=True))
    assert record.status == BackupRecord.Status.OK, record.error
    assert lxd_backups(lab.d1, name) == ["b1"] and record.on_host
    path = stored_path(record)
    assert path.is_file() and path.stat().st_size == record.size > 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700
    assert not list(backup_dir.rglob("*.part"))

    restored = made.name()
    instance = restore(admin_user, https_host, restored, file_chunks(path), path.stat().st_size)
    assert instance["status"] == "Stopped" and len(instance["snapshots"]) == 2
    assert marker_of(lab.d2, restored) == marker
    assert AuditEntry.objects.get(action="instance.restore").outcome == "ok"

    delete_record(admin_user, record)
    assert lxd_backups(lab.d1, name) == [] and not path.exists()
    assert not BackupRecord.objects.exists()


def test_a_backup_only_exported_leaves_nothing_on_the_host(admin_user, unix_host, lab, made, backup_dir):
    name, _ = made.make(lab.d1)
    record = make_backup(
        admin_user,
        unix_host,
        BackupSpec(name, "only-file", export=True, keep_on_host=False, compression="none"),
    )
    assert record.status == BackupRecord.Status.OK, record.error
    assert lxd_backups(lab.d1, name) == [] and not record.on_host
    assert record.file.endswith("/only-file.tar")
    with tarfile.open(stored_path(record)) as tar:
        assert "backup/index.yaml" in tar.getnames()


@contextmanager
def mounted(path, options: str):
    path.mkdir(mode=0o700, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode=0700,{options}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_an_unwritable_backup_directory_is_refused_before_lxd_works(
    admin_user, unix_host, lab, made, backup_dir
):
    """Root ignores permission bits: a read-only file system is what root cannot write."""
    name, _ = made.make(lab.d1)
    with mounted(backup_dir, "size=1m,ro"):
        record = make_backup(admin_user, unix_host, BackupSpec(name, "ro", export=True))
    assert record.status == BackupRecord.Status.FAILED
    assert record.error == f"the backup directory {backup_dir} is not writable: Read-only file system"
    assert lxd_backups(lab.d1, name) == []
    assert AuditEntry.objects.get(action="instance.backup").outcome == "failed"


def test_a_full_backup_directory_fails_the_export_and_leaves_nothing(
    admin_user, unix_host, lab, made, backup_dir
):
    name, _ = made.make(lab.d1, data_mib=3)  # random data: the export cannot shrink below 3 MiB
    with mounted(backup_dir, "size=1m"):
        record = make_backup(admin_user, unix_host, BackupSpec(name, "full", export=True))
        assert list(backup_dir.rglob("*.tar*")) == []  # no partial file
    assert record.status == BackupRecord.Status.FAILED
    assert "could not write the export into the backup directory" in record.error
    assert "No space left on device" in record.error
    assert lxd_backups(lab.d1, name) == []  # the LXD backup made for the export is gone too


def test_a_backup_directory_others_can_read_is_refused_before_lxd_works(
    admin_user, unix_host, lab, made, backup_dir
):
    name, _ = made.make(lab.d1)
    backup_dir.mkdir(mode=0o755)
    backup_dir.chmod(0o755)
    record = make_backup(admin_user, unix_host, BackupSpec(name, "open", export=True))
    assert record.status == BackupRecord.Status.FAILED
    assert f"chmod 700 {backup_dir}" in record.error
    assert lxd_backups(lab.d1, name) == []


def test_restore_refuses_what_is_not_a_backup(admin_user, https_host, lab, made):
    name = made.name()
    junk = os.urandom(100_000)
    with pytest.raises(BackupRefused) as refused:
        restore(admin_user, https_host, name, [junk], len(junk))
    assert refused.value.http_status == 400 and "not an LXD instance backup" in str(refused.value)
    buffer = io.BytesIO()  # a real tarball, but not a backup: LXD itself says so
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"hello"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(NotABackup) as refused:
        restore(admin_user, https_host, name, [buffer.getvalue()], len(buffer.getvalue()))
    assert "missing index.yaml" in str(refused.value) and refused.value.http_status == 400
    assert describe(lab.d2, name) is None


def test_restore_into_a_missing_pool_names_it(admin_user, unix_host, https_host, lab, made, backup_dir):
    name, _ = made.make(lab.d1)
    record = make_backup(admin_user, unix_host, BackupSpec(name, "p", export=True, keep_on_host=False))
    path = stored_path(record)
    with pytest.raises(PoolNotFound) as refused:
        restore(admin_user, https_host, made.name(), file_chunks(path), path.stat().st_size, pool="nosuch")
    assert str(refused.value) == "there is no storage pool 'nosuch' on lab2"


def test_an_operator_cannot_restore_a_privileged_instance(
    admin_user, unix_host, https_host, lab, made, backup_dir, django_user_model
):
    operator = django_user_model.objects.create_user("op", password="pw-op-12345")
    operator.groups.add(Group.objects.get_or_create(name="operator")[0])
    name, _ = made.make(lab.d1)
    lab.d1.lxc("config", "set", name, "security.privileged", "true")
    record = make_backup(admin_user, unix_host, BackupSpec(name, "priv", export=True, keep_on_host=False))
    path = stored_path(record)
    restored = made.name()
    with pytest.raises(PolicyRefused) as refused:
        restore(operator, https_host, restored, file_chunks(path), path.stat().st_size)
    assert "security.privileged needs the admin role" in str(refused.value)
    assert describe(lab.d2, restored) is None  # unpacked, judged, removed: it never ran
