"""Forms for instances: validation happens here, before any LXD call."""

from __future__ import annotations

from django import forms

from ..domain.actions import BULK_ACTIONS, DEFAULT_GRACE, MAX_GRACE
from ..lxd.names import INSTANCE, PROJECT
from .fields import ConfigField, DevicesField, ProfilesField


class InstanceCreateForm(forms.Form):
    host = forms.ChoiceField(label="Host")
    project = forms.CharField(
        max_length=63, initial="default", required=False, help_text="the LXD project to create it in"
    )
    name = forms.CharField(max_length=100, help_text="letters, digits and hyphens; starts with a letter")
    image = forms.CharField(max_length=200, help_text="an alias (e.g. busybox) or a fingerprint")
    image_host = forms.ChoiceField(label="Image from", required=False)
    profiles = ProfilesField(initial="default", help_text="comma-separated; empty: LXD's default profile")
    limits_cpu = forms.CharField(label="limits.cpu", required=False, max_length=20)
    limits_memory = forms.CharField(
        label="limits.memory", required=False, max_length=20, help_text="e.g. 256MiB"
    )
    config = ConfigField(label="Other config", help_text="one key = value per line")
    devices = DevicesField(
        label="Devices", help_text="one per line, as lxc config device add: NAME TYPE key=value ..."
    )
    start = forms.BooleanField(label="Start it once created", required=False, initial=True)

    def __init__(self, *args, host_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["host"].choices = [(n, n) for n in host_names]
        self.fields["image_host"].choices = [("", "the same host")] + [(n, n) for n in host_names]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if error := INSTANCE.error(name):
            raise forms.ValidationError(error)
        return name

    def clean_project(self) -> str:
        project = self.cleaned_data["project"].strip() or "default"
        if error := PROJECT.error(project):
            raise forms.ValidationError(error)
        return project

    def clean_profiles(self) -> list[str] | None:
        return self.cleaned_data["profiles"] or None

    def config_dict(self) -> dict[str, str]:
        config = dict(self.cleaned_data["config"])
        for field, key in (("limits_cpu", "limits.cpu"), ("limits_memory", "limits.memory")):
            if self.cleaned_data.get(field):
                config[key] = self.cleaned_data[field].strip()
        return config


class ActionForm(forms.Form):
    timeout = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_GRACE,
        initial=DEFAULT_GRACE,
        help_text="graceful stop/restart: seconds to wait for the instance to shut down",
    )
    force = forms.BooleanField(required=False)
    confirm = forms.BooleanField(required=False)
    stop_first = forms.BooleanField(required=False)


class BulkForm(ActionForm):
    action = forms.ChoiceField(choices=[(a, a) for a in BULK_ACTIONS])

    def selection(self, data) -> list[tuple[str, str, str]]:
        return selection(data)


def selection(data) -> list[tuple[str, str, str]]:
    """The fleet's selected rows (`sel`) as (host, project, name), from host/name or
    host/project/name (InstanceRow.selection_value); malformed entries are reported, not dropped."""
    picked: list[tuple[str, str, str]] = []
    for value in data.getlist("sel"):
        parts = value.split("/")
        if len(parts) == 2:
            parts.insert(1, "default")
        if len(parts) != 3 or not all(parts) or PROJECT.error(parts[1]):
            raise forms.ValidationError(f"{value!r} is not a host/instance selection")
        picked.append((parts[0], parts[1], parts[2]))
    if not picked:
        raise forms.ValidationError("Select at least one instance.")
    return list(dict.fromkeys(picked))
