"""Encryption of client private keys at rest: Fernet keys as they are, passphrases stretched
with scrypt and a salt, tokens sealed the old way still readable and re-sealed by rotation."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from django.core.management import call_command

from hosts.domain import crypto
from hosts.lxd.certs import generate_client_certificate
from hosts.models import ClientCertificate
from tests.lab import ROOT


def old_way(passphrase: str) -> Fernet:
    """How the dashboard derived its key before: one unsalted SHA-256 of the passphrase."""
    return Fernet(
        base64.urlsafe_b64encode(hashlib.sha256(("lxd-dashboard-key:" + passphrase).encode()).digest())
    )


def test_a_fernet_key_is_used_as_it_is(settings):
    key = Fernet.generate_key()
    settings.DASHBOARD_ENCRYPTION_KEYS = [key.decode()]
    token = crypto.encrypt("private key")
    assert Fernet(key).decrypt(token.encode()) == b"private key"
    assert crypto.decrypt(token) == "private key"


def test_a_passphrase_is_stretched_with_scrypt_and_a_fresh_salt(settings):
    settings.DASHBOARD_ENCRYPTION_KEYS = ["correct horse"]
    first, second = crypto.encrypt("private key"), crypto.encrypt("private key")
    scheme, salt, body = first.split("$")
    assert scheme == "scrypt1" and salt != second.split("$")[1]
    kdf = Scrypt(salt=base64.urlsafe_b64decode(salt), length=32, n=2**15, r=8, p=1)
    stretched = Fernet(base64.urlsafe_b64encode(kdf.derive(b"correct horse")))
    assert stretched.decrypt(body.encode()) == b"private key"
    with pytest.raises(InvalidToken):
        old_way("correct horse").decrypt(body.encode())
    assert crypto.decrypt(first) == crypto.decrypt(second) == "private key"


@pytest.mark.django_db
def test_a_key_sealed_the_old_way_still_decrypts_and_rotation_reseals_it(settings, capsys):
    generated = generate_client_certificate("lxd-dashboard")
    cert = ClientCertificate.objects.create(
        name="dashboard",
        certificate=generated.certificate_pem,
        private_key_encrypted=old_way("installation-secret")
        .encrypt(generated.private_key_pem.encode())
        .decode(),
        fingerprint=generated.fingerprint,
        not_after=generated.not_after,
    )
    settings.DASHBOARD_ENCRYPTION_KEYS = ["installation-secret"]
    assert cert.private_key_pem() == generated.private_key_pem  # an existing installation keeps working

    new_key = Fernet.generate_key()
    settings.DASHBOARD_ENCRYPTION_KEYS = [new_key.decode(), "installation-secret"]
    call_command("rotate_encryption_key")
    assert "Re-encrypted 1" in capsys.readouterr().out
    sealed = ClientCertificate.objects.get(pk=cert.pk).private_key_encrypted
    assert Fernet(new_key).decrypt(sealed.encode()).decode() == generated.private_key_pem
    settings.DASHBOARD_ENCRYPTION_KEYS = [new_key.decode()]  # the old secret can go
    assert ClientCertificate.objects.get(pk=cert.pk).private_key_pem() == generated.private_key_pem


def test_the_generated_default_key_is_a_fernet_key_readable_by_the_owner_only(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DASHBOARD_"))}
    env.update(DASHBOARD_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="dashboard.settings")
    out = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.DASHBOARD_ENCRYPTION_KEYS[0])"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    key = out.stdout.strip()
    Fernet(key)  # raises unless it is 32 bytes of url-safe base64
    path = tmp_path / "encryption_key"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
