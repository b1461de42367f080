"""Images: the fleet's list, one host's copy (aliases, properties, auto-update), copies to
other hosts, export, delete, and the import page (the upload itself goes over a websocket:
hosts/views/image_import_socket.py).  Who may do what: hosts/domain/images.py."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from ..domain import image_import as importing
from ..domain import images as domain
from ..domain.audit import record
from ..domain.roles import ADMIN, OPERATOR, has_role
from ..lxd import LXDError
from ..lxd.images import SPLIT_PARTS, MultipartReader, part_name, short_fingerprint
from ..lxd.names import IMAGE_ALIAS, IMAGE_FINGERPRINT
from ..models import AuditEntry, Host
from .access import host_view, role_required
from .sorting import Column, Sorting
from .streaming import streamed_download

CHUNK = 1024 * 1024
PROPERTY_KEY_MAX = 255


def image_url(host: str, fingerprint: str) -> str:
    return reverse("image-detail", args=[host, fingerprint])


IMAGE_COLUMNS = (
    Column("fingerprint", "Fingerprint", lambda i: i.fingerprint),
    Column("aliases", "Aliases"),
    Column("description", "Description", lambda i: (i.description.casefold(), i.fingerprint)),
    Column("size", "Size", lambda i: int(i.first.get("size") or 0), num=True),
    Column("architecture", "Architecture", lambda i: str(i.first.get("architecture") or "")),
    Column("type", "Type", lambda i: str(i.first.get("type") or "")),
    Column("created", "Created", lambda i: str(i.first.get("created_at") or "")),
    Column("last_used", "Last used"),
    Column("holders", "Held by", lambda i: len(i.copies)),
)


@require_safe
def image_list(request):
    """Every image of every host (or of ?host=), one row per fingerprint."""
    hosts = list(Host.objects.select_related("client_certificate").order_by("name"))
    only = request.GET.get("host", "")
    if only:
        hosts = [h for h in hosts if h.name == only]
    fleet = domain.fleet_images(hosts)
    sorting = Sorting.from_params(request.GET, IMAGE_COLUMNS, default="description", desc=False)
    context = {
        "fleet": fleet,
        "images": sorting.sorted(fleet.images),
        "headers": sorting.headers(request.GET),
        "only": only,
        "host_names": [h.name for h in hosts],
    }
    return render(request, "hosts/images.html", context)


def _other_hosts(host: Host) -> list[Host]:
    return list(Host.objects.select_related("client_certificate").exclude(pk=host.pk).order_by("name"))


@require_safe
@host_view(fingerprint=IMAGE_FINGERPRINT)
def image_detail(request, host: Host, fingerprint: str):
    client = host.client()
    image, etag = client.image_and_etag(fingerprint)
    others = _other_hosts(host)
    holders = {
        c.host for i in domain.fleet_images(others).images if i.fingerprint == fingerprint for c in i.copies
    }
    context = {
        "host": host,
        "image": image,
        "fingerprint": fingerprint,
        "short": short_fingerprint(fingerprint),
        "etag": etag,
        "aliases": sorted(str(a.get("name")) for a in image.get("aliases") or []),
        "properties": "\n".join(f"{k} = {v}" for k, v in sorted((image.get("properties") or {}).items())),
        "also_on": sorted(holders),
        "copy_targets": [h.name for h in others if h.name not in holders],
        "instances": domain.instances_from(client, fingerprint),
    }
    return render(request, "hosts/image_detail.html", context)


def _parse_properties(text: str) -> dict[str, str]:
    properties: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or len(key.strip()) > PROPERTY_KEY_MAX:
            raise ValueError(f"line {number}: expected key = value")
        properties[key.strip()] = value.strip()
    return properties


def _refuse(request, host: Host, action: str, target: str, message: str, status: int):
    record(request.user, action, host=host, target=target, outcome=AuditEntry.Outcome.REFUSED, error=message)
    return render(request, "hosts/error.html", {"title": "Refused", "message": message}, status=status)


@require_POST
@role_required(OPERATOR)
@host_view(fingerprint=IMAGE_FINGERPRINT)
def image_edit(request, host: Host, fingerprint: str):
    """Properties and auto-update (operators); public (admins only: it opens the image to
    anyone who reaches the host)."""
    try:
        properties = _parse_properties(request.POST.get("properties", ""))
    except ValueError as exc:
        return _refuse(request, host, "image.edit", fingerprint, f"The properties are not valid: {exc}.", 400)
    public = None
    if "public" in request.POST or "public_shown" in request.POST:
        public = request.POST.get("public") in ("on", "1", "yes")
        if not has_role(request.user, ADMIN):
            current = bool(host.client().image(fingerprint).get("public"))
            if public != current:
                return _refuse(
                    request,
                    host,
                    "image.edit",
                    fingerprint,
                    "Making an image public (or private) needs the admin role: a public image is served "
                    "to anyone who reaches the host.",
                    403,
                )
            public = None
    try:
        domain.update_image(
            request,
            host,
            fingerprint,
            properties=properties,
            auto_update=request.POST.get("auto_update") in ("on", "1", "yes"),
            public=public,
            etag=request.POST.get("etag", ""),
        )
    except LXDError as exc:
        if getattr(exc, "error_code", 0) == 412:
            message = (
                "The image changed on the host since you opened this page. Reload to see it as it is now."
            )
            return render(
                request, "hosts/error.html", {"title": "Changed meanwhile", "message": message}, status=409
            )
        raise
    messages.success(request, f"Image {short_fingerprint(fingerprint)} on {host.name} updated.")
    return redirect(image_url(host.name, fingerprint))


@require_POST
@role_required(OPERATOR)
@host_view(fingerprint=IMAGE_FINGERPRINT)
def image_aliases(request, host: Host, fingerprint: str):
    """POST add=ALIAS or remove=ALIAS."""
    verb = "add" if "add" in request.POST else "remove"
    alias = request.POST.get(verb, "").strip()
    if (error := IMAGE_ALIAS.error(alias)) is not None:
        return _refuse(request, host, f"image.alias.{verb}", f"{alias} -> {fingerprint}", error, 400)
    if verb == "add":
        domain.add_alias(request, host, fingerprint, alias)
        messages.success(request, f"Alias {alias} now points to image {short_fingerprint(fingerprint)}.")
    else:
        domain.remove_alias(request, host, fingerprint, alias)
        messages.success(request, f"Alias {alias} removed from {host.name}.")
    return redirect(image_url(host.name, fingerprint))


@require_POST
@role_required(OPERATOR)
@host_view(fingerprint=IMAGE_FINGERPRINT)
def image_copy(request, host: Host, fingerprint: str):
    """Copy to the ticked hosts (`target`), each pulling from this host; the page shows each
    copy's bar live (the relay), and this answers once every copy has ended."""
    names = sorted(set(request.POST.getlist("target")))
    targets = list(Host.objects.select_related("client_certificate").filter(name__in=names))
    if not names or len(targets) != len(names):
        unknown = sorted(set(names) - {t.name for t in targets})
        message = (
            f"There is no host named {unknown[0]}." if unknown else "Choose at least one host to copy to."
        )
        return _refuse(request, host, "image.copy", fingerprint, message, 400)
    aliases = []
    if request.POST.get("copy_aliases"):
        aliases = sorted(str(a.get("name")) for a in host.client().image(fingerprint).get("aliases") or [])
    results = domain.copy_image(request, host, fingerprint, targets, aliases=aliases)
    failed = any(not r.ok for r in results)
    if request.htmx:
        html = render_to_string("hosts/partials/image_copy_results.html", {"results": results}, request)
        return HttpResponse(html, status=502 if failed and all(not r.ok for r in results) else 200)
    for result in results:
        (messages.success if result.ok else messages.error)(request, result.message)
    return redirect(image_url(host.name, fingerprint))


@require_GET
@host_view(fingerprint=IMAGE_FINGERPRINT)
def image_export(request, host: Host, fingerprint: str):
    """The image as LXD exports it, streamed.  A split image comes from LXD as two files in
    one multipart answer: ?part=metadata or ?part=rootfs picks one (without it, a page
    offers both)."""
    export = host.client().open_image_export(fingerprint)
    if not export.split:
        return streamed_download(
            request,
            export.response.iter_content(chunk_size=CHUNK),
            export.response.close,
            filename=export.filename,
            size=export.size,
        )
    wanted = request.GET.get("part", "")
    if wanted not in SPLIT_PARTS:
        export.response.close()
        context = {"host": host, "fingerprint": fingerprint, "short": short_fingerprint(fingerprint)}
        return render(request, "hosts/image_export_split.html", context, status=200 if not wanted else 400)
    reader = MultipartReader(export.response.iter_content(chunk_size=CHUNK), export.boundary)
    try:
        while (headers := reader.next_part()) is not None:
            name, filename = part_name(headers)
            if name == wanted or (wanted == "rootfs" and name.startswith("rootfs")):
                return streamed_download(
                    request,
                    reader.data(),
                    export.response.close,
                    filename=filename or f"{wanted}-{fingerprint}",
                    size=None,
                )
    except BaseException:
        export.response.close()
        raise
    export.response.close()
    raise LXDError(f"{host.name} exported image {short_fingerprint(fingerprint)} without a {wanted} part")


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
@host_view(fingerprint=IMAGE_FINGERPRINT)
def image_delete(request, host: Host, fingerprint: str):
    """GET: what deleting means (the instances made from it stay: LXD allows it); POST with
    confirm=yes deletes."""
    client = host.client()
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        context = {
            "host": host,
            "fingerprint": fingerprint,
            "short": short_fingerprint(fingerprint),
            "image": client.image(fingerprint),
            "instances": domain.instances_from(client, fingerprint),
        }
        return render(request, "hosts/image_delete.html", context)
    instances = domain.instances_from(client, fingerprint)
    domain.delete_image(request, host, fingerprint)
    note = (
        f" {len(instances)} instance(s) made from it ({', '.join(instances)}) keep running: LXD allows this, "
        "but they can no longer be rebuilt from it here."
        if instances
        else ""
    )
    messages.success(request, f"Image {short_fingerprint(fingerprint)} deleted from {host.name}.{note}")
    return redirect(reverse("image-list") + f"?host={host.name}")


@require_safe
def image_import(request):
    """The upload page: the file(s) go over a websocket (static/js/images.js)."""
    hosts = list(Host.objects.order_by("name").values_list("name", flat=True))
    context = {
        "host_names": hosts,
        "chosen": request.GET.get("host", ""),
        "max_bytes": importing.max_bytes(),
        "can_import": has_role(request.user, OPERATOR),
    }
    return render(request, "hosts/image_import.html", context)
