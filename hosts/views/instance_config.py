"""An instance's configuration: the editor (config, devices, profiles, with a preview of what
they expand to), a device's removal, and the description and user.* keys edited inline on the
instance page.  What may be written is decided in hosts/domain (policy.check_write)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from ..domain import instance_config as editing
from ..domain import instance_meta as meta
from ..domain.policy import OPERATOR_CONFIG_HELP, PolicyRefused
from ..domain.roles import OPERATOR
from ..lxd.errors import UserError
from ..lxd.names import DEVICE, INSTANCE
from ..models import Host
from .access import host_view
from .common import config_to_text, project_url
from .fields import ConfigField, DevicesField, ProfilesField, devices_to_text
from .instances import instance_detail_context


class InstanceConfigForm(forms.Form):
    config = ConfigField(
        label="Config",
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        help_text="One key = value per line; remove a line to unset the key.",
    )
    devices = DevicesField(
        label="Devices",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="One per line, as lxc config device add: NAME TYPE key=value ... Remove a line to "
        "remove the device.",
    )
    profiles = ProfilesField(label="Profiles", help_text="Comma-separated, in order: a later one wins.")
    version = forms.CharField(widget=forms.HiddenInput, max_length=64)

    @staticmethod
    def initial_from(values: editing.EditorValues) -> dict:
        return {
            "config": config_to_text(values.config),
            "devices": devices_to_text(values.devices),
            "profiles": ", ".join(values.profiles),
            "version": values.version,
        }


def _context(request, host: Host, name: str, instance: dict, form: InstanceConfigForm, **extra) -> dict:
    values = editing.EditorValues.of(instance, request.user)
    return {
        "host": host,
        "name": name,
        "instance": instance,
        "values": values,
        "form": form,
        "policy_help": OPERATOR_CONFIG_HELP,
        "instance_url": project_url("instance-detail", host.name, name, project=host.project),
        **extra,
    }


def _fresh_form(values: editing.EditorValues) -> InstanceConfigForm:
    return InstanceConfigForm(initial=InstanceConfigForm.initial_from(values))


def _change(form: InstanceConfigForm, values: editing.EditorValues) -> editing.ConfigChange:
    data = form.cleaned_data
    return editing.plan(values, data["config"], data["devices"], data["profiles"])


@require_http_methods(["GET", "POST"])
@host_view(OPERATOR, name=INSTANCE)
def instance_config(request, host: Host, name: str):
    client = host.client()
    instance = client.instance(name)
    values = editing.EditorValues.of(instance, request.user)
    if request.method == "GET":
        form = _fresh_form(values)
        preview = editing.preview(client, instance, editing.ConfigChange(), request.user)
        return render(
            request,
            "hosts/instance_config.html",
            _context(request, host, name, instance, form, preview=preview),
        )
    form = InstanceConfigForm(request.POST)
    if not form.is_valid():
        return render(
            request, "hosts/instance_config.html", _context(request, host, name, instance, form), status=400
        )
    change = _change(form, values)
    if form.cleaned_data["version"] != values.version:
        return _conflict(request, host, name, editing.EditConflict(name, instance), form)
    if change.empty:
        messages.info(request, "Nothing changed.")
        return redirect(project_url("instance-detail", host.name, name, project=host.project))
    try:
        restart = editing.save(request, host, name, form.cleaned_data["version"], change)
    except editing.EditConflict as exc:
        return _conflict(request, host, name, exc, form)
    except editing.FieldRefused as exc:
        form.add_error(None if exc.field == "__all__" else exc.field, exc.message)
        return render(
            request,
            "hosts/instance_config.html",
            _context(request, host, name, instance, form),
            status=exc.http_status,
        )
    except PolicyRefused as exc:
        form.add_error(None, f"Not saved: {exc}")
        return render(
            request, "hosts/instance_config.html", _context(request, host, name, instance, form), status=403
        )
    messages.success(request, f"Configuration of {name} saved: {change.summary()}.")
    if restart:
        messages.warning(request, f"{', '.join(restart)}: takes effect when {name} restarts.")
    return redirect(project_url("instance-detail", host.name, name, project=host.project))


def _conflict(request, host: Host, name: str, exc: editing.EditConflict, form: InstanceConfigForm):
    """The fresh values in the form, what the person sent kept beside them, and why."""
    fresh = _fresh_form(editing.EditorValues.of(exc.instance, request.user))
    context = _context(request, host, name, exc.instance, fresh, rejected=request.POST, conflict=exc.message)
    return render(request, "hosts/instance_config.html", context, status=409)


@require_POST
@host_view(OPERATOR, name=INSTANCE)
def instance_config_preview(request, host: Host, name: str):
    """What the form's values expand to (htmx): each key and device with its source."""
    client = host.client()
    instance = client.instance(name)
    values = editing.EditorValues.of(instance, request.user)
    form = InstanceConfigForm(request.POST)
    context = {"host": host, "name": name, "form": form}
    if not form.is_valid():
        return render(request, "hosts/instance_config.html#preview", context, status=400)
    change = _change(form, values)
    context["preview"] = editing.preview(client, instance, change, request.user)
    context["stale"] = form.cleaned_data["version"] != values.version
    return render(request, "hosts/instance_config.html#preview", context)


@require_POST
@host_view(OPERATOR, name=INSTANCE, device=DEVICE)
def instance_device_remove(request, host: Host, name: str, device: str):
    back = project_url("instance-detail", host.name, name, project=host.project)
    editing.remove_device(request, host, name, device)
    messages.success(request, f"Device {device} removed from {name}.")
    return redirect(back)


class MetaForm(forms.Form):
    """The description, or one user.* key (empty value, or `remove`: unset), with the value the
    page showed (`original`): changed meanwhile by someone else is refused."""

    field = forms.ChoiceField(choices=[("description", "description"), ("user", "user key")])
    key = forms.CharField(required=False, max_length=200)
    value = forms.CharField(required=False, max_length=4096, strip=False)
    original = forms.CharField(required=False, max_length=4096, strip=False)
    remove = forms.BooleanField(required=False)


def _meta_response(request, host: Host, name: str, status: int = 200, error: str = ""):
    context = instance_detail_context(request, host, name)
    context["meta_error"] = error
    if request.htmx:
        return render(request, "hosts/instance_detail.html#meta", context, status=status)
    if error:
        return render(request, "hosts/instance_detail.html", context, status=status)
    return redirect(project_url("instance-detail", host.name, name, project=host.project))


@require_POST
@host_view(OPERATOR, name=INSTANCE)
def instance_meta_edit(request, host: Host, name: str):
    form = MetaForm(request.POST)
    if not form.is_valid():
        return _meta_response(
            request, host, name, 400, "The form was not understood: " + form.errors.as_text()
        )
    data = form.cleaned_data
    try:
        if data["field"] == "description":
            meta.set_description(request, host, name, data["value"].strip(), data["original"])
            done = f"Description of {name} saved."
        else:
            value = "" if data["remove"] else data["value"].strip()
            key = meta.user_key(data["key"])
            meta.set_user_key(request, host, name, key, value, data["original"])
            done = f"{key} of {name} {'removed' if not value else 'saved'}."
    except UserError as exc:
        return _meta_response(request, host, name, exc.http_status, str(exc))
    if not request.htmx:
        messages.success(request, done)
    return _meta_response(request, host, name)
