"""LXDClient: one method per intention, over the unix socket or HTTPS with a pinned certificate.

Views and the relay never build LXD URLs or parse envelopes themselves: they call this.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import requests_unixsocket
from requests.adapters import HTTPAdapter
from requests_unixsocket.adapters import UnixHTTPConnection, UnixHTTPConnectionPool

from . import certs
from .backups import BackupsAPI
from .bodies import load_body
from .endpoint import Endpoint, TLSIdentity, parse_endpoint
from .errors import (
    CertificateMismatch,
    HostRedirected,
    HostUnreachable,
    LXDAPIError,
    LXDError,
    NotLXD,
    NotTrusted,
)
from .exec import ExecAPI
from .files import FilesAPI
from .images import ImagesAPI
from .instances import InstancesAPI
from .migration import MigrationAPI
from .names import check_path
from .networks import NetworksAPI
from .operation import Operation
from .operations import OperationsAPI
from .resources import ResourcesAPI
from .storage import StorageAPI
from .trust import TrustAPI

DEFAULT_TIMEOUT = (0.5, 1.0)
# The largest answer read whole (a JSON envelope): recursion=2 of thousands of instances
# fits; a host that sends more is refused rather than held in memory.
DEFAULT_MAX_BODY = 64 * 1024 * 1024


class _UnixConnection(UnixHTTPConnection):
    """requests-unixsocket leaves its socket open when connect() fails (a socket path that is
    gone, a daemon that is down): closed here at once, not by the garbage collector."""

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(unquote(urlsplit(self.unix_socket_url).netloc))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _UnixPool(UnixHTTPConnectionPool):
    def _new_conn(self):
        return _UnixConnection(self.socket_path, self.timeout)


class _UnixAdapter(requests_unixsocket.UnixAdapter):
    def get_connection(self, url, proxies=None):
        if proxies:
            raise ValueError("LXD's unix socket is never reached through a proxy")
        with self.pools.lock:
            pool = self.pools.get(url)
            if pool is None:
                pool = self.pools[url] = _UnixPool(url, self.timeout)
        return pool


class _PinnedAdapter(HTTPAdapter):
    """Every connection uses our pinned TLS context and asserts the pinned fingerprint."""

    def __init__(self, ssl_context, fingerprint: str):
        self._ssl_context = ssl_context
        self._fingerprint = fingerprint
        super().__init__(pool_connections=4, pool_maxsize=16, max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        pool_kwargs["ssl_context"] = self._ssl_context
        pool_kwargs["assert_fingerprint"] = self._fingerprint
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)


# One requests.Session (a connection pool) per host identity, the least recently used closed
# past MAX_SESSIONS: a re-pinned certificate or a rotated client key makes a new identity.
MAX_SESSIONS = 256
_sessions: OrderedDict[tuple, requests.Session] = OrderedDict()
_sessions_lock = threading.Lock()


def _session_for(endpoint: Endpoint, tls: TLSIdentity | None) -> requests.Session:
    key = (endpoint.address, tls)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is not None:
            _sessions.move_to_end(key)
        else:
            session = requests.Session()
            session.trust_env = False  # never route LXD traffic through an environment proxy
            if endpoint.is_unix:
                session.mount("http+unix://", _UnixAdapter())
            else:
                if tls is None:
                    raise ValueError("an HTTPS endpoint needs a pinned server certificate")
                session.mount(
                    endpoint.base_url + "/", _PinnedAdapter(tls.ssl_context(), tls.server_fingerprint)
                )
            _sessions[key] = session
            while len(_sessions) > MAX_SESSIONS:
                _sessions.popitem(last=False)[1].close()
        return session


def forget_sessions() -> None:
    with _sessions_lock:
        for session in _sessions.values():
            session.close()
        _sessions.clear()


class LXDClient(
    InstancesAPI,
    ImagesAPI,
    NetworksAPI,
    StorageAPI,
    ResourcesAPI,
    FilesAPI,
    ExecAPI,
    TrustAPI,
    MigrationAPI,
    BackupsAPI,
    OperationsAPI,
):
    """A gateway to one LXD host."""

    def __init__(
        self,
        endpoint: Endpoint | str,
        *,
        tls: TLSIdentity | None = None,
        project: str = "default",
        label: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_body: int = DEFAULT_MAX_BODY,
    ):
        self.endpoint = endpoint if isinstance(endpoint, Endpoint) else parse_endpoint(endpoint)
        self.tls = tls
        self.project = project or "default"
        self.label = label or str(self.endpoint)
        self.timeout = timeout
        self.max_body = max_body

    def for_project(self, project: str) -> LXDClient:
        """The same host, in another of its projects."""
        return LXDClient(
            self.endpoint,
            tls=self.tls,
            project=project,
            label=self.label,
            timeout=self.timeout,
            max_body=self.max_body,
        )

    # -- transport ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json_body: Any = None,
        data: Any = None,
        headers: dict | None = None,
        timeout: float | tuple[float, float] | None = None,
        stream: bool = False,
        project_scoped: bool = True,
        encoded_slash_ok: bool = False,
    ) -> requests.Response:
        """Send one request; map transport failures to LXDError subclasses.

        A redirect is never followed (LXD's API has none: a host that answers 3xx is refused
        with HostRedirected).  Unless `stream`, the body is read here, at most max_body bytes.
        A path whose name segments would not stay names (`..`, an encoded '/') is refused:
        InvalidName.
        """
        check_path(path, encoded_slash_ok=encoded_slash_ok)
        params = dict(params or {})
        if project_scoped and self.project != "default":
            params.setdefault("project", self.project)
        session = _session_for(self.endpoint, self.tls)
        url = self.endpoint.base_url + path
        kwargs: dict[str, Any] = {"params": params, "headers": headers or {}}
        if json_body is not None:
            kwargs["data"] = json.dumps(json_body)
            kwargs["headers"].setdefault("Content-Type", "application/json")
        elif data is not None:
            kwargs["data"] = data
        try:
            # Always streamed, so that the body is read here under our bound, never by requests.
            response = session.request(
                method, url, timeout=timeout or self.timeout, allow_redirects=False, **kwargs, stream=True
            )
            if 300 <= response.status_code < 400:
                response.close()
                raise HostRedirected(self.label, response.status_code)
            if not stream:
                load_body(response, self.max_body, self.label)
            return response
        except requests.exceptions.SSLError as exc:
            raise self._tls_failure(exc) from exc
        except requests.exceptions.Timeout as exc:
            raise HostUnreachable(f"{self.label} did not answer in time") from exc
        except requests.exceptions.ConnectionError as exc:
            raise HostUnreachable(f"{self.label} is unreachable: {_root_cause(exc)}") from exc
        except requests.exceptions.RequestException as exc:
            raise HostUnreachable(f"{self.label}: {exc}") from exc

    def _tls_failure(self, exc: Exception) -> LXDError:
        if self.endpoint.is_unix or self.tls is None:
            return NotLXD(f"{self.label}: TLS failure: {exc}")
        try:
            got_pem = certs.fetch_server_certificate(self.endpoint.host, self.endpoint.port, timeout=1.0)
            got = certs.fingerprint_of_pem(got_pem)
        except LXDError:
            got = None
        expected = self.tls.server_fingerprint
        if got != expected:
            return CertificateMismatch(self.label, expected, got)
        return NotLXD(f"{self.label}: TLS handshake failed: {_root_cause(exc)}")

    def call(self, method: str, path: str, **kwargs) -> tuple[Any, requests.Response]:
        """A request whose answer is an LXD envelope: returns (metadata or Operation, response)."""
        response = self.request(method, path, **kwargs)
        return self.parse_envelope(response), response

    def parse_envelope(self, response: requests.Response) -> Any:
        """LXD's envelope from a response (a streamed one is read here, at most max_body bytes)."""
        try:
            body = json.loads(self.read_body(response))
        except ValueError:
            body = None
        if not isinstance(body, dict) or "type" not in body:
            raise NotLXD(
                f"{self.label} answered HTTP {response.status_code} with something that is not LXD's API"
            )
        kind = body.get("type")
        if kind == "error":
            code = int(body.get("error_code") or response.status_code or 500)
            message = body.get("error") or f"HTTP {code}"
            if code == 403:
                raise NotTrusted(message)
            raise LXDAPIError(message, code)
        if kind == "async":
            return Operation.from_lxd(body.get("metadata"))
        return body.get("metadata")

    def read_body(self, response: requests.Response) -> bytes:
        """The whole body of a response, at most max_body bytes (ResponseTooLarge past it)."""
        try:
            return load_body(response, self.max_body, self.label)
        except requests.exceptions.RequestException as exc:
            raise HostUnreachable(f"{self.label} broke off its answer: {_root_cause(exc)}") from exc

    def get(self, path: str, **kwargs) -> Any:
        return self.call("GET", path, **kwargs)[0]

    # -- server ------------------------------------------------------------------------

    def server(self) -> tuple[dict, str]:
        """GET /1.0: (metadata, etag)."""
        metadata, response = self.call("GET", "/1.0", project_scoped=False)
        if not isinstance(metadata, dict) or "api_version" not in metadata:
            raise NotLXD(f"{self.label} answered /1.0 without an API version: not an LXD server")
        return metadata, response.headers.get("ETag", "")

    def remote_server(self) -> tuple[str, str]:
        """(https URL, server certificate PEM) by which another LXD daemon reaches this host:
        to pull an image or an instance from it, or to push one to it.  Over HTTPS, the
        address we use and the certificate we pinned; over the unix socket, what the server
        says it listens on (core.https_address)."""
        if not self.endpoint.is_unix and self.tls is not None:
            return self.endpoint.address, self.tls.server_cert_pem
        info, _ = self.server()
        env = info.get("environment") or {}
        addresses, certificate = env.get("addresses") or [], env.get("certificate") or ""
        if not addresses or not certificate:
            raise LXDError(
                f"{self.label} does not listen on the network (core.https_address is unset), "
                "so another host cannot reach it to copy images or instances"
            )
        address = addresses[0]
        return f"https://{address}", certificate

    def patch_server_config(self, changes: dict[str, str], etag: str) -> None:
        """Change only the given config keys ("" unsets a key); refused if the ETag moved."""
        headers = {"If-Match": etag} if etag else {}
        self.call("PATCH", "/1.0", json_body={"config": changes}, headers=headers, project_scoped=False)

    # -- websockets (events, exec) -----------------------------------------------------

    def websocket_target(self, path: str) -> tuple[str, dict]:
        """(uri, connect kwargs) for `websockets` to reach `path` on this host, pinned."""
        if self.endpoint.is_unix:
            return "ws://lxd" + path, {"unix_path": self.endpoint.address}
        return "wss://" + self.endpoint.address[len("https://") :] + path, {"ssl": self.tls.ssl_context()}


def _root_cause(exc: BaseException) -> str:
    seen = exc
    while seen.__cause__ or seen.__context__:
        seen = seen.__cause__ or seen.__context__
    text = str(seen)
    if "Connection refused" in text or isinstance(seen, ConnectionRefusedError):
        return "connection refused"
    if isinstance(seen, FileNotFoundError) or "No such file" in text:
        return "socket not found"
    return text or seen.__class__.__name__


def iter_chunks(response: requests.Response, size: int = 256 * 1024) -> Iterator[bytes]:
    """Stream a response body without holding it whole in memory."""
    try:
        yield from response.iter_content(chunk_size=size)
    finally:
        response.close()
