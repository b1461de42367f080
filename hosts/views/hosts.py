"""Hosts: list, register, detail (the seed's server information), config, remove, re-pin."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ..domain import pending_hosts
from ..domain.audit import audited, record
from ..domain.config_view import config_entries
from ..domain.hoststatus import probe_host, probe_hosts
from ..domain.policy import OPERATOR_CONFIG_HELP
from ..domain.registration import (
    ConfirmationNeeded,
    RegistrationError,
    probe_certificate,
    register_host,
    remove_host,
    repin,
)
from ..domain.resources import summarise
from ..domain.roles import ADMIN
from ..lxd import LXDAPIError, LXDError, parse_endpoint
from ..lxd.certs import normalise_fingerprint
from ..lxd.errors import UserError
from ..lxd.names import PROFILE
from ..models import Host
from .access import host_view, role_required
from .common import config_changes, config_to_text
from .host_forms import ConfirmForm, HostAddForm, PendingHostForm, RemoveHostForm, ServerConfigForm


@require_safe
def host_list(request):
    states = probe_hosts(list(Host.objects.select_related("client_certificate")))
    template = "hosts/host_list.html#table" if request.htmx else "hosts/host_list.html"
    return render(request, template, {"states": states})


@sensitive_variables("data", "secret", "pending")
@sensitive_post_parameters("secret")
@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def host_add(request):
    if request.method == "GET":
        return render(request, "hosts/host_add.html", {"form": HostAddForm()})
    if "pending" in request.POST:
        return _host_add_confirmed(request)
    form = HostAddForm(request.POST)
    if not form.is_valid():
        return render(request, "hosts/host_add.html", {"form": form}, status=400)
    data = form.cleaned_data
    try:
        return _register(request, data, data["fingerprint"] or None)
    except ConfirmationNeeded as exc:
        # The secret stays on the server until the person confirms (hosts/pending_hosts.py).
        pending = pending_hosts.keep(request.session, data, exc.fingerprint)
        return _confirm_page(request, data, exc.fingerprint, exc.endpoint, pending)
    except RegistrationError as exc:
        form.add_error(None, str(exc))
        return render(request, "hosts/host_add.html", {"form": form}, status=400)


@sensitive_variables("pending")
def _host_add_confirmed(request):
    form = PendingHostForm(request.POST)
    pending = pending_hosts.take(request.session, form.cleaned_data["pending"]) if form.is_valid() else None
    if pending is None:
        error = "This registration expired or was already confirmed: please start again."
        return render(request, "hosts/host_add.html", {"form": HostAddForm(), "error": error}, status=400)
    try:
        return _register(request, pending.data, pending.fingerprint)
    except RegistrationError as exc:
        # The secret is not put back into the page: the person types it again.
        form = HostAddForm(
            initial={k: v for k, v in pending.data.items() if k not in ("secret", "fingerprint")}
        )
        return render(request, "hosts/host_add.html", {"form": form, "error": str(exc)}, status=400)


@sensitive_variables("data", "secret")
def _register(request, data: dict, fingerprint: str | None):
    """Register or raise ConfirmationNeeded / RegistrationError (failures audited here)."""
    secret = data["secret"] or None
    try:
        host = register_host(
            data["name"],
            data["url"],
            password=secret if data["auth"] == "password" else None,
            token=secret if data["auth"] == "token" else None,
            fingerprint=fingerprint,
            project=data["project"] or "default",
        )
    except ConfirmationNeeded:
        raise
    except RegistrationError as exc:
        record(
            request.user, "host.add", host=data["name"], target=data["url"], outcome="failed", error=str(exc)
        )
        raise
    record(request.user, "host.add", host=host, target=host.endpoint)
    messages.success(request, f"Host {host.name} registered and trusted.")
    return redirect("host-detail", host=host.name)


def _confirm_page(request, data: dict, fingerprint: str, endpoint, pending: str):
    auth = dict(HostAddForm.AUTH_CHOICES).get(data["auth"], data["auth"])
    context = {
        "confirm": PendingHostForm(initial={"pending": pending}),
        "confirm_fingerprint": fingerprint,
        "endpoint": endpoint,
        "summary": [("Name", data["name"]), ("Project", data["project"] or "default"), ("Trust", auth)],
    }
    return render(request, "hosts/host_add.html", context)


def _server_sections(info: dict) -> dict:
    env = info.get("environment") or {}
    return {
        "api": [
            ("API version", info.get("api_version")),
            ("API status", info.get("api_status")),
            ("Extensions", len(info.get("api_extensions") or [])),
            ("Auth", info.get("auth")),
            ("Auth methods", ", ".join(info.get("auth_methods") or [])),
            ("Public", info.get("public")),
        ],
        "server": [
            ("Server", env.get("server")),
            ("Server name", env.get("server_name")),
            ("Version", env.get("server_version")),
            ("Clustered", env.get("server_clustered")),
            (
                "Kernel",
                f"{env.get('kernel', '')} {env.get('kernel_version', '')} ({env.get('kernel_architecture', '')})",
            ),
            ("Architectures", ", ".join(env.get("architectures") or [])),
            ("Driver", f"{env.get('driver', '')} {env.get('driver_version', '')}"),
            ("Storage", f"{env.get('storage', '')} {env.get('storage_version', '')}"),
            ("Addresses", ", ".join(env.get("addresses") or []) or "—"),
            ("Certificate fingerprint", env.get("certificate_fingerprint")),
        ],
        "extensions": info.get("api_extensions") or [],
    }


def _profile_rows(host: Host, on_host: list[str]) -> list[dict]:
    """Each profile of the host, and each allowed one it no longer has, with its mark."""
    allowed = set(host.operator_profiles or ())
    return [
        {"name": name, "allowed": name in allowed, "missing": name not in on_host}
        for name in sorted(set(on_host) | allowed)
    ]


@require_safe
@host_view()
def host_detail(request, host: Host):
    state = probe_host(host)
    host.record_server(state.server)
    config = config_entries((state.info or {}).get("config"), request.user)
    context = {"host": host, "state": state, "config": config}
    if state.online:
        context["sections"] = _server_sections(state.info)
        context["policy_help"] = OPERATOR_CONFIG_HELP
        try:
            context["profiles"] = _profile_rows(host, host.client().profiles())
        except LXDError as exc:
            context["profiles_error"] = str(exc)
        try:
            context["resources"] = summarise(host.client().resources())
        except LXDError as exc:
            context["resources_error"] = str(exc)
    return render(request, "hosts/host_detail.html", context, status=200 if state.online else 502)


@require_POST
@host_view(ADMIN)
def host_profiles(request, host: Host):
    """Mark the profiles operators may attach on this host (every checked box; the rest unmarked)."""
    chosen = sorted(set(request.POST.getlist("profile")))
    for profile in chosen:
        PROFILE.check(profile)
    on_host = host.client().profiles()
    # an allowed profile the host no longer has may still be unmarked, never newly marked
    unknown = [p for p in chosen if p not in on_host and p not in (host.operator_profiles or ())]
    if unknown:
        raise UserError(f"{host.name} has no profile {unknown[0]}.", 400)
    with audited(request, "host.operator_profiles", host=host, target=", ".join(chosen) or "(none)"):
        Host.objects.filter(pk=host.pk).update(operator_profiles=chosen)
    messages.success(
        request, f"Operators may attach on {host.name}: {', '.join(chosen) or 'no profile at all'}."
    )
    return redirect("host-detail", host=host.name)


@require_http_methods(["GET", "POST"])
@host_view(ADMIN)
def host_config(request, host: Host):
    client = host.client()
    info, etag = client.server()
    original = info.get("config") or {}
    if request.method == "GET":
        form = ServerConfigForm(initial={"config": config_to_text(original), "etag": etag})
        return render(request, "hosts/host_config.html", {"host": host, "form": form})
    form = ServerConfigForm(request.POST)
    status = 400
    if form.is_valid():
        edited, sent_etag = form.cleaned_data["config"], form.cleaned_data["etag"]
        changes = config_changes(original, edited)
        if sent_etag and sent_etag != etag:
            form.add_error(
                None,
                "The configuration changed on the host since you opened this page. "
                "Reload to see the current values.",
            )
            status = 409
        elif not changes:
            messages.info(request, "Nothing changed.")
            return redirect("host-detail", host=host.name)
        else:
            target = ", ".join(sorted(changes))
            try:
                with audited(request, "host.config", host=host, target=target):
                    client.patch_server_config(changes, sent_etag or etag)
            except LXDAPIError as exc:
                form.add_error(None, f"{host.server_label} refused the change: {exc}")
                status = 409 if exc.error_code == 412 else 400
            else:
                messages.success(request, f"Configuration of {host.name} updated: {target}.")
                return redirect("host-detail", host=host.name)
    return render(request, "hosts/host_config.html", {"host": host, "form": form}, status=status)


@require_http_methods(["GET", "POST"])
@host_view(ADMIN)
def host_remove(request, host: Host):
    name = host.name
    if request.method == "GET":
        return render(request, "hosts/host_remove.html", {"host": host, "form": RemoveHostForm()})
    form = RemoveHostForm(request.POST)
    form.is_valid()
    warning = remove_host(host, revoke=form.cleaned_data.get("revoke", False))
    record(request.user, "host.remove", host=name, target=host.endpoint, error=warning or "")
    if warning:
        messages.warning(request, warning)
    messages.success(request, f"Host {name} removed.")
    return redirect("home")


@require_http_methods(["GET", "POST"])
@host_view(ADMIN)
def host_repin(request, host: Host):
    if host.is_unix:
        raise Http404("a unix socket host has no certificate")
    try:
        _, seen = probe_certificate(parse_endpoint(host.endpoint))
    except RegistrationError as exc:
        raise UserError(str(exc), 504) from exc
    context = {"host": host, "seen": seen, "form": ConfirmForm(initial={"fingerprint": seen})}
    if request.method == "POST":
        form = ConfirmForm(request.POST)
        if form.is_valid() and normalise_fingerprint(form.cleaned_data["fingerprint"]) == seen:
            try:
                repin(host, seen)
            except RegistrationError as exc:
                record(request.user, "host.repin", host=host, target=seen, outcome="failed", error=str(exc))
                context["error"] = str(exc)
                return render(request, "hosts/host_repin.html", context, status=409)
            record(request.user, "host.repin", host=host, target=seen)
            messages.success(request, f"{host.name} is now pinned to {seen}.")
            return redirect("host-detail", host=host.name)
        context["error"] = "The certificate changed again while you were checking it; compare once more."
        return render(request, "hosts/host_repin.html", context, status=409)
    return render(request, "hosts/host_repin.html", context)
