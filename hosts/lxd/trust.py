"""Trust intentions of LXDClient (mixed into LXDClient): which client certificates a host
trusts (POST/GET/DELETE /1.0/certificates).  Every path here is global, never project-scoped."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .certs import certificate_body_base64
from .errors import LXDAPIError
from .operation import Operation
from .server import ServerInfo, trust_token_fields


def _url(fingerprint: str) -> str:
    return f"/1.0/certificates/{quote(fingerprint, safe='')}"


class TrustAPI:
    """Methods here use self.call / self.get from LXDClient."""

    def request_trust(
        self,
        *,
        password: str | None = None,
        token: str | None = None,
        name: str = "lxd-dashboard",
        server: ServerInfo | None = None,
    ) -> None:
        """Ask the server to trust the client certificate this connection presents; a token goes
        in the field(s) `server` (its untrusted GET /1.0) reads it from."""
        body: dict[str, Any] = {"type": "client", "name": name}
        if token is not None:
            body.update(trust_token_fields(server or ServerInfo(None, "", frozenset()), token))
        elif password is not None:
            body["password"] = password
        self.call("POST", "/1.0/certificates", json_body=body, project_scoped=False)

    def create_trust_token(self, name: str) -> Operation:
        op = self.call(
            "POST",
            "/1.0/certificates",
            json_body={"name": name, "type": "client", "token": True},
            project_scoped=False,
        )[0]
        return op

    def certificates(self) -> list[dict]:
        return self.get("/1.0/certificates", params={"recursion": 1}, project_scoped=False) or []

    def own_trust_entry(self, fingerprint: str) -> dict | None:
        """Our own entry in the trust store (a restricted client may read it), None if absent."""
        try:
            return self.certificate(fingerprint)
        except LXDAPIError as exc:
            if exc.error_code == 404:
                return None
            raise

    def certificate(self, fingerprint: str) -> dict:
        """One trust entry: name, type, restricted, projects, certificate, fingerprint."""
        return self.get(_url(fingerprint), project_scoped=False) or {}

    def add_trusted_certificate(
        self, certificate_pem: str, *, name: str, restricted: bool = False, projects: list[str] | None = None
    ) -> None:
        """Trust another client certificate (we must be an unrestricted client: LXD's admin).
        LXD wants the DER body in base64, not the whole PEM."""
        body: dict[str, Any] = {
            "type": "client",
            "certificate": certificate_body_base64(certificate_pem),
            "name": name,
            "restricted": restricted,
            "projects": list(projects or []),
        }
        self.call("POST", "/1.0/certificates", json_body=body, project_scoped=False)

    def delete_certificate(self, fingerprint: str) -> None:
        self.call("DELETE", _url(fingerprint), project_scoped=False)
