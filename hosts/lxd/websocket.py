"""Opening a websocket to an LXD host (the events stream, an exec or console session).

One place for what every LXD websocket needs: pinned TLS or the unix socket (the target comes
from `LXDClient.websocket_target`), no redirect ever followed, no environment proxy, and each
failure turned into the LXDError class an HTTP call would raise for it.
"""

from __future__ import annotations

import ssl
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from .errors import CertificateMismatch, HostRedirected, HostUnreachable, LXDAPIError, NotLXD, NotTrusted

USER_AGENT = "lxd-fleet-dashboard"


async def connect_websocket(
    uri: str, connect_kwargs: dict, *, label: str, what: str, fingerprint: str = "", **options: Any
) -> ClientConnection:
    """Connect to `uri` on a host.  `uri, connect_kwargs` come from
    `LXDClient.websocket_target(path)` (built off the event loop: it loads the client key);
    `options` go to `websockets` (max_size, max_queue, ping_interval ...); `what` names the
    stream in messages ("the events stream", "the terminal")."""
    kwargs = dict(connect_kwargs)
    options = {"compression": None, "user_agent_header": USER_AGENT, **options}
    try:
        if "unix_path" in kwargs:
            return await _ConnectNoRedirects(uri, unix=True, path=kwargs.pop("unix_path"), **options)
        return await _ConnectNoRedirects(uri, proxy=None, **kwargs, **options)
    except InvalidStatus as exc:
        code = exc.response.status_code
        if 300 <= code < 400:
            raise HostRedirected(label, code) from exc
        if code == 403:
            raise NotTrusted(f"{label} refused {what}: not authorized") from exc
        raise LXDAPIError(f"{label} refused {what} (HTTP {code})", code) from exc
    except ssl.SSLCertVerificationError as exc:
        raise CertificateMismatch(label, fingerprint or "the pinned certificate", None) from exc
    except ssl.SSLError as exc:
        raise NotLXD(f"{label}: TLS failure on {what}: {exc.reason or exc}") from exc
    except InvalidHandshake as exc:
        raise NotLXD(f"{label} did not open {what}: {exc}") from exc
    except TimeoutError as exc:
        raise HostUnreachable(f"{label} did not answer in time") from exc
    except FileNotFoundError as exc:
        raise HostUnreachable(f"{label} is unreachable: socket not found") from exc
    except ConnectionRefusedError as exc:
        raise HostUnreachable(f"{label} is unreachable: connection refused") from exc
    except OSError as exc:
        raise HostUnreachable(f"{label} is unreachable: {exc.strerror or exc}") from exc


class _ConnectNoRedirects(connect):
    """`websockets` (14 and later) follows a handshake's 3xx to wherever Location says, a
    cross-origin wss:// one too.  LXD never redirects: the 3xx stays an InvalidStatus."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc
