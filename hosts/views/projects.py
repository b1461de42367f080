"""A host's LXD projects: the list everyone sees (what the dashboard's certificate may see), and
for admins create, edit (features, limits, restrictions) and delete (hosts/domain/projects.py)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from ..domain import projects as domain
from ..domain.roles import ADMIN, VIEWER
from ..lxd.errors import UserError
from ..lxd.names import PROJECT
from ..lxd.projects import FEATURES, LIMITS, RESTRICTIONS, feature_on
from ..models import Host
from .access import host_view, refusal
from .common import config_to_text
from .fields import ConfigField


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=63, required=False)
    description = forms.CharField(max_length=255, required=False)
    features = forms.MultipleChoiceField(
        choices=[(f, f.removeprefix("features.")) for f in FEATURES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the project has of its own; the rest it shares with the default project.",
    )
    config = ConfigField(
        label="Limits and restrictions",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="One key = value per line, e.g. limits.instances = 5, restricted = true.",
    )
    etag = forms.CharField(widget=forms.HiddenInput, required=False, max_length=128)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if name and (error := PROJECT.error(name)):
            raise forms.ValidationError(error)
        return name

    def clean_config(self) -> dict[str, str]:
        config = self.cleaned_data["config"]
        features = [k for k in config if k.startswith("features.")]
        if features:
            raise forms.ValidationError(f"{features[0]}: tick the features above instead.")
        return config

    def lxd_config(self) -> dict[str, str]:
        chosen = set(self.cleaned_data["features"])
        config = {f: "true" if f in chosen else "false" for f in FEATURES}
        config.update({k: v for k, v in self.cleaned_data["config"].items() if v != ""})
        return config

    @staticmethod
    def initial_from(row: domain.ProjectRow, etag: str) -> dict:
        return {
            "name": row.name,
            "description": row.description,
            "features": [f for f in FEATURES if feature_on(row.config, f)],
            "config": config_to_text({k: v for k, v in row.config.items() if not k.startswith("features.")}),
            "etag": etag,
        }


def _context(host: Host, form: ProjectForm | None = None) -> dict:
    return {
        "host": host,
        "projects": domain.projects_of(host),
        "form": form or ProjectForm(initial={"features": list(FEATURES[:3])}),
        "known_keys": LIMITS + RESTRICTIONS,
    }


@require_http_methods(["GET", "POST"])
@host_view(VIEWER)
def project_list(request, host: Host):
    if request.method == "GET":
        return render(request, "hosts/projects.html", _context(host))
    if (refused := refusal(request, ADMIN, "project_create")) is not None:
        return refused
    form = ProjectForm(request.POST)
    if form.is_valid() and not form.cleaned_data["name"]:
        form.add_error("name", "Give the new project a name.")
    if not form.is_valid():
        return render(request, "hosts/projects.html", _context(host, form), status=400)
    name = form.cleaned_data["name"]
    try:
        domain.create_project(request, host, name, form.lxd_config(), form.cleaned_data["description"])
    except UserError as exc:
        form.add_error(None, str(exc))
        return render(request, "hosts/projects.html", _context(host, form), status=exc.http_status)
    messages.success(request, f"Project {name} created on {host.name}.")
    return redirect("project-detail", host.name, name)


@require_http_methods(["GET", "POST"])
@host_view(VIEWER, project_name=PROJECT)
def project_detail(request, host: Host, project_name: str):
    # a refused edit is refused before LXD is asked anything
    if request.method == "POST" and (refused := refusal(request, ADMIN, "project_edit")) is not None:
        return refused
    data, etag = host.client().project_and_etag(project_name)
    row = domain.ProjectRow.from_lxd(data)
    context = {"host": host, "project": row, "known_keys": LIMITS + RESTRICTIONS}
    if request.method == "GET":
        context["form"] = ProjectForm(initial=ProjectForm.initial_from(row, etag))
        return render(request, "hosts/project_detail.html", context)
    form = context["form"] = ProjectForm(request.POST)
    if not form.is_valid():
        return render(request, "hosts/project_detail.html", context, status=400)
    try:
        domain.update_project(
            request,
            host,
            project_name,
            form.lxd_config(),
            form.cleaned_data["description"],
            form.cleaned_data["etag"],
        )
    except UserError as exc:
        form.add_error(None, str(exc))
        return render(request, "hosts/project_detail.html", context, status=exc.http_status)
    messages.success(request, f"Project {project_name} on {host.name} saved.")
    return redirect("project-detail", host.name, project_name)


@require_POST
@host_view(ADMIN, project_name=PROJECT)
def project_delete(request, host: Host, project_name: str):
    if project_name == "default":
        raise UserError("The default project cannot be deleted.", 400)
    domain.delete_project(request, host, project_name)
    messages.success(request, f"Project {project_name} deleted from {host.name}.")
    return redirect(reverse("project-list", args=[host.name]))
