"""The dashboard's decrypted client private key never reaches a file: each TLS context
loads it from memory (a memfd on Linux)."""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

import pytest

from hosts.lxd.client import forget_sessions

pytestmark = pytest.mark.django_db


def files_holding(text: str, *directories: str) -> list[str]:
    found = []
    for directory in directories:
        for path in Path(directory).rglob("*"):
            try:
                if path.is_file() and text.encode() in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


def test_building_many_tls_contexts_never_writes_the_key_to_a_file(https_host, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # whatever the code makes lands here
    key_line = https_host.client_certificate.private_key_pem().strip().splitlines()[1]
    places = [str(tmp_path)] + (["/dev/shm"] if os.path.isdir("/dev/shm") else [])
    loads = []
    load_cert_chain = ssl.SSLContext.load_cert_chain

    def spy(self, certfile, keyfile=None, password=None):
        # At the moment the key is loaded: where it comes from, and which files hold it.
        source = os.path.realpath(keyfile or certfile)
        loads.append((source, files_holding(key_line, *places)))
        return load_cert_chain(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    open_fds = len(os.listdir("/proc/self/fd"))
    for _ in range(40):
        forget_sessions()  # a new session, so a new TLS context, every time
        assert https_host.client().server()[0]["auth"] == "trusted"
    forget_sessions()

    assert len(loads) >= 40
    for source, holding in loads:
        assert holding == []
        assert source.startswith("/memfd:"), source  # an anonymous memory file, on no file system
    assert files_holding(key_line, *places) == []
    assert len(os.listdir("/proc/self/fd")) <= open_fds + 2  # every memfd closed


def test_without_memfd_the_key_file_is_private_and_gone_once_loaded(https_host, monkeypatch, tmp_path):
    monkeypatch.delattr(os, "memfd_create")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    key_line = https_host.client_certificate.private_key_pem().strip().splitlines()[1]
    loads = []
    load_cert_chain = ssl.SSLContext.load_cert_chain

    def spy(self, certfile, keyfile=None, password=None):
        path = keyfile or certfile
        loads.append((path, oct(os.stat(path).st_mode & 0o777)))
        return load_cert_chain(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    forget_sessions()
    assert https_host.client().server()[0]["auth"] == "trusted"
    forget_sessions()
    ((path, mode),) = loads
    assert mode == "0o600"
    assert not os.path.exists(path)
    assert files_holding(key_line, str(tmp_path), os.path.dirname(path)) == []
