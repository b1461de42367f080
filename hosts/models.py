from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from .domain import crypto
from .lxd import LXDClient, TLSIdentity, parse_endpoint
from .lxd.certs import generate_client_certificate

HOST_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def validate_host_name(value: str) -> None:
    if not HOST_NAME_RE.match(value or ""):
        raise ValidationError(
            "Use 1-63 lower-case letters, digits and hyphens, not starting or ending with a hyphen."
        )


class ClientCertificate(models.Model):
    """The certificate the dashboard presents to LXD hosts; its key is encrypted at rest."""

    name = models.CharField(max_length=100, unique=True)
    certificate = models.TextField(help_text="PEM")
    private_key_encrypted = models.TextField(editable=False)
    fingerprint = models.CharField(max_length=64, unique=True)
    not_after = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.fingerprint[:12]})"

    DEFAULT_NAME = "dashboard"  # the one new registrations use

    @classmethod
    def default(cls) -> ClientCertificate:
        cert = cls.objects.filter(name=cls.DEFAULT_NAME).first()
        if cert is None:
            cert = cls.generate(cls.DEFAULT_NAME)
        return cert

    @classmethod
    def generate(cls, name: str) -> ClientCertificate:
        """A new certificate and key (encrypted at rest), saved under `name`."""
        generated = generate_client_certificate("lxd-dashboard")
        return cls.objects.create(
            name=name,
            certificate=generated.certificate_pem,
            private_key_encrypted=crypto.encrypt(generated.private_key_pem),
            fingerprint=generated.fingerprint,
            not_after=generated.not_after,
        )

    def private_key_pem(self) -> str:
        return crypto.decrypt(self.private_key_encrypted)


def default_operator_profiles() -> list[str]:
    """What a new host lets operators attach: LXD's `default` (applied when no list is given)."""
    return ["default"]


class Host(models.Model):
    class Status(models.TextChoices):
        UNKNOWN = "unknown", "unknown"
        ONLINE = "online", "online"
        OFFLINE = "offline", "offline"
        UNTRUSTED = "untrusted", "untrusted"
        CERT_CHANGED = "cert-changed", "certificate changed"

    name = models.CharField(max_length=63, unique=True, validators=[validate_host_name])
    endpoint = models.CharField(max_length=512, help_text="unix socket path or https://host:port")
    project = models.CharField(max_length=63, default="default")
    server_certificate = models.TextField(blank=True, help_text="pinned PEM (HTTPS hosts)")
    server_fingerprint = models.CharField(max_length=64, blank=True)
    client_certificate = models.ForeignKey(
        ClientCertificate, null=True, blank=True, on_delete=models.PROTECT, related_name="hosts"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UNKNOWN)
    status_detail = models.TextField(blank=True)
    last_checked = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Profiles an admin allowed operators to attach on this host (hosts/policy.py reads it).
    operator_profiles = models.JSONField(default=default_operator_profiles, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_unix(self) -> bool:
        return self.endpoint.startswith("/")

    def tls_identity(self) -> TLSIdentity | None:
        if self.is_unix:
            return None
        cert = self.client_certificate
        return TLSIdentity(
            server_cert_pem=self.server_certificate,
            client_cert_pem=cert.certificate if cert else None,
            client_key_pem=cert.private_key_pem() if cert else None,
        )

    def client(self, timeout: tuple[float, float] | None = None) -> LXDClient:
        from django.conf import settings

        return LXDClient(
            parse_endpoint(self.endpoint),
            tls=self.tls_identity(),
            project=self.project,
            label=self.name,
            timeout=timeout or settings.LXD_PAGE_TIMEOUT,
            max_body=settings.LXD_MAX_RESPONSE_BYTES,
        )

    def record_status(self, status: str, detail: str = "") -> None:
        self.status, self.status_detail, self.last_checked = status, detail, timezone.now()
        Host.objects.filter(pk=self.pk).update(
            status=status, status_detail=detail, last_checked=self.last_checked
        )


class AuditEntry(models.Model):
    """One mutating request: who did what to which object, and how it ended."""

    class Outcome(models.TextChoices):
        OK = "ok", "ok"
        FAILED = "failed", "failed"
        REFUSED = "refused", "refused"

    time = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    host_name = models.CharField(max_length=63, blank=True, db_index=True)
    target = models.TextField(blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.OK)
    error = models.TextField(blank=True)
    operation_id = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        ordering = ["-time", "-id"]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.host_name}/{self.target} {self.outcome}"


class Task(models.Model):
    """One LXD operation seen on a host, kept after LXD forgets it (about 5 s after it ends).

    Written by the relay from the events stream, whoever started the operation: the
    dashboard (then `username` says who) or anything else (`lxc`, another client).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        SUCCESS = "success", "success"
        FAILURE = "failure", "failure"
        CANCELLED = "cancelled", "cancelled"
        LOST = "lost", "outcome unknown"

    FINAL = (Status.SUCCESS, Status.FAILURE, Status.CANCELLED, Status.LOST)

    host_name = models.CharField(max_length=63, db_index=True)
    operation_id = models.CharField(max_length=64)
    op_class = models.CharField(max_length=16, blank=True)
    description = models.CharField(max_length=255, blank=True)
    # The operation's objects as " kind:name kind:name ", so one instance's history is a
    # plain `contains " instance:c1 "` (LXD names hold no spaces).
    targets = models.CharField(max_length=2048, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    status_code = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    progress = models.CharField(max_length=255, blank=True, help_text="the last progress LXD reported")
    percent = models.PositiveSmallIntegerField(null=True, blank=True)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["host_name", "operation_id"], name="task_once_per_host_operation")
        ]

    def __str__(self) -> str:
        return f"{self.host_name} {self.description} {self.targets.strip()} {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    def target_list(self) -> list[tuple[str, str]]:
        return [tuple(token.split(":", 1)) for token in self.targets.split() if ":" in token]

    @staticmethod
    def targets_text(objects) -> str:
        """(("instance", "c1"), ...) -> " instance:c1 " as stored in `targets`."""
        return " " + " ".join(f"{kind}:{name}" for kind, name in objects) + " " if objects else ""


# -- backups, schedules, transfers (issue 16) ---------------------------------------------------


class BackupSchedule(models.Model):
    """A backup policy: which instances, when (cron), how many to keep, and where.

    Runs in the relay's worker process (hosts/domain/schedules.py); `last_slot` is the cron
    time of the last run it started, so a slot missed while the dashboard was down runs once
    when it comes back."""

    class Where(models.TextChoices):
        HOST = "host", "kept on the host (LXD backups)"
        DIR = "dir", "exported into the dashboard's backup directory"
        BOTH = "both", "both"

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    # Which instances: every condition given must hold ("" matches all).
    host_name = models.CharField(max_length=63, blank=True, help_text="one host, or empty for every host")
    project = models.CharField(max_length=63, blank=True, help_text="hosts registered in this project")
    name_pattern = models.CharField(
        max_length=200, blank=True, help_text="shell pattern on the instance name, e.g. web-*"
    )
    user_key = models.CharField(max_length=200, blank=True, help_text="a user.* config key, e.g. user.backup")
    user_value = models.CharField(max_length=200, blank=True, help_text="its value; empty: any value")
    cron = models.CharField(max_length=100, help_text="minute hour day-of-month month day-of-week (UTC)")
    keep_last = models.PositiveIntegerField(default=7)
    keep_daily = models.PositiveIntegerField(default=0)
    keep_weekly = models.PositiveIntegerField(default=0)
    keep_monthly = models.PositiveIntegerField(default=0)
    where = models.CharField(max_length=8, choices=Where.choices, default=Where.HOST)
    instance_only = models.BooleanField(default=False)
    optimized = models.BooleanField(default=False)
    compression = models.CharField(max_length=16, default="gzip")
    created_at = models.DateTimeField(default=timezone.now)
    last_slot = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def exports(self) -> bool:
        return self.where in (self.Where.DIR, self.Where.BOTH)

    @property
    def keeps_on_host(self) -> bool:
        return self.where in (self.Where.HOST, self.Where.BOTH)


class BackupRecord(models.Model):
    """A backup the dashboard made, by hand or on a schedule, and where it now is."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        OK = "ok", "ok"
        FAILED = "failed", "failed"

    host_name = models.CharField(max_length=63, db_index=True)
    project = models.CharField(max_length=63, default="default")
    instance = models.CharField(max_length=63, db_index=True)
    name = models.CharField(max_length=255, help_text="the LXD backup's name")
    schedule = models.ForeignKey(
        BackupSchedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="records"
    )
    # The cron slot a scheduled backup belongs to: one backup per instance per minute, whatever
    # number of schedules match it then.
    slot = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(blank=True)
    on_host = models.BooleanField(default=False, help_text="still kept on the host as an LXD backup")
    file = models.CharField(
        max_length=500, blank=True, help_text="its export, relative to the backup directory"
    )
    size = models.BigIntegerField(null=True, blank=True)
    instance_only = models.BooleanField(default=False)
    compression = models.CharField(max_length=16, default="gzip")
    username = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["host_name", "project", "instance", "slot"],
                condition=models.Q(slot__isnull=False),
                name="backup_once_per_instance_slot",
            )
        ]

    def __str__(self) -> str:
        return f"{self.host_name}/{self.instance} {self.name} {self.status}"


class Lease(models.Model):
    """Who runs a singleton job (the backup scheduler), until when: two processes never both."""

    name = models.CharField(max_length=63, unique=True)
    holder = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class PendingCleanup(models.Model):
    """A half-made instance a failed copy left on a host that was not answering: removed as
    soon as the host is back (only if it was created by that copy: not before `not_before`)."""

    host_name = models.CharField(max_length=63)
    project = models.CharField(max_length=63, default="default")
    instance = models.CharField(max_length=63)
    not_before = models.DateTimeField()
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.host_name}/{self.instance} ({self.reason})"
