"""A host's networks: list and detail for everyone; create, edit, rename and delete a managed
bridge for admins (hosts/domain/networks.py)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ..domain import networks as domain
from ..domain.audit import record
from ..domain.config_view import config_entries
from ..domain.roles import ADMIN
from ..lxd import LXDAPIError
from ..lxd.names import NETWORK
from ..models import AuditEntry, Host
from .access import host_view, role_required
from .common import config_changes, config_to_text


class BridgeForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="letters, digits, '-', '_' or '.'; at most 15")
    ipv4_address = forms.CharField(
        label="IPv4 address",
        max_length=64,
        help_text="the bridge's own address with its prefix, e.g. 10.251.5.1/24, or none",
    )
    ipv4_nat = forms.BooleanField(
        label="IPv4 NAT", required=False, initial=False, help_text="off unless ticked"
    )
    ipv6_address = forms.CharField(
        label="IPv6 address", max_length=64, initial="none", help_text="e.g. fd42:1::1/64, or none"
    )
    description = forms.CharField(max_length=255, required=False)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if (error := NETWORK.error(name)) is not None:
            raise forms.ValidationError(error)
        return name

    def _address(self, field: str, family: str) -> str:
        try:
            return domain.address_value(self.cleaned_data[field], family)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_ipv4_address(self) -> str:
        return self._address("ipv4_address", "IPv4")

    def clean_ipv6_address(self) -> str:
        return self._address("ipv6_address", "IPv6")

    def config(self) -> dict[str, str]:
        data = self.cleaned_data
        return {
            "ipv4.address": data["ipv4_address"],
            "ipv4.nat": "true" if data["ipv4_nat"] else "false",
            "ipv6.address": data["ipv6_address"],
        }


class NetworkConfigForm(forms.Form):
    config = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        required=False,
        help_text="One key = value per line. Remove a line to unset that key.",
    )
    description = forms.CharField(max_length=255, required=False)
    etag = forms.CharField(widget=forms.HiddenInput, required=False)

    def parsed(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["config"].splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise forms.ValidationError(f"line {number}: expected key = value")
            result[key.strip()] = value.strip()
        return result


def network_url(host: Host, name: str) -> str:
    return reverse("network-detail", args=[host.name, name])


def _list_page(request, host: Host, form: BridgeForm | None = None, status: int = 200):
    context = {"host": host, "rows": domain.network_rows(host.client()), "form": form or BridgeForm()}
    return render(request, "hosts/networks.html", context, status=status)


def _detail_page(request, host: Host, name: str, form: NetworkConfigForm | None = None, status: int = 200):
    client = host.client()
    row, etag = domain.network(client, name)
    if form is None:
        form = NetworkConfigForm(
            initial={"config": config_to_text(row.config), "description": row.description, "etag": etag}
        )
    context = {"host": host, "network": row, "config": config_entries(row.config, request.user), "form": form}
    try:
        context["leases"] = client.network_leases(name) if row.managed else []
    except LXDAPIError as exc:  # a managed network type without DHCP
        context["leases"], context["leases_error"] = [], str(exc)
    return render(request, "hosts/network_detail.html", context, status=status)


def _refused(request, host: Host, action: str, target: str, error: str) -> None:
    record(request.user, action, host=host, target=target, outcome=AuditEntry.Outcome.REFUSED, error=error)


@require_http_methods(["GET", "POST"])
@host_view()
def network_list(request, host: Host):
    if request.method == "POST":
        return network_create(request, host=host.name)
    return _list_page(request, host)


@role_required(ADMIN)
@host_view()
def network_create(request, host: Host):
    """A managed bridge: its address (never LXD's `auto`), NAT off unless asked for."""
    form = BridgeForm(request.POST)
    if not form.is_valid():
        _refused(request, host, "network.create", request.POST.get("name", ""), form.errors.as_text())
        return _list_page(request, host, form, status=400)
    name = form.cleaned_data["name"]
    try:
        domain.create_bridge(request, host, name, form.config(), form.cleaned_data["description"])
    except domain.NetworkOverlap as exc:
        form.add_error("ipv4_address" if exc.subnet.version == 4 else "ipv6_address", str(exc))
        return _list_page(request, host, form, status=409)
    except LXDAPIError as exc:
        form.add_error(None, f"{host.server_label} refused: {exc}")
        return _list_page(request, host, form, status=exc.http_status)
    nat = "on" if form.cleaned_data["ipv4_nat"] else "off"
    messages.success(
        request, f"Bridge {name} created on {host.name} ({form.config()['ipv4.address']}, NAT {nat})."
    )
    return redirect(network_url(host, name))


@require_safe
@host_view(network=NETWORK)
def network_detail(request, host: Host, network: str):
    return _detail_page(request, host, network)


@require_POST
@role_required(ADMIN)
@host_view(network=NETWORK)
def network_edit(request, host: Host, network: str):
    """The config as key = value lines, replaced whole (PUT) if the ETag still matches."""
    form = NetworkConfigForm(request.POST)
    if not form.is_valid():
        _refused(request, host, "network.edit", network, form.errors.as_text())
        return _detail_page(request, host, network, form, status=400)
    try:
        config = form.parsed()
    except forms.ValidationError as exc:
        form.add_error("config", exc)
        _refused(request, host, "network.edit", network, str(exc.messages[0]))
        return _detail_page(request, host, network, form, status=400)
    data, etag = host.client().network_and_etag(network)
    sent, description = form.cleaned_data["etag"], form.cleaned_data["description"]
    if sent and sent != etag:
        form.add_error(
            None, "The network changed on the host since you opened this page. Reload to see it now."
        )
        _refused(request, host, "network.edit", network, "the ETag moved")
        return _detail_page(request, host, network, form, status=409)
    if not config_changes(data.get("config") or {}, config) and description == data.get("description", ""):
        messages.info(request, "Nothing changed.")
        return redirect(network_url(host, network))
    try:
        domain.edit_network(request, host, network, config, description, sent or etag)
    except domain.NetworkOverlap as exc:
        form.add_error("config", str(exc))
        return _detail_page(request, host, network, form, status=409)
    except LXDAPIError as exc:
        form.add_error(None, f"{host.server_label} refused: {exc}")
        return _detail_page(
            request, host, network, form, status=409 if exc.error_code == 412 else exc.http_status
        )
    messages.success(request, f"Network {network} on {host.name} updated.")
    return redirect(network_url(host, network))


@require_POST
@role_required(ADMIN)
@host_view(network=NETWORK)
def network_rename(request, host: Host, network: str):
    new_name = request.POST.get("new_name", "").strip()
    if (error := NETWORK.error(new_name)) is not None:
        _refused(request, host, "network.rename", f"{network} -> {new_name}", error)
        return render(
            request, "hosts/error.html", {"title": "Invalid network name", "message": error}, status=400
        )
    domain.rename_network(request, host, network, new_name)
    messages.success(request, f"Network {network} renamed to {new_name}.")
    return redirect(network_url(host, new_name))


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
@host_view(network=NETWORK)
def network_delete(request, host: Host, network: str):
    """GET asks for confirmation; POST with confirm=yes deletes (LXD refuses one in use)."""
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        row, _ = domain.network(host.client(), network)
        return render(request, "hosts/network_delete.html", {"host": host, "network": row})
    domain.delete_network(request, host, network)
    messages.success(request, f"Network {network} deleted from {host.name}.")
    return redirect("network-list", host=host.name)
