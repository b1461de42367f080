"""Request bodies over the limit are refused at the door (413), before daphne reads them.

Daphne (Twisted) reads a whole HTTP request body before the application runs, then puts all of
it into the application's queue at once: an anonymous 256 MiB POST to the login page grew the
process by 263 MiB before Django could even refuse it (403, CSRF).  Django's own limits
(DATA_UPLOAD_MAX_MEMORY_SIZE) act only once the body is already in memory, so the limit is
enforced in daphne's Request, the one place that sees the body as it arrives:

- `gotLength`: the headers are in; a Content-Length over the limit is refused at once, before a
  byte of the body is read (a client that sent `Expect: 100-continue` never sends it);
- `handleContentChunk`: a chunked body (no Content-Length) is counted as it arrives and refused
  as soon as the count passes the limit.

The refusal is a short plain-text 413 written straight to the socket, then the connection is
closed (the rest of the body is never read, so the connection cannot be reused): the same way
Twisted itself answers a malformed request.

The limit depends on the path: the plain-HTTP upload route reads up to
DASHBOARD_MAX_HTTP_UPLOAD_BYTES (plus multipart framing), every other route
DASHBOARD_MAX_REQUEST_BODY_BYTES (Django's DATA_UPLOAD_MAX_MEMORY_SIZE plus a little).  The
trade-off: anyone, logged in or not, can still make daphne hold up to the upload limit per
request on the upload route (the session is checked by Django, after the body is read); in
production a reverse proxy with its own body limit belongs in front.

`install()` (called from dashboard/asgi.py, which both `daphne dashboard.asgi:application` and
`manage.py runserver` import before they build their server) makes daphne's HTTP factory use
BoundedRequest.  HTTP/1.x only: daphne speaks HTTP/2 only over TLS with the optional `h2`
package, which we do not install.
"""

from __future__ import annotations

from io import BytesIO
from urllib.parse import unquote

from daphne.http_protocol import HTTPFactory, WebRequest
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.urls import Resolver404, resolve

UPLOAD_ROUTE = "instance-file-upload"


def body_limit(path: str) -> tuple[int, str]:
    """The largest request body (bytes) accepted for this path, and what a larger one is told."""
    try:
        name = resolve(path).url_name
    except Resolver404:
        name = None
    if name == UPLOAD_ROUTE:
        from hosts.domain import uploads

        # the upload's own message (the body holds more than the file limit plus form framing)
        return uploads.max_http_body_bytes(), uploads.too_large(uploads.max_http_upload_bytes()).message
    limit = int(settings.DASHBOARD_MAX_REQUEST_BODY_BYTES)
    return (
        limit,
        f"Request body too large: the limit for this address is {filesizeformat(limit)} ({limit} bytes).",
    )


class BoundedRequest(WebRequest):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.body_received = 0
        self.body_limit: int | None = None
        self.refusal = ""
        self.refused = False
        # Twisted would parse a POSTed form body into request.args, a second copy in memory
        # that daphne never reads (the application parses the body itself).
        self._parsePOSTFormSubmission = False

    def gotLength(self, length):  # noqa: N802 - Twisted's interface
        self.body_limit, self.refusal = body_limit(self._request_path())
        if length is not None and length > self.body_limit:
            # Twisted answers `Expect: 100-continue` right after this call: drop the header so
            # the client is not invited to send the body we are refusing.
            self.requestHeaders.removeHeader(b"Expect")
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data):  # noqa: N802
        if self.refused:
            return  # the rest of a buffer that arrived with the refused part
        self.body_received += len(data)
        if self.body_limit is not None and self.body_received > self.body_limit:
            self._refuse()
            return
        super().handleContentChunk(data)

    def process(self):
        if self.refused:
            return None  # a refused chunked body that ended in the same buffer
        return super().process()

    def _request_path(self) -> str:
        # gotLength runs before requestReceived sets self.path: the channel holds the raw URI.
        uri = getattr(self.channel, "_path", b"") or b""
        path = unquote(uri.split(b"?", 1)[0].decode("ascii", "replace"))
        root = self.channel.factory.server.root_path or ""
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        return path

    def _refuse(self) -> None:
        self.refused = True
        self.content = BytesIO()  # nothing of the body is kept
        body = (self.refusal + "\n").encode()
        self.channel.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(body), body)
        )
        # Stops reading at once; what is written above still goes out before the close.
        self.channel.loseConnection()


def install() -> None:
    """Make daphne's HTTP factory build BoundedRequest instead of WebRequest (idempotent)."""
    if getattr(HTTPFactory.buildProtocol, "bounded", False):
        return
    build = HTTPFactory.buildProtocol

    def build_protocol(self, addr):
        protocol = build(self, addr)
        protocol.requestFactory = BoundedRequest
        return protocol

    build_protocol.bounded = True
    HTTPFactory.buildProtocol = build_protocol
