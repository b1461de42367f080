"""Instance backups made through the dashboard: create, export, restore, delete.

    make_backup(user, host, BackupSpec(...))        -> BackupRecord (ok or failed, never half-made)
    export_stream(host, instance, backup)           -> (size, streamed response) for a download
    restore(user, host, name, chunks, size, pool)   -> the new instance (stopped)

Where a backup is kept: on the host (an LXD backup, until deleted), exported into the
dashboard's backup directory (DASHBOARD_BACKUP_DIR: 0700, files 0600, written to a `.part`
name, synced, then renamed), or both.  A failure leaves neither a partial file nor an LXD
backup the person did not ask to keep.

A restore writes config, devices and profiles chosen by whoever made the backup, which the
stream cannot show before LXD has unpacked it: the new instance (created stopped, under the
dashboard's lock for its name) is checked against the user's role (hosts/policy.py
check_write, as create does) and deleted at once if the role may not write it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from dashboard.datadir import UnsafeDataDirError, private_dir

from ..lxd import LXDAPIError, LXDClient, LXDError
from ..lxd.backups import COMPRESSIONS
from ..lxd.migration import user_config
from ..lxd.names import BACKUP, INSTANCE
from ..models import BackupRecord, Host, Task
from . import jobs, tasklog
from .actions import instance_lock
from .audit import audited
from .policy import PolicyRefused, check_write
from .tasklog import claim

CHUNK = 1024 * 1024
SUFFIXES = {"gzip": ".tar.gz", "bzip2": ".tar.bz2", "xz": ".tar.xz", "lzma": ".tar.lzma", "zstd": ".tar.zst"}
TIMEOUT = (2.0, 60.0)


class BackupRefused(LXDError):
    """Bad input or a place we cannot write: `http_status` fits, the message says why.  (An
    LXDError so that a backup's failure and LXD's are handled alike; both are UserErrors.)"""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.http_status = status


@dataclass
class BackupSpec:
    instance: str
    name: str = ""  # "" = dashboard-<UTC time>
    instance_only: bool = False
    optimized: bool = False
    compression: str = "gzip"
    keep_on_host: bool = True
    export: bool = False


def default_name(now=None) -> str:
    return f"dashboard-{(now or timezone.now()):%Y%m%d-%H%M%S}"


def check_spec(spec: BackupSpec) -> BackupSpec:
    INSTANCE.check(spec.instance)
    spec.name = spec.name or default_name()
    BACKUP.check(spec.name)
    if spec.compression not in COMPRESSIONS:
        raise BackupRefused(f"unknown compression {spec.compression!r}: one of {', '.join(COMPRESSIONS)}")
    if not spec.keep_on_host and not spec.export:
        raise BackupRefused("keep the backup on the host, export it into the backup directory, or both")
    return spec


# -- the backup directory --------------------------------------------------------------------------


def backup_dir() -> Path:
    """The directory, created private if missing; BackupRefused (503) when it cannot be used."""
    path = Path(settings.DASHBOARD_BACKUP_DIR)
    try:
        private_dir(path, "backup directory", "instance backups (whole file systems and their config)")
    except UnsafeDataDirError as exc:
        raise BackupRefused(str(exc), 503) from exc
    except OSError as exc:
        raise BackupRefused(
            f"the backup directory {path} cannot be created: {exc.strerror or exc}", 503
        ) from exc
    try:  # root ignores permission bits: only trying tells (a read-only mount, a full disk)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BackupRefused(
            f"the backup directory {path} is not writable: {exc.strerror or exc}", 503
        ) from exc
    return path


def _file_path(record: BackupRecord, compression: str) -> str:
    suffix = SUFFIXES.get(compression, ".tar")
    return f"{record.host_name}/{record.project}/{record.instance}/{record.name}{suffix}"


def stored_path(record: BackupRecord) -> Path:
    """The export of a record, inside the backup directory (never outside it)."""
    root = Path(settings.DASHBOARD_BACKUP_DIR).resolve()
    path = (root / record.file).resolve()
    if root not in path.parents:
        raise BackupRefused(f"{record.file} is not inside the backup directory", 400)
    return path


def write_export(client: LXDClient, instance: str, backup: str, target: Path) -> int:
    """Stream an LXD backup's export into `target` (via `.part`, synced, renamed; 0600)."""
    size, response = client.open_backup_export(instance, backup)
    partial = target.with_name(target.name + ".part")
    written = 0
    try:
        root = backup_dir()
        for parent in reversed(target.relative_to(root).parents):
            (root / parent).mkdir(mode=0o700, exist_ok=True)  # each level private, not just the last
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            for chunk in response.iter_content(chunk_size=CHUNK):
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size is not None and written != size:
            raise LXDError(f"{client.label} sent {written} of the {size} bytes of backup {backup}")
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise BackupRefused(
            f"could not write the export into the backup directory ({target.parent}): {exc.strerror or exc}",
            507 if exc.errno == 28 else 503,
        ) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    finally:
        response.close()
    return written


# -- making one ------------------------------------------------------------------------------------


def make_backup(
    user, host: Host, spec: BackupSpec, *, schedule=None, slot=None, record: BackupRecord | None = None
) -> BackupRecord:
    """Create the backup (and export it); the record ends ok, or failed with the reason and
    nothing left behind.  LXD errors are in the record, not raised (bad input is)."""
    check_spec(spec)
    project = host.project or "default"
    if record is None:
        record = BackupRecord.objects.create(
            host_name=host.name,
            project=project,
            instance=spec.instance,
            name=spec.name,
            schedule=schedule,
            slot=slot,
            instance_only=spec.instance_only,
            compression=spec.compression,
            username=user.get_username() if getattr(user, "is_authenticated", False) else "",
        )
    client = host.client(timeout=TIMEOUT)
    made = False
    target: Path | None = None
    try:
        actor = "" if user is not None else "scheduler"
        target_text = f"{spec.instance}:{spec.name}"
        with audited(user, "instance.backup", host=host, target=target_text, actor=actor) as entry:
            if spec.export:
                target = backup_dir() / _file_path(record, spec.compression)  # refuses before LXD works
            op = client.create_backup(
                spec.instance,
                spec.name,
                instance_only=spec.instance_only,
                optimized=spec.optimized,
                compression=spec.compression,
            )
            entry.operation_id = op.id
            if op.id:
                client.wait(op, timeout=settings.LXD_TRANSFER_TIMEOUT)
            made = True
            if spec.export:
                record.size = write_export(client, spec.instance, spec.name, target)
                record.file = str(target.relative_to(backup_dir()))
            else:
                record.size = client.backup_size(spec.instance, spec.name)
            if not spec.keep_on_host:
                _delete_on_host(client, host, user, spec.instance, spec.name)
                made = False
    except LXDError as exc:
        if made:
            with contextlib.suppress(LXDError):
                _delete_on_host(client, host, user, spec.instance, spec.name)
        record.status, record.error = BackupRecord.Status.FAILED, str(exc)
        record.save()
        return record
    record.status, record.on_host = BackupRecord.Status.OK, spec.keep_on_host
    record.save()
    return record


def _delete_on_host(client: LXDClient, host: Host, user, instance: str, name: str) -> None:
    op = client.delete_backup(instance, name)
    claim(host, op.id, user)
    if op.id:
        client.wait(op, timeout=120)


def delete_record(user, record: BackupRecord) -> None:
    """Delete a backup wherever the dashboard keeps it: on its host, and its export."""
    host = Host.objects.select_related("client_certificate").filter(name=record.host_name).first()
    actor = "" if user is not None else "scheduler"
    target = f"{record.instance}:{record.name}"
    with audited(user, "backup.delete", host=record.host_name, target=target, actor=actor):
        if record.on_host and host is not None:
            client = host.client(timeout=TIMEOUT).for_project(record.project)
            try:
                _delete_on_host(client, host, user, record.instance, record.name)
            except LXDAPIError as exc:
                if exc.error_code != 404:  # already gone: deleted by hand, or with its instance
                    raise
        if record.file:
            with contextlib.suppress(FileNotFoundError):
                stored_path(record).unlink()
        record.delete()


# -- restoring -------------------------------------------------------------------------------------


class Counted:
    """The body sent to LXD: counts, stops at the limit, insists on the announced size
    (`__len__` makes requests send a Content-Length)."""

    def __init__(self, chunks: Iterable[bytes], size: int, limit: int):
        self.chunks, self.size, self.limit, self.sent = chunks, size, limit, 0

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.sent += len(chunk)
            if self.sent > min(self.size, self.limit):
                raise BackupRefused(f"more data arrived than the {self.size} bytes announced", 400)
            yield chunk
        if self.sent != self.size:
            raise BackupRefused(f"the upload stopped after {self.sent} of {self.size} bytes", 400)


# The first bytes of what LXD restores: a tarball, compressed by one of LXD's algorithms.
MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"\x5d\x00\x00", b"hsqs")


def looks_like_backup(head: bytes) -> bool:
    return head.startswith(MAGIC) or (len(head) > 262 and head[257:262] == b"ustar")


def restore(
    user, host: Host, name: str, chunks: Iterable[bytes], size: int, *, pool: str = "", source: str = ""
) -> dict:
    """Restore a backup tarball as the new instance `name` on `host`: the instance as LXD
    describes it, stopped.  BackupRefused / LXDError / PolicyRefused say why not."""
    INSTANCE.check(name)
    limit = int(settings.DASHBOARD_MAX_BACKUP_UPLOAD_BYTES)
    if size > limit:
        raise BackupRefused(f"the backup is larger than the restore limit of {limit} bytes", 413)
    client = host.client(timeout=TIMEOUT)
    chunks = iter(chunks)
    with (
        instance_lock(host.name, name, wait=5),
        audited(user, "instance.restore", host=host, target=name) as entry,
    ):
        if source:
            entry.target = f"{name} from {source}"
        try:
            client.instance_brief(name)
        except LXDAPIError as exc:
            if exc.error_code != 404:
                raise
        else:
            raise BackupRefused(f"{host.name} already has an instance named {name}", 409)
        head = next(chunks, b"")
        if not looks_like_backup(head[:512]):
            raise BackupRefused(
                "this is not an LXD instance backup: it is not a tar archive, compressed or not "
                "(an export of `lxc export` or of a backup's download is)"
            )
        body = Counted(_prepend(head, chunks), size, limit)
        op = client.import_backup(body, name=name, pool=pool)
        entry.operation_id = op.id
        if op.id:
            client.wait(op, timeout=settings.LXD_TRANSFER_TIMEOUT)
        instance = client.instance(name)
        try:
            # What the backup brought is written now: judged as create judges it.
            check_write(
                user,
                host,
                config=user_config(instance),
                devices=instance.get("devices") or {},
                profiles=instance.get("profiles") or [],
            )
        except PolicyRefused:
            _remove(client, name)
            raise
    return instance


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


def _remove(client: LXDClient, name: str) -> None:
    for _ in range(3):
        try:
            op = client.delete_instance(name)
            if op.id:
                client.wait(op, timeout=60)
            return
        except LXDError:
            time.sleep(0.5)


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


# -- as jobs (from a page: the request answers at once, the task log row follows) ---------------------


def start_backup(user, host: Host, spec: BackupSpec) -> Task:
    check_spec(spec)
    task = tasklog.start_job(
        host.name, "backup", f"Backup of {spec.instance}", [("instance", spec.instance)], user
    )

    def work() -> None:
        started = time.monotonic()
        record = make_backup(user, host, spec)
        seconds = time.monotonic() - started
        if record.status == BackupRecord.Status.OK:
            size = filesizeformat(record.size) if record.size is not None else "size unknown"
            tasklog.end_job(task, text=f"{spec.name}: {size} in {seconds:.1f} s")
        else:
            tasklog.end_job(task, error=record.error, text=f"failed after {seconds:.1f} s")

    jobs.submit(task, work)
    return task


def start_restore_file(user, host: Host, record: BackupRecord, name: str, pool: str = "") -> Task:
    """Restore a backup kept in the backup directory as a new instance, as a job."""
    INSTANCE.check(name)
    path = stored_path(record)
    if not path.is_file():
        raise BackupRefused(f"the export of {record.name} is no longer in the backup directory", 404)
    task = tasklog.start_job(
        host.name,
        "backup",
        f"Restore {record.instance} ({record.name}) as {name}",
        [("instance", name)],
        user,
    )

    def work() -> None:
        try:
            restore(user, host, name, file_chunks(path), path.stat().st_size, pool=pool, source=record.name)
        except (LXDError, PolicyRefused) as exc:
            tasklog.end_job(task, error=str(exc))
            return
        tasklog.end_job(task, text=f"now on {host.name} as {name} (stopped)")

    jobs.submit(task, work)
    return task
