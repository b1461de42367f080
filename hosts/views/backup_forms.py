"""Forms for backups and backup schedules: validation happens here, before any LXD call."""

from __future__ import annotations

from django import forms

from ..domain.cron import Cron, CronError
from ..lxd.backups import COMPRESSIONS
from ..lxd.names import BACKUP, INSTANCE, STORAGE_POOL
from ..models import BackupSchedule, Host

WHERE = [("host", "keep it on the host"), ("dir", "export it into the backup directory"), ("both", "both")]


class BackupForm(forms.Form):
    name = forms.CharField(required=False, max_length=255, help_text="empty: dashboard-<UTC time>")
    instance_only = forms.BooleanField(label="Without its snapshots", required=False)
    optimized = forms.BooleanField(
        label="Optimized storage (btrfs and zfs pools: the driver's own format)", required=False
    )
    compression = forms.ChoiceField(choices=[(c, c) for c in COMPRESSIONS], initial="gzip")
    where = forms.ChoiceField(choices=WHERE, initial="host")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if name and (error := BACKUP.error(name)):
            raise forms.ValidationError(error)
        return name


class RestoreForm(forms.Form):
    """Restoring an export kept in the backup directory (an upload goes over the websocket)."""

    record = forms.IntegerField(widget=forms.HiddenInput)
    host = forms.ChoiceField()
    name = forms.CharField(max_length=63, label="New instance name")
    pool = forms.CharField(required=False, max_length=63, help_text="empty: the default profile's pool")

    def __init__(self, *args, host_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["host"].choices = [(n, n) for n in host_names]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if error := INSTANCE.error(name):
            raise forms.ValidationError(error)
        return name

    def clean_pool(self) -> str:
        name = self.cleaned_data["pool"].strip()
        if name and (error := STORAGE_POOL.error(name)):
            raise forms.ValidationError(error)
        return name


class ScheduleForm(forms.ModelForm):
    compression = forms.ChoiceField(choices=[(c, c) for c in COMPRESSIONS], initial="gzip")

    class Meta:
        model = BackupSchedule
        fields = [
            "name",
            "enabled",
            "host_name",
            "project",
            "name_pattern",
            "user_key",
            "user_value",
            "cron",
            "keep_last",
            "keep_daily",
            "keep_weekly",
            "keep_monthly",
            "where",
            "instance_only",
            "optimized",
            "compression",
        ]
        labels = {"host_name": "Host", "cron": "When (cron, UTC)", "user_key": "Config key"}

    def clean_host_name(self) -> str:
        name = self.cleaned_data["host_name"].strip()
        if name and not Host.objects.filter(name=name).exists():
            raise forms.ValidationError(f"there is no registered host named {name}")
        return name

    def clean_cron(self) -> str:
        try:
            return Cron.parse(self.cleaned_data["cron"]).text
        except CronError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_user_key(self) -> str:
        key = self.cleaned_data["user_key"].strip()
        if key and (not key.startswith("user.") or len(key) == len("user.")):
            raise forms.ValidationError("choose instances by a user.* key (e.g. user.backup)")
        return key

    def clean_name_pattern(self) -> str:
        pattern = self.cleaned_data["name_pattern"].strip()
        probe = pattern.replace("*", "a").replace("?", "a").replace("[", "").replace("]", "")
        if pattern and probe and INSTANCE.error(probe) and not set(pattern) <= set("*?"):
            raise forms.ValidationError(
                "a pattern of instance names: letters, digits, hyphens and * ? [ ] (e.g. web-*)"
            )
        return pattern

    def clean(self):
        data = super().clean()
        keeps = [data.get(k) or 0 for k in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly")]
        if not any(keeps):
            raise forms.ValidationError("keep at least one backup: set last, daily, weekly or monthly")
        return data
