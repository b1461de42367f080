"""The dashboard's one user-facing error type, and the errors of the LXD gateway.

Every failure or refusal a person should read is a UserError: a message fit for a person and
the HTTP status that fits.  Views turn any of them into a page (or a fragment) the same way
(hosts/views/common.py); LXD's own failures are LXDErrors, which are UserErrors too.
"""


class UserError(Exception):
    """Something a person asked for cannot be done; `message` says why, `http_status` fits."""

    http_status = 400

    def __init__(self, message: str, http_status: int | None = None):
        super().__init__(message)
        self.message = message
        if http_status is not None:
            self.http_status = http_status

    def __str__(self) -> str:
        return self.message


class LXDError(UserError):
    """A host failed, refused, or answered in a way we cannot use."""

    http_status = 502

    def __init__(self, message: str):
        super().__init__(message)


class HostUnreachable(LXDError):
    """Connection refused, timed out, DNS failure, socket missing."""

    http_status = 504


class NotLXD(LXDError):
    """Something answered, but not as an LXD server does (plain HTTP, another TLS server)."""


class HostRedirected(NotLXD):
    """The host answered with a 3xx.  LXD never redirects its API; a host that does may be
    steering us (with our client certificate's session) to an address of its choosing."""

    def __init__(self, host_label: str, status: int):
        self.status = status
        super().__init__(
            f"{host_label} answered with a redirect (HTTP {status}), which the dashboard never follows"
        )


class ResponseTooLarge(NotLXD):
    """The host sent more than we read from it for one answer or event."""

    def __init__(self, host_label: str, what: str, limit: int):
        self.limit = limit
        super().__init__(f"{host_label} sent {what} larger than the limit of {limit} bytes: refused")


class CertificateMismatch(LXDError):
    """The server presented a certificate other than the pinned one."""

    def __init__(self, host_label: str, expected: str, got: str | None):
        self.expected = expected
        self.got = got
        super().__init__(
            f"the certificate of {host_label} changed: expected {expected}, got {got or 'unknown'}"
        )


class LXDAPIError(LXDError):
    """LXD answered with an error envelope; `message` is LXD's own text."""

    def __init__(self, message: str, error_code: int):
        super().__init__(message)
        self.error_code = error_code
        self.http_status = error_code if 400 <= error_code < 500 else 502


class NotTrusted(LXDAPIError):
    """LXD refused our client certificate (403)."""

    def __init__(self, message: str = "not authorized"):
        super().__init__(message, 403)


class InvalidName(LXDError):
    """A name that breaks LXD's rule for it, or would not stay one segment of an API path."""

    http_status = 400


class OperationFailed(LXDError):
    """An async operation ended in Failure or Cancelled; `message` is LXD's `err`."""

    http_status = 409

    def __init__(self, message: str, operation):
        super().__init__(message or f"operation {operation.status or 'failed'}")
        self.operation = operation  # an operation.Operation
