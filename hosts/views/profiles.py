"""A host's profiles (in the project the page names): list with the instances using each, create,
edit (config and devices, with the instance editor's fields), rename, delete, and copy to other
hosts after showing the differences (hosts/domain/profiles.py decides and writes)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from ..domain import profiles as domain
from ..domain.config_view import config_entries
from ..domain.instance_config import editable
from ..domain.policy import OPERATOR_CONFIG_HELP, PolicyRefused
from ..domain.roles import ADMIN, OPERATOR, VIEWER
from ..lxd.errors import UserError
from ..lxd.names import PROFILE
from ..models import Host
from .access import host_view, refusal
from .common import config_to_text, project_url
from .fields import ConfigField, DevicesField, devices_to_text


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=63, required=False, help_text="letters, digits, '-', '_' or '.'")
    description = forms.CharField(max_length=255, required=False)
    config = ConfigField(
        label="Config",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="One key = value per line; remove a line to unset the key.",
    )
    devices = DevicesField(
        label="Devices",
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        help_text="One per line, as lxc profile device add: NAME TYPE key=value ... Remove a line to remove it.",
    )
    etag = forms.CharField(widget=forms.HiddenInput, required=False, max_length=128)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if name and (error := PROFILE.error(name)):
            raise forms.ValidationError(error)
        return name

    @staticmethod
    def initial_from(profile: domain.ProfileRow, etag: str, user) -> dict:
        shown, _, _ = editable(profile.config, user)
        return {
            "name": profile.name,
            "description": profile.description,
            "config": config_to_text(shown),
            "devices": devices_to_text(profile.devices),
            "etag": etag,
        }


def _url(view: str, host: Host, *args) -> str:
    return project_url(view, host.name, *args, project=host.project)


def _list_context(host: Host, form: ProfileForm | None = None) -> dict:
    return {
        "host": host,
        "profiles": domain.profile_rows(host),
        "form": form or ProfileForm(),
        "policy_help": OPERATOR_CONFIG_HELP,
    }


def _place(form: ProfileForm, exc: UserError) -> None:
    field = getattr(exc, "field", "")
    form.add_error(field if field in form.fields else None, str(exc))


@require_http_methods(["GET", "POST"])
@host_view(VIEWER)
def profile_list(request, host: Host):
    if request.method == "GET":
        return render(request, "hosts/profiles.html", _list_context(host))
    if (refused := refusal(request, OPERATOR, "profile_create")) is not None:
        return refused
    form = ProfileForm(request.POST)
    if form.is_valid() and not form.cleaned_data["name"]:
        form.add_error("name", "Give the new profile a name.")
    if not form.is_valid():
        return render(request, "hosts/profiles.html", _list_context(host, form), status=400)
    data = form.cleaned_data
    try:
        domain.create_profile(
            request, host, data["name"], data["description"], data["config"], data["devices"]
        )
    except UserError as exc:
        _place(form, exc)
        status = 403 if isinstance(exc, PolicyRefused) else exc.http_status
        return render(request, "hosts/profiles.html", _list_context(host, form), status=status)
    messages.success(request, f"Profile {data['name']} created on {host.name}.")
    return redirect(_url("profile-detail", host, data["name"]))


@require_http_methods(["GET", "POST"])
@host_view(VIEWER, profile=PROFILE)
def profile_detail(request, host: Host, profile: str):
    # a refused edit is refused before LXD is asked anything
    if request.method == "POST" and (refused := refusal(request, OPERATOR, "profile_edit")) is not None:
        return refused
    current, etag = domain.profile_and_etag(host, profile)
    others = list(Host.objects.exclude(pk=host.pk).values_list("name", flat=True))
    _, hidden, multiline = editable(current.config, request.user)
    context = {
        "host": host,
        "profile": current,
        "others": others,
        "policy_help": OPERATOR_CONFIG_HELP,
        "config": config_entries(current.config, request.user),
        "devices_text": devices_to_text(current.devices),
        "kept": [*hidden, *multiline],
    }
    if request.method == "GET":
        context["form"] = ProfileForm(initial=ProfileForm.initial_from(current, etag, request.user))
        return render(request, "hosts/profile_detail.html", context)
    form = ProfileForm(request.POST)
    context["form"] = form
    if not form.is_valid():
        return render(request, "hosts/profile_detail.html", context, status=400)
    data = form.cleaned_data
    try:
        domain.update_profile(
            request, host, profile, data["description"], data["config"], data["devices"], data["etag"]
        )
    except UserError as exc:
        if exc.http_status == 409 and not getattr(exc, "field", ""):
            # changed meanwhile: the form shows the profile as it is now
            fresh, fresh_etag = domain.profile_and_etag(host, profile)
            context.update(profile=fresh, rejected=request.POST)
            context["form"] = form = ProfileForm(
                initial=ProfileForm.initial_from(fresh, fresh_etag, request.user)
            )
            context["conflict"] = str(exc)
            return render(request, "hosts/profile_detail.html", context, status=409)
        _place(form, exc)
        return render(request, "hosts/profile_detail.html", context, status=exc.http_status)
    messages.success(request, f"Profile {profile} on {host.name} saved.")
    return redirect(_url("profile-detail", host, profile))


@require_POST
@host_view(ADMIN, profile=PROFILE)
def profile_rename(request, host: Host, profile: str):
    new_name = (request.POST.get("new_name") or "").strip()
    domain.rename_profile(request, host, profile, new_name)
    messages.success(request, f"Profile {profile} renamed to {new_name} on {host.name}.")
    return redirect(_url("profile-detail", host, new_name))


@require_http_methods(["GET", "POST"])
@host_view(ADMIN, profile=PROFILE)
def profile_delete(request, host: Host, profile: str):
    current, _ = domain.profile_and_etag(host, profile)
    if request.method == "GET":
        return render(request, "hosts/profile_delete.html", {"host": host, "profile": current})
    domain.delete_profile(request, host, profile)
    messages.success(request, f"Profile {profile} deleted from {host.name}.")
    return redirect(_url("profile-list", host))


@require_http_methods(["GET", "POST"])
@host_view(OPERATOR, profile=PROFILE)
def profile_copy(request, host: Host, profile: str):
    """GET ?to=H&to=H2: the differences each host would see; POST: make them the same."""
    source, _ = domain.profile_and_etag(host, profile)
    all_hosts = list(Host.objects.select_related("client_certificate").exclude(pk=host.pk))
    wanted = request.GET.getlist("to") if request.method == "GET" else request.POST.getlist("to")
    targets = [h.for_project(host.project) for h in all_hosts if h.name in wanted]
    unknown = sorted(set(wanted) - {h.name for h in targets})
    if unknown:
        raise UserError(f"No registered host named {', '.join(unknown)}.", 404)
    context = {"host": host, "profile": source, "hosts": [h.name for h in all_hosts], "wanted": wanted}
    if request.method == "GET":
        context["targets"] = domain.compare(source, targets, request.user) if targets else []
        return render(request, "hosts/profile_copy.html", context)
    if not targets:
        raise UserError("Choose at least one host to copy the profile to.", 400)
    seen = {h.name: request.POST.get(f"etag-{h.name}", "") for h in targets}
    context["results"] = results = domain.copy_profile(request, host, source, targets, seen)
    context["targets"] = domain.compare(source, targets, request.user)
    status = 200 if all(r.ok for r in results) else 409
    return render(request, "hosts/profile_copy.html", context, status=status)
