"""Importing the lxc or incus tool's remotes from the browser (admins): the same import as
`manage.py importremotes` (hosts/domain/remotes.py), from files uploaded or pasted.

Step one reads the files and lists the remotes; the files (the client key among them) stay on
the server, encrypted in the session (hosts/domain/pending_hosts.py), named in the page by a
one-time reference.  Step two imports the remotes ticked, with a trust token per remote where
one is given, and shows a line per remote."""

from __future__ import annotations

from dataclasses import asdict

from django.shortcuts import render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from ..domain import pending_hosts
from ..domain.audit import record
from ..domain.remotes import CLIConfig, RemotesError, import_remotes, parse_remotes, skip_reason
from ..domain.roles import ADMIN
from ..lxd.errors import UserError
from .access import error_page, role_required
from .remote_forms import ImportRemotesForm

SESSION_KEY = "hosts.remote_imports"
TEMPLATE = "hosts/host_import.html"


@sensitive_variables("form", "config")
@sensitive_post_parameters("client_key_text")
@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def host_import(request):
    if request.method == "GET":
        return render(request, TEMPLATE, {"form": ImportRemotesForm()})
    if "ref" in request.POST:
        return _import(request, request.POST["ref"])
    form = ImportRemotesForm(request.POST, request.FILES)
    if not form.is_valid():
        record(request.user, "host.import", target="(upload)", outcome="refused", error=form.errors.as_text())
        return render(request, TEMPLATE, {"form": form}, status=400)
    try:
        remotes = parse_remotes(form.config.config_yml)
    except RemotesError as exc:
        record(request.user, "host.import", target="(upload)", outcome="refused", error=str(exc))
        form.add_error(None, str(exc))
        return render(request, TEMPLATE, {"form": form}, status=400)
    ref = pending_hosts.keep_data(request.session, SESSION_KEY, asdict(form.config))
    return render(request, TEMPLATE, {"ref": ref, "rows": _rows(remotes, form.config)})


def _rows(remotes, config: CLIConfig) -> list[dict]:
    rows = []
    for remote in remotes:
        reason = skip_reason(remote)
        if reason is None and not remote.is_unix and remote.name not in config.server_certs:
            reason = "no server certificate for it among the files"
        rows.append({"remote": remote, "skip": reason, "token": reason is None and not remote.is_unix})
    return rows


@sensitive_variables("tokens", "stored")
def _import(request, ref: str):
    stored = pending_hosts.peek_data(request.session, SESSION_KEY, ref)
    if stored is None:
        exc = UserError("This import expired or was never started: upload the files again.", 400)
        return error_page(request, exc, title="Import expired")
    names = request.POST.getlist("remote")
    if not names:
        return error_page(request, UserError("Tick at least one remote to import.", 400))
    tokens = {name: request.POST.get(f"token-{name}", "") for name in names}
    outcomes = import_remotes(CLIConfig(**stored), names=names, tokens=tokens, user=request.user)
    return render(request, TEMPLATE, {"outcomes": outcomes})
