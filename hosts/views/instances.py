"""Instances: detail and logs (the seed's /state, /logs), lifecycle actions on one instance or
on a selection across hosts, and create. Actions answer htmx with the updated row."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ..concurrency import parallel
from ..domain import terminal
from ..domain.actions import DEFAULT_GRACE, ActionRequest, ActionResult, audit_result, perform, perform_many
from ..domain.config_view import HIDDEN
from ..domain.create import CreateSpec, create_instance
from ..domain.policy import OPERATOR_CONFIG_HELP, PolicyRefused
from ..domain.roles import OPERATOR, has_role, may_see_secrets
from ..fleet.detail import detail_context
from ..fleet.model import Freshness, as_instance, config_rev, instance_model
from ..fleet.rows import InstanceRow, render_row
from ..lxd import LXDError
from ..lxd.config import redact_lxc_environment
from ..lxd.errors import UserError
from ..lxd.instances import STATE_ACTIONS
from ..lxd.names import INSTANCE, LOG_FILE
from ..models import Host
from .access import error_page, host_view, role_required
from .instance_forms import ActionForm, BulkForm, InstanceCreateForm

# Writes answer 202 at once; reading the instance back with its state can take a moment
# on a busy host. Following the operation has its own, longer, timeouts.
ACTION_TIMEOUT = (0.5, 10.0)


DETAIL_PARTS = {
    "": None,
    "live": "hosts/instance_detail.html#live",
    "config": "hosts/instance_detail.html#settings",
}


CONFIG_KEYS = ("config", "expanded_config", "devices", "expanded_devices")


def _modelled(host: Host, name: str) -> tuple[Freshness, tuple[dict, dict] | None]:
    """The host's model freshness, and (instance, detail) from it if it is fresh and knows
    the instance."""
    found, row = instance_model(host, name)
    return found, (as_instance(*row), row[1]) if row else None


def _model_note(host: Host, found: Freshness) -> str:
    age = f", last confirmed {found.age:.0f} s ago" if found.age is not None else ""
    return f"The live model of {host.name} is not in use ({found.why_stale}{age}): shown as {host.name} answered now."


@require_safe
@host_view(name=INSTANCE)
def instance_detail(request, host: Host, name: str):
    """The instance page.  State, network and snapshots come from the live model when it is
    fresh (the "live" part, reloaded when a push changes the row); the configuration, asked of
    LXD without state (no state query), reloads only when the model's revision of it changes
    (the "config" part).  A stale model: everything is asked of LXD, as it answers now."""
    part = request.GET.get("part", "")
    if part not in DETAIL_PARTS:
        raise UserError("part must be live or config", 400)
    client = host.client(timeout=ACTION_TIMEOUT)
    found, modelled = _modelled(host, name)
    rev = ""
    if part == "config" or (modelled is not None and not part):
        plain = client.instance(name, state=False)  # config and devices: no state query
    if modelled is not None:
        instance, detail = modelled
        rev = detail.get("rev", "")
        if part != "live":
            instance = {**instance, **{k: plain.get(k) for k in CONFIG_KEYS}}
    elif part == "config":
        instance = plain
    else:
        instance = plain = client.instance(name)
        rev = config_rev(instance)
    context = detail_context(host, instance, client.instance_logs(name) if not part else [], request.user)
    context["rev"] = rev if part != "config" else ""
    context["config_rev"] = config_rev(plain) if part != "live" else ""
    context["model_note"] = "" if modelled is not None else _model_note(host, found)
    if part:
        return render(request, DETAIL_PARTS[part], context)
    context["row_html"] = mark_safe(render_row(context["row"], can_operate=has_role(request.user, OPERATOR)))  # noqa: S308
    # A shell is root in the instance: operators and admins only (the socket checks again).
    context["terminal"] = terminal.offer(client, instance) if has_role(request.user, OPERATOR) else None
    context["live_model"] = f"{found.version:.6f}" if modelled is not None else ""
    return render(request, "hosts/instance_detail.html", context)


@require_safe
@host_view(name=INSTANCE)
def instance_row(request, host: Host, name: str):
    """The row as the live model (when fresh) or LXD describes the instance now (Cancel in
    an inline form uses it)."""
    _, modelled = _modelled(host, name)
    instance = modelled[0] if modelled else host.client(timeout=ACTION_TIMEOUT).instance_or_none(name)
    if instance is None:
        gone = f"{name} no longer exists on {host.name}"
        row = InstanceRow(host.name, name, status="unknown", gone=True, outcome=gone, outcome_ok=False)
        return HttpResponse(render_row(row, can_operate=False), status=404)
    row = InstanceRow.from_lxd(host.name, instance)
    return HttpResponse(render_row(row, can_operate=has_role(request.user, OPERATOR)))


@require_safe
@host_view(name=INSTANCE, filename=LOG_FILE)
def instance_log(request, host: Host, name: str, filename: str):
    text, truncated = host.client(timeout=ACTION_TIMEOUT).instance_log(name, filename)
    if not may_see_secrets(request.user):
        text = redact_lxc_environment(text, HIDDEN)  # lxc.conf repeats environment.* values
    context = {"host": host, "name": name, "filename": filename, "text": text, "truncated": truncated}
    return render(request, "hosts/instance_log.html", context)


# -- actions -------------------------------------------------------------------------


def _result_row(result: ActionResult) -> InstanceRow:
    if result.instance is not None:
        row = InstanceRow.from_lxd(result.host_name, result.instance)
    else:
        row = InstanceRow(result.host_name, result.name, status="unknown")
    row.gone = result.gone
    row.outcome, row.outcome_ok = result.message, result.ok
    if not result.ok and "running" in row.outcome.lower() and result.action == "delete":
        row.outcome += " (stop it first)"
    return row


def _next_url(request, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return target
    return default


def _action_response(request, host: Host, result: ActionResult):
    if request.htmx:
        if result.action == "delete" and result.ok:
            notice = render_to_string(
                "hosts/partials/fleet_notice.html",
                {"message": f"Deleted {result.name} on {host.name}.", "oob": True},
            )
            return HttpResponse(notice)  # the row's outerHTML becomes nothing: removed
        html = render_row(_result_row(result), can_operate=has_role(request.user, OPERATOR))
        return HttpResponse(html, status=result.http_status)
    if result.ok:
        messages.success(request, f"{result.name} on {host.name}: {result.message}.")
        default = (
            reverse("home")
            if result.action == "delete"
            else reverse("instance-detail", args=[host.name, result.name])
        )
        return redirect(_next_url(request, default))
    title = f"Could not {result.action} {result.name} on {host.name}"
    return error_page(request, result.error, title=title)


def _form_error(request, form: forms.Form, title: str):
    message = "; ".join(
        f"{k}: {' '.join(v)}" if k != "__all__" else " ".join(v) for k, v in form.errors.items()
    )
    return error_page(request, UserError(message, 400), title=title)


@require_POST
@host_view(OPERATOR, name=INSTANCE)
def instance_action(request, host: Host, name: str, action: str):
    if action not in STATE_ACTIONS:
        raise Http404(f"no action {action}")
    form = ActionForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form, f"Cannot {action} {name}")
    req = ActionRequest(
        action, timeout=form.cleaned_data["timeout"] or DEFAULT_GRACE, force=form.cleaned_data["force"]
    )
    result = perform(host.client(timeout=ACTION_TIMEOUT), host.name, name, req)
    audit_result(request, host, result)
    return _action_response(request, host, result)


@require_http_methods(["GET", "POST"])
@host_view(OPERATOR, name=INSTANCE)
def instance_delete(request, host: Host, name: str):
    client = host.client(timeout=ACTION_TIMEOUT)
    if request.method == "GET":
        row = InstanceRow.from_lxd(host.name, client.instance(name))
        template = (
            "hosts/partials/instance_delete_confirm.html" if request.htmx else "hosts/instance_delete.html"
        )
        return render(request, template, {"row": row, "host": host})
    form = ActionForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form, f"Cannot delete {name}")
    req = ActionRequest(
        "delete", confirmed=form.cleaned_data["confirm"], stop_first=form.cleaned_data["stop_first"]
    )
    result = perform(client, host.name, name, req)
    audit_result(request, host, result)
    return _action_response(request, host, result)


@require_POST
@role_required(OPERATOR)
def instance_bulk(request):
    """One action on instances selected across hosts; each result reported on its own.
    (Not LXD's PUT /1.0/instances: it acts on every instance of a project, with no names.)"""
    form = BulkForm(request.POST)
    try:
        picked = form.selection(request.POST) if form.is_valid() else None
    except forms.ValidationError as exc:
        form.add_error(None, exc)
        picked = None
    if picked is not None and form.cleaned_data["action"] == "delete" and not form.cleaned_data["confirm"]:
        form.add_error("confirm", "Deleting needs the confirmation box ticked: nothing was done.")
        picked = None
    if picked is None:
        return _form_error(request, form, "Bulk action refused")
    data = form.cleaned_data
    req = ActionRequest(
        data["action"],
        timeout=data["timeout"] or DEFAULT_GRACE,
        force=data["force"],
        confirmed=data["confirm"],
        stop_first=data["force"] or data["stop_first"],
    )
    hosts = {
        h.name: h
        for h in Host.objects.select_related("client_certificate").filter(
            name__in={host_name for host_name, _ in picked}
        )
    }
    clients = {name: host.client(timeout=ACTION_TIMEOUT) for name, host in hosts.items()}
    jobs = []
    for host_name, name in picked:
        if host_name not in clients:
            jobs.append((UserError(f"no registered host named {host_name}", 404), host_name, name))
        elif error := INSTANCE.error(name):
            jobs.append((UserError(error, 400), host_name, name))
        else:
            jobs.append((clients[host_name], host_name, name))
    results = perform_many(jobs, req)
    for result in results:
        audit_result(request, hosts.get(result.host_name) or result.host_name, result)
    can_operate = has_role(request.user, OPERATOR)
    items = [(result, _result_row(result)) for result in results]
    context = {
        "items": items,
        "action": req.action,
        "can_operate": can_operate,
        "failed": sum(1 for r in results if not r.ok),
    }
    template = "hosts/bulk_results.html#results" if request.htmx else "hosts/bulk_results.html"
    return render(request, template, context)


# -- create --------------------------------------------------------------------------


def _image_aliases(hosts: list[Host]) -> list[str]:
    """Aliases known on the hosts, as suggestions; a host that does not answer adds none."""
    clients = [host.client() for host in hosts]

    def aliases(client):
        try:
            return [a["name"] for image in client.images() for a in image.get("aliases") or []]
        except LXDError:
            return []

    return sorted({alias for found in parallel(aliases, clients) for alias in found})


@require_http_methods(["GET", "POST"])
@role_required(OPERATOR)
def instance_create(request):
    hosts = list(Host.objects.select_related("client_certificate"))
    host_names = [host.name for host in hosts]
    # what an operator may write, shown on the form (hosts/policy.py decides)
    limits = {
        "policy_help": OPERATOR_CONFIG_HELP,
        "operator_profiles": [(host.name, host.operator_profiles) for host in hosts],
    }
    if request.method == "GET":
        form = InstanceCreateForm(initial={"host": request.GET.get("host", "")}, host_names=host_names)
        context = {"form": form, "aliases": _image_aliases(hosts), **limits}
        return render(request, "hosts/instance_create.html", context)
    form = InstanceCreateForm(request.POST, host_names=host_names)
    if not form.is_valid():
        return render(request, "hosts/instance_create.html", {"form": form, **limits}, status=400)
    data = form.cleaned_data
    by_name = {host.name: host for host in hosts}
    host = by_name[data["host"]]
    spec = CreateSpec(
        name=data["name"],
        image=data["image"].strip(),
        image_host=by_name.get(data["image_host"]) if data["image_host"] else None,
        profiles=data["profiles"],
        config=form.config_dict(),
        devices=data["devices"],
        start=data["start"],
    )
    try:
        outcome = create_instance(request, host, spec)
    except PolicyRefused as exc:
        form.add_error(None, f"Not created: {exc}")
        return render(request, "hosts/instance_create.html", {"form": form, **limits}, status=exc.http_status)
    except UserError as exc:
        form.add_error(None, f"{host.name} refused to create {spec.name}: {exc}")
        return render(request, "hosts/instance_create.html", {"form": form, **limits}, status=exc.http_status)
    for note in outcome.notes:
        messages.info(request, note)
    if outcome.start_error is not None:
        messages.warning(
            request, f"{spec.name} was created on {host.name}, but did not start: {outcome.start_error}"
        )
    else:
        started = " and started" if spec.start else ""
        messages.success(request, f"{spec.name} created on {host.name}{started}.")
    return redirect("instance-detail", host=host.name, name=spec.name)
