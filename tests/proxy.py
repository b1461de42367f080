"""deploy/nginx.conf, run as it is shipped: Debian's nginx in front of daphne processes of the
scale-out deployment (tests/scale.py), with TLS on loopback.

The site file is used as written, with only what names this machine changed (ports, the
certificate, the static directory): a change to the example is a change to what these tests
run.  The surrounding `http {}` block is the part Debian's /etc/nginx/nginx.conf provides."""

from __future__ import annotations

import datetime
import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.lab import ROOT
from tests.scale import Process, free_port, wait_for_port

SITE = ROOT / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def loopback_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for https://127.0.0.1 (it is its own CA): (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "proxy.pem", directory / "proxy.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def site_for(
    upstreams: list[int], http_port: int, https_port: int, cert: Path, key: Path, static_root: Path
) -> str:
    """deploy/nginx.conf with this machine's ports, certificate and static directory."""
    text = SITE.read_text()
    servers = "".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n" for port in upstreams)
    text, count = re.subn(
        r"(?m)^    server 127\.0\.0\.1:\d+ .*\n(?:    server 127\.0\.0\.1:\d+ .*\n)*", servers, text
    )
    assert count == 1, "deploy/nginx.conf: the upstream's server lines moved"
    replacements = [
        (r"(?m)^\s*listen \[::\]:\d+.*\n", ""),  # loopback IPv4 only, here
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
        (r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};"),
        (r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};"),
        (r"alias \S+;", f"alias {static_root}/;"),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count >= 1 or "::" in pattern, f"deploy/nginx.conf: nothing matched {pattern!r}"
    return text


class Nginx:
    """nginx in the foreground, its own prefix directory (pid, logs, temporary files).  Its
    ports are known at once (the web processes' settings name its origin); `start` writes
    the configuration for the upstream ports given."""

    def __init__(self, directory: Path, static_root: Path):
        self.dir, self.static_root = directory, static_root
        self.http_port, self.https_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.https_port}"
        self.cert, self.key = loopback_certificate(directory)
        self.process: Process | None = None

    def configure(self, upstreams: list[int]) -> None:
        directory = self.dir
        site = site_for(upstreams, self.http_port, self.https_port, self.cert, self.key, self.static_root)
        temp = "".join(
            f"    {kind}_temp_path {directory / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (directory / "nginx.conf").write_text(
            "# What Debian's /etc/nginx/nginx.conf gives a site, for a test run as root.\n"
            "user root;  # the test's files are in root's own temporary directory\n"
            "worker_processes 1;\n"
            f"pid {directory / 'nginx.pid'};\n"
            f"error_log {directory / 'error.log'} info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n"
            "    default_type application/octet-stream;\n"
            f"    access_log {directory / 'access.log'};\n"
            f"{temp}"
            "    # deploy/nginx.conf, adapted by tests/proxy.py\n"
            f"{site}\n"
            "}\n"
        )

    def argv(self, *extra: str) -> list[str]:
        """nginx with this prefix, error log and configuration."""
        directory = str(self.dir)
        return [
            NGINX,
            "-p",
            directory,
            "-e",
            f"{directory}/error.log",
            "-c",
            f"{directory}/nginx.conf",
            *extra,
        ]

    def check(self) -> None:
        out = subprocess.run(self.argv("-t"), capture_output=True, text=True)
        assert out.returncode == 0, f"nginx refuses the configuration:\n{out.stderr}"

    def start(self, upstreams: list[int]) -> Nginx:
        self.configure(upstreams)
        self.check()
        self.process = Process(
            "nginx",
            self.argv("-g", "daemon off;"),
            {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            self.dir / "nginx.out",
        ).start()
        wait_for_port(self.https_port, self.process.proc, self.dir / "error.log")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def established_from(port: int) -> int:
    """How many established TCP connections the process listening on `port` holds there (the
    proxy's connections to one web process: the websockets, HTTP ones being closed after
    each request)."""
    out = subprocess.run(
        ["ss", "-tnH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.splitlines())
