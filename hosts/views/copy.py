"""Copy and move: one instance from its page, or the fleet's selection to one host.

The form names the target host, project, name, profile set, pool and mode; everything that
can be refused is refused before anything moves (hosts/domain/copy.py), and a refusal for a
missing profile or pool comes back with the target's own profiles and pools to choose from.
Once accepted the transfer runs in a worker thread: the answer points to its task log row,
which the relay's progress bars of both hosts' operations accompany.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from ..domain.copy import MODES, TransferRefused, TransferSpec, plan_transfer, start_many, start_transfer
from ..domain.policy import PolicyRefused
from ..domain.roles import OPERATOR
from ..live.groups import task_message
from ..lxd.errors import UserError
from ..lxd.migration import root_pool
from ..lxd.names import INSTANCE, PROFILE, PROJECT, STORAGE_POOL
from ..models import Host
from .access import host_view, role_required

MAX_PARALLEL = 8


def _names(value: str, rule) -> list[str]:
    names = [p.strip() for p in (value or "").split(",") if p.strip()]
    for name in names:
        if error := rule.error(name):
            raise forms.ValidationError(error)
    return names


class TransferForm(forms.Form):
    action = forms.ChoiceField(choices=[("copy", "copy"), ("move", "move")], initial="copy")
    target = forms.ChoiceField(label="To host")
    target_name = forms.CharField(label="Name there", required=False, max_length=63)
    project = forms.CharField(required=False, max_length=63, help_text="empty: the host's project")
    profiles = forms.CharField(
        required=False, max_length=1000, help_text="comma-separated; empty: the instance's own profiles"
    )
    pool = forms.CharField(
        label="Storage pool", required=False, max_length=63, help_text="empty: as the profiles say"
    )
    instance_only = forms.BooleanField(label="Without its snapshots", required=False)
    mode = forms.ChoiceField(
        choices=[("pull", "pull: the target fetches from the source"), ("push", "push: the source sends")],
        initial="pull",
    )
    stop_running = forms.BooleanField(
        label="If it is running: stop it, copy or move it, and start it again", required=False
    )

    def __init__(self, *args, host_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [(n, n) for n in host_names]

    def clean_target_name(self) -> str:
        name = self.cleaned_data["target_name"].strip()
        if name and (error := INSTANCE.error(name)):
            raise forms.ValidationError(error)
        return name

    def clean_project(self) -> str:
        name = self.cleaned_data["project"].strip()
        if name and (error := PROJECT.error(name)):
            raise forms.ValidationError(error)
        return name

    def clean_profiles(self) -> list[str] | None:
        raw = self.cleaned_data["profiles"]
        return _names(raw, PROFILE) if raw.strip() else None

    def clean_pool(self) -> str:
        name = self.cleaned_data["pool"].strip()
        if name and (error := STORAGE_POOL.error(name)):
            raise forms.ValidationError(error)
        return name


def _hosts() -> dict[str, Host]:
    return {h.name: h for h in Host.objects.select_related("client_certificate")}


def _spec(source: Host, name: str, target: Host, data: dict) -> TransferSpec:
    return TransferSpec(
        source=source,
        name=name,
        target=target,
        target_name=data.get("target_name") or "",
        move=data.get("action") == "move",
        project=data.get("project") or "",
        profiles=data.get("profiles"),
        pool=data.get("pool") or "",
        instance_only=bool(data.get("instance_only")),
        mode=data.get("mode") or "pull",
        stop_running=bool(data.get("stop_running")),
    )


@require_http_methods(["GET", "POST"])
@host_view(OPERATOR, name=INSTANCE)
def instance_transfer(request, host: Host, name: str):
    hosts = _hosts()
    source = host
    instance = source.client().instance(name)
    context = {
        "host": source,
        "name": name,
        "instance": instance,
        "running": (instance.get("status") or "").lower() in ("running", "frozen"),
        "root_pool": root_pool(instance),
        "snapshot_count": len(instance.get("snapshots") or []),
    }
    if request.method == "GET":
        initial = {"target": request.GET.get("target") or "", "action": request.GET.get("action") or "copy"}
        form = TransferForm(initial=initial, host_names=list(hosts))
        return render(request, "hosts/instance_transfer.html", {**context, "form": form})
    form = TransferForm(request.POST, host_names=list(hosts))
    if not form.is_valid():
        return render(request, "hosts/instance_transfer.html", {**context, "form": form}, status=400)
    target = hosts[form.cleaned_data["target"]]
    data = dict(form.cleaned_data)
    if request.POST.get("profiles_mapped"):  # the target's own profiles, ticked after a refusal
        try:
            data["profiles"] = _names(",".join(request.POST.getlist("profiles_pick")), PROFILE)
        except forms.ValidationError as exc:
            form.add_error(None, exc)
            return render(request, "hosts/instance_transfer.html", {**context, "form": form}, status=400)
    try:
        plan = plan_transfer(request.user, _spec(source, name, target, data))
    except TransferRefused as exc:
        form.add_error(None, str(exc))
        context.update(form=form, refused=exc)
        return render(request, "hosts/instance_transfer.html", context, status=exc.http_status)
    except PolicyRefused as exc:
        form.add_error(None, f"Not allowed: {exc}")
        return render(request, "hosts/instance_transfer.html", {**context, "form": form}, status=403)
    except UserError as exc:
        form.add_error(None, str(exc))
        return render(
            request, "hosts/instance_transfer.html", {**context, "form": form}, status=exc.http_status
        )
    start_transfer(request.user, plan)
    messages.info(request, f"{plan.description}: started. Its progress and outcome are below.")
    return redirect(_follow_url(plan.target_name))


def _follow_url(instance: str) -> str:
    """The task log of the name, on every host: both sides' operations and the transfer's row."""
    return reverse("task-list") + "?" + urlencode({"instance": instance})


class BulkMoveForm(forms.Form):
    target = forms.ChoiceField(label="To host")
    parallel = forms.IntegerField(min_value=1, max_value=MAX_PARALLEL, initial=1, required=False)
    stop_running = forms.BooleanField(required=False)
    mode = forms.ChoiceField(choices=[(m, m) for m in MODES], initial="pull", required=False)

    def __init__(self, *args, host_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [(n, n) for n in host_names]


@require_POST
@role_required(OPERATOR)
def instance_bulk_move(request):
    """The fleet's selection (sel = host/name) to one host, one at a time or N in parallel;
    each instance planned (and so refused) on its own."""
    hosts = _hosts()
    form = BulkMoveForm(request.POST, host_names=list(hosts))
    picked = []
    for value in request.POST.getlist("sel"):
        host_name, sep, name = value.partition("/")
        if not sep or not host_name or not name:
            form.add_error(None, f"{value!r} is not a host/instance selection")
        picked.append((host_name, name))
    if not picked:
        form.add_error(None, "Select at least one instance.")
    if not form.is_valid():
        message = "; ".join(e for errors in form.errors.values() for e in errors)
        return render(request, "hosts/error.html", {"title": "Move refused", "message": message}, status=400)
    target = hosts[form.cleaned_data["target"]]
    data = {
        "action": "move",
        "stop_running": form.cleaned_data["stop_running"],
        "mode": form.cleaned_data["mode"] or "pull",
    }
    plans, results = [], []
    for host_name, name in dict.fromkeys(picked):
        source = hosts.get(host_name)
        try:
            if source is None:
                raise TransferRefused(f"there is no host named {host_name}", 404)
            INSTANCE.check(name)
            plans.append(plan_transfer(request.user, _spec(source, name, target, data)))
        except UserError as exc:
            results.append({"host": host_name, "name": name, "error": str(exc)})
    tasks = start_many(request.user, plans, form.cleaned_data["parallel"] or 1)
    for plan, task in zip(plans, tasks, strict=True):
        results.append(
            {
                "host": plan.spec.source.name,
                "name": plan.spec.name,
                "task": task_message(task),
                "url": _follow_url(plan.target_name),
            }
        )
    context = {"results": results, "target": target.name, "parallel": form.cleaned_data["parallel"] or 1}
    template = "hosts/partials/bulk_move_results.html" if request.htmx else "hosts/bulk_move_results.html"
    return render(request, template, context)
