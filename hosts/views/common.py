"""Small helpers shared by the views."""

from collections.abc import Callable, Iterator
from functools import wraps

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import content_disposition_header

from ..config_view import config_value
from ..lxd import LXDError
from ..lxd.names import NameRule
from ..models import Host
from ..policy import PolicyRefused


def render_lxd_error(request, exc: LXDError, *, title: str = "LXD refused", status: int | None = None):
    """Show LXD's own error text on a page, with a status that fits."""
    return render(
        request,
        "hosts/error.html",
        {"title": title, "message": str(exc)},
        status=status or exc.http_status,
    )


def config_to_text(config: dict) -> str:
    return "\n".join(f"{key} = {config_value(value)}" for key, value in sorted((config or {}).items()))


def config_changes(original: dict, edited: dict[str, str]) -> dict[str, str]:
    """Only what the person changed: new or changed keys, and "" for removed ones."""
    changes = {
        key: value
        for key, value in edited.items()
        if config_value(original.get(key)) != value or key not in original
    }
    changes.update({key: "" for key in original if key not in edited})
    return changes


def lxd_names(**rules: NameRule):
    """Check the LXD names a URL carries (URL keyword -> rule) before the view runs: a bad one
    is a 400 page naming the rule, and never reaches LXD."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            for key, rule in rules.items():
                if key in kwargs and (error := rule.error(kwargs[key])) is not None:
                    return render(
                        request,
                        "hosts/error.html",
                        {"title": f"Invalid {rule.what}", "message": error},
                        status=400,
                    )
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def host_view(**rules: NameRule):
    """For the pages of one host's images, networks and storage (URL keyword `host`): the LXD
    names in the URL are checked first (lxd_names), the host is looked up (404), and an LXD
    failure or a policy refusal becomes a page with LXD's text and a status that fits.  The
    view gets the Host itself."""

    def decorator(view):
        @lxd_names(**rules)
        @wraps(view)
        def wrapped(request, host, *args, **kwargs):
            host_obj = get_object_or_404(Host.objects.select_related("client_certificate"), name=host)
            try:
                return view(request, host_obj, *args, **kwargs)
            except PolicyRefused as exc:
                return render(
                    request, "hosts/error.html", {"title": "Not allowed", "message": str(exc)}, status=403
                )
            except LXDError as exc:
                return render_lxd_error(request, exc, title=f"{host_obj.name}: LXD refused")

        return wrapped

    return decorator


def streamed_download(
    request, chunks: Iterator[bytes], close: Callable[[], None], *, filename: str, size: int | None
) -> StreamingHttpResponse:
    """A download streamed from a host to the browser chunk by chunk (never whole in memory;
    dashboard/backpressure.py paces it to the browser).  `close` ends the host's answer."""
    body = _async_chunks(chunks, close) if isinstance(request, ASGIRequest) else _closing(chunks, close)
    streamed = StreamingHttpResponse(body, content_type="application/octet-stream")
    if size is not None:
        streamed["Content-Length"] = str(size)
    streamed["Content-Disposition"] = content_disposition_header(True, filename)
    streamed["X-Content-Type-Options"] = "nosniff"
    return streamed


def _closing(chunks: Iterator[bytes], close: Callable[[], None]) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        close()


async def _async_chunks(chunks: Iterator[bytes], close: Callable[[], None]):
    """Under ASGI Django would read a sync iterator whole into a list: hand it over chunk by
    chunk from a worker thread instead, so a large download never sits in memory."""
    pull = sync_to_async(next, thread_sensitive=False)
    try:
        while (chunk := await pull(chunks, None)) is not None:
            yield chunk
    finally:
        # The client may have gone while a read runs in the worker: close the connection to
        # LXD from here (closing the generator would race with that read).
        close()
