"""Client certificates, server certificate fetching, fingerprints and pinned TLS contexts."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .errors import HostUnreachable, NotLXD


@dataclass(frozen=True)
class GeneratedCertificate:
    certificate_pem: str
    private_key_pem: str
    fingerprint: str
    not_after: dt.datetime


def generate_client_certificate(
    common_name: str, days: int = 3650, *, purpose: str = "client"
) -> GeneratedCertificate:
    """A self-signed ECDSA P-384 certificate, like the one `lxc` makes for itself."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    not_after = now + dt.timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [
                    x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
                    if purpose == "client"
                    else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA384())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return GeneratedCertificate(cert_pem, key_pem, fingerprint_of_pem(cert_pem), not_after)


def load_client_certificate(cert_pem: str, key_pem: str) -> GeneratedCertificate:
    """A client certificate and its key made elsewhere (a command line tool's client.crt and
    client.key), checked to belong together; the key re-encoded as unencrypted PKCS#8 PEM.
    ValueError says what is wrong with them."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as exc:
        raise ValueError("the client certificate is not a PEM certificate") from exc
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("the client key is not an unencrypted PEM private key") from exc
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.PEM, public) != cert.public_key().public_bytes(
        serialization.Encoding.PEM, public
    ):
        raise ValueError("the client key does not belong to the client certificate")
    normal_cert = cert.public_bytes(serialization.Encoding.PEM).decode()
    normal_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return GeneratedCertificate(
        normal_cert, normal_key, fingerprint_of_pem(normal_cert), cert.not_valid_after_utc
    )


def fingerprint_of_pem(pem: str) -> str:
    """sha256 of the DER, lower-case hex: what LXD calls the certificate fingerprint."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def certificate_body_base64(pem: str) -> str:
    """The base64 DER body LXD wants in `POST /1.0/certificates {"certificate": ...}`."""
    lines = [line for line in pem.strip().splitlines() if not line.startswith("-----")]
    return "".join(lines)


def normalise_fingerprint(value: str) -> str:
    return value.strip().lower().replace(":", "").replace(" ", "")


def fetch_server_certificate(host: str, port: int, timeout: float) -> str:
    """Read the certificate a server presents in its TLS handshake (trust on first use).

    Nothing is trusted here: the caller shows the fingerprint and asks before pinning it.
    """
    try:
        pem = ssl.get_server_certificate((host, port), timeout=timeout)
    except ConnectionRefusedError as exc:
        raise HostUnreachable(f"nothing listens on {host}:{port} (connection refused)") from exc
    except TimeoutError as exc:
        raise HostUnreachable(f"{host}:{port} did not answer within {timeout:g} s") from exc
    except socket.gaierror as exc:
        raise HostUnreachable(f"cannot resolve {host}: {exc.strerror}") from exc
    except ssl.SSLError as exc:
        raise NotLXD(
            f"{host}:{port} does not speak TLS as an LXD server does ({exc.reason or exc}); "
            "is it a plain HTTP port?"
        ) from exc
    except OSError as exc:
        raise HostUnreachable(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
    return pem


def pinned_ssl_context(
    server_pem: str, client_cert_pem: str | None, client_key_pem: str | None
) -> ssl.SSLContext:
    """A TLS context whose only trust anchor is the pinned server certificate.

    LXD certificates are self-signed and rarely carry the name the user typed, so the
    hostname is not checked; the certificate itself is, byte for byte, during the handshake.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=server_pem)
    if client_cert_pem and client_key_pem:
        _load_chain_from_memory(ctx, client_cert_pem, client_key_pem)
    return ctx


def _load_chain_from_memory(ctx: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    """The ssl module loads a private key only from a path.  On Linux the path is that of an
    anonymous memory file (memfd): the key never reaches a file system, and nothing is left
    behind whatever happens to the process.  Elsewhere, a 0600 file (in /dev/shm when there
    is one) that is removed as soon as it is loaded."""
    chain = (cert_pem.strip() + "\n" + key_pem.strip() + "\n").encode()
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("lxd-client-key", os.MFD_CLOEXEC)
        try:
            _write_all(fd, chain)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    directory = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108 - memory, not disk
    fd, path = tempfile.mkstemp(prefix="lxd-client-", dir=directory)  # created 0600
    try:
        _write_all(fd, chain)
        os.close(fd)
        fd = -1
        ctx.load_cert_chain(path)
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
