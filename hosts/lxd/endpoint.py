"""Where a host's API lives and how we prove who we are to it (and it to us)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from . import certs

DEFAULT_HTTPS_PORT = 8443


@dataclass(frozen=True)
class Endpoint:
    """Where a host's API lives: a unix socket path or an https://host:port URL."""

    kind: str  # "unix" or "https"
    address: str  # socket path, or "https://host:port"
    host: str = ""
    port: int = 0

    @property
    def is_unix(self) -> bool:
        return self.kind == "unix"

    @property
    def base_url(self) -> str:
        if self.is_unix:
            return "http+unix://" + quote(self.address, safe="")
        return self.address

    def __str__(self) -> str:
        return self.address


def parse_endpoint(text: str) -> Endpoint:
    """Accept what `lxc remote add` accepts: a socket path, unix://path, host, host:port or https://..."""
    value = (text or "").strip()
    if not value:
        raise ValueError("give a unix socket path or an https://host:port address")
    if value.startswith("unix://"):
        value = value[len("unix://") :]
        if not value.startswith("/"):
            raise ValueError("a unix socket path must be absolute, e.g. unix:///var/lib/lxd/unix.socket")
        return Endpoint("unix", value)
    if value.startswith("/"):
        return Endpoint("unix", value)
    if value.startswith("http://"):
        raise ValueError("LXD serves its API over HTTPS only: use https://host:port")
    if "://" in value and not value.startswith("https://"):
        raise ValueError(f"unsupported address scheme in {value!r}: use https://host:port or a socket path")
    if not value.startswith("https://"):
        value = "https://" + value
    parts = urlsplit(value)
    try:
        port = parts.port or DEFAULT_HTTPS_PORT
    except ValueError as exc:
        raise ValueError(f"invalid port in {text!r}") from exc
    host = parts.hostname
    if not host or parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"{text!r} is not a host address: use https://host:port")
    netloc = f"[{host}]" if ":" in host else host
    return Endpoint("https", f"https://{netloc}:{port}", host=host, port=port)


@dataclass(frozen=True)
class TLSIdentity:
    """The pinned server certificate and the client certificate presented to it."""

    server_cert_pem: str
    client_cert_pem: str | None = None
    client_key_pem: str | None = field(default=None, repr=False)

    @property
    def server_fingerprint(self) -> str:
        return certs.fingerprint_of_pem(self.server_cert_pem)

    def ssl_context(self):
        return certs.pinned_ssl_context(self.server_cert_pem, self.client_cert_pem, self.client_key_pem)
