"""Files of one instance (running or stopped): browse, view, download, upload, new folder, delete.

Downloads stream LXD's response to the browser chunk by chunk; uploads stream the request body
(raw PUT) or the spooled multipart file to LXD (hosts/uploads.py); the browser's own upload
goes over a websocket (hosts/upload_consumer.py) so nothing is held whole anywhere.
"""

from __future__ import annotations

import codecs
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from ..domain import paths, uploads
from ..domain.audit import audited
from ..domain.roles import OPERATOR, VIEWER
from ..lxd.errors import LXDError, UserError
from ..lxd.names import INSTANCE
from ..models import Host
from .access import host_view
from .streaming import CHUNK as STREAM_CHUNK
from .streaming import streamed_download

CHUNK = 1024 * 1024


def files_view(role: str = VIEWER):
    """host_view for the files of one instance: refusals and LXD's failures become the files
    error page (with a way back), or plain text for a script's PUT."""
    return host_view(role, on_error=_refused, name=INSTANCE)


def _refused(request, host: Host, exc: UserError, name: str):
    return _refuse(request, host, name, str(exc), exc.http_status)


def _refuse(request, host: Host, name: str, message: str, status: int):
    if request.method == "PUT":
        return _plain(message, status)
    context = {"title": f"{name} on {host.name}", "message": message, "host": host, "name": name}
    try:  # offer a way back to the nearest directory that can be shown
        context["back"] = paths.parent_of(_path(request.GET.get("path") or request.POST.get("dir")))
    except paths.BadPath:
        context["back"] = "/"
    return render(request, "hosts/files_error.html", context, status=status)


def _plain(message: str, status: int) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _path(value: str | None) -> str:
    return paths.normalise_path(value)


def files_url(host: Host, name: str, path: str) -> str:
    return reverse("instance-files", args=[host.name, name]) + "?path=" + quote(path, safe="/")


def instance_url(host: Host, name: str) -> str:
    return reverse("instance-detail", args=[host.name, name])


def _owner_names(client, name: str) -> dict[str, dict[int, str]]:
    """uid/gid -> name from the instance's own /etc/passwd and /etc/group (best effort)."""
    names: dict[str, dict[int, str]] = {"user": {}, "group": {}}
    for kind, path in (("user", "/etc/passwd"), ("group", "/etc/group")):
        try:
            _, data, _ = client.read_file(name, path, 256 * 1024)
        except LXDError:
            continue
        for line in data.decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                names[kind].setdefault(int(fields[2]), fields[0])
    return names


def _text_or_none(data: bytes, truncated: bool) -> str | None:
    """The text of a file, or None when it is binary or not UTF-8 (offered as a download)."""
    if b"\x00" in data[:8192]:
        return None
    try:
        if truncated:  # the cut may fall inside a multi-byte character
            return codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@require_GET
@files_view()
def instance_files(request, host: Host, name: str):
    """A directory listing, a file's content, or where a symlink points: whatever `path` is."""
    path = _path(request.GET.get("path"))
    client = host.client()
    instance = client.instance_brief(name)
    info = client.file_info(name, path)
    context = {
        "host": host,
        "instance": instance,
        "instance_url": instance_url(host, name),
        "path": path,
        "info": info,
        "crumbs": paths.breadcrumbs(path),
        "parent": paths.parent_of(path),
        "max_upload": uploads.max_upload_bytes(),
        "max_http_upload": uploads.max_http_upload_bytes(),
    }
    if info.is_dir:
        entries, context["not_shown"] = client.list_directory(name, path)
        owners = _owner_names(client, name)
        context["entries"] = [
            {
                "info": e,
                "owner": owners["user"].get(e.uid, e.uid) if e.uid is not None else "",
                "group": owners["group"].get(e.gid, e.gid) if e.gid is not None else "",
                "link": paths.resolve_link(path, e.target) if e.is_link else None,
            }
            for e in entries
        ]
    elif info.is_link:
        context["target"] = client.symlink_target(name, path)
        context["link"] = paths.resolve_link(context["parent"], context["target"])
    else:
        limit = settings.DASHBOARD_FILE_VIEW_BYTES
        info, data, truncated = client.read_file(name, path, limit)
        owners = _owner_names(client, name)
        context.update(
            info=info,
            truncated=truncated,
            limit=limit,
            text=_text_or_none(data, truncated),
            owner=owners["user"].get(info.uid, "?"),
            group=owners["group"].get(info.gid, "?"),
        )
    return render(request, "hosts/files.html", context)


@require_GET
@files_view()
def file_download(request, host: Host, name: str):
    path = _path(request.GET.get("path"))
    info, response = host.client().open_file(name, path)
    return streamed_download(
        request,
        response.iter_content(chunk_size=STREAM_CHUNK),
        response.close,
        filename=info.name,
        size=info.size,
    )


@require_http_methods(["POST", "PUT"])
@files_view(OPERATOR)
def file_upload(request, host: Host, name: str):
    """PUT ?path=/dir/file with the raw body (streamed), or POST the page's multipart form."""
    limit = uploads.max_http_upload_bytes()
    length = _content_length(request)
    if request.method == "PUT":
        if length is not None and length > limit:
            raise uploads.too_large(limit)
        upload = uploads.Upload(
            name,
            _path(request.GET.get("path")),
            size=length,
            mode=paths.parse_mode(request.GET.get("mode")),
            uid=paths.parse_id(request.GET.get("uid"), "uid"),
            gid=paths.parse_id(request.GET.get("gid"), "gid"),
            overwrite=request.GET.get("overwrite", "") in ("1", "yes", "true", "on"),
            limit=limit,
        )
        written = _push(request, host, upload, uploads.request_chunks(request))
        verb = "Replaced" if upload.replaces else "Created"
        return _plain(f"{verb} {upload.path} ({written} bytes).", 200 if upload.replaces else 201)

    if length is not None and length > uploads.max_http_body_bytes():
        raise uploads.too_large(limit)  # refuse before parsing a body we would throw away
    try:
        form = request.POST
        uploaded = request.FILES.get("file")
    except RequestDataTooBig as exc:
        raise UserError("The text is too long for the form: upload it as a file instead.", 413) from exc
    except MultiPartParserError as exc:
        raise UserError(f"The upload form could not be read: {exc}", 400) from exc
    directory = _path(form.get("dir"))
    target_name = form.get("name") or (uploaded.name if uploaded else "")
    if uploaded is not None:
        size, chunks = uploaded.size, uploaded.chunks(CHUNK)
    elif "content" in form:
        data = form["content"].replace("\r\n", "\n").encode("utf-8")
        size, chunks = len(data), iter([data])
    else:
        raise UserError("Choose a file to upload.", 400)
    upload = uploads.Upload(
        name,
        paths.join(directory, target_name),
        size=size,
        mode=paths.parse_mode(form.get("mode")),
        uid=paths.parse_id(form.get("uid"), "uid"),
        gid=paths.parse_id(form.get("gid"), "gid"),
        overwrite=form.get("overwrite") in ("1", "on", "yes"),
        limit=limit,
    )
    written = _push(request, host, upload, chunks)
    verb = "Replaced" if upload.replaces else "Created"
    messages.success(request, f"{verb} {upload.path} ({written} bytes).")
    return redirect(files_url(host, name, directory))


def _content_length(request) -> int | None:
    try:
        value = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return value if value >= 0 else None


def _push(request, host: Host, upload: uploads.Upload, chunks) -> int:
    with audited(request, "file.push", host=host, target=f"{upload.instance}:{upload.path}"):
        return uploads.push(host.client(), upload, chunks)


@require_http_methods(["POST"])
@files_view(OPERATOR)
def file_mkdir(request, host: Host, name: str):
    directory = _path(request.POST.get("dir"))
    path = paths.join(directory, request.POST.get("name"))
    mode = paths.parse_mode(request.POST.get("mode"))
    with audited(request, "file.mkdir", host=host, target=f"{name}:{path}"):
        host.client().make_directory(name, path, mode=mode)
    messages.success(request, f"Created the directory {path}.")
    return redirect(files_url(host, name, directory))


@require_http_methods(["GET", "POST"])
@files_view(OPERATOR)
def file_delete(request, host: Host, name: str):
    """GET asks for confirmation; POST (with confirm=yes) deletes a file, link or empty directory."""
    source = request.POST if request.method == "POST" else request.GET
    path = _path(source.get("path"))
    if path == "/":
        raise UserError("The root directory cannot be deleted.", 400)
    client = host.client()
    instance = client.instance_brief(name)
    info = client.file_info(name, path)
    if request.method == "GET" or source.get("confirm") != "yes":
        context = {"host": host, "instance": instance, "path": path, "info": info}
        return render(request, "hosts/file_delete.html", context)
    with audited(request, "file.delete", host=host, target=f"{name}:{path}"):
        client.delete_file(name, path)
    kind = "directory" if info.is_dir else ("link" if info.is_link else "file")
    messages.success(request, f"Deleted the {kind} {path}.")
    return redirect(files_url(host, name, paths.parent_of(path)))
