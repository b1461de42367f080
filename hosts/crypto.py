"""Encryption at rest for client private keys (Fernet, keys from settings).

settings.DASHBOARD_ENCRYPTION_KEYS: the first key encrypts, every key decrypts, so a new key
can be put first and `manage.py rotate_encryption_key` re-encrypts what the old one sealed.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _fernet(secret: str) -> Fernet:
    # Accept any passphrase: derive a 32-byte Fernet key from it.
    digest = hashlib.sha256(("lxd-dashboard-key:" + secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _multi() -> MultiFernet:
    keys = settings.DASHBOARD_ENCRYPTION_KEYS
    if not keys:
        raise RuntimeError("DASHBOARD_ENCRYPTION_KEYS is empty")
    return MultiFernet([_fernet(k) for k in keys])


def encrypt(plaintext: str) -> str:
    return _multi().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _multi().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError(
            "a client private key cannot be decrypted with DASHBOARD_ENCRYPTION_KEYS "
            "(was the key changed without keeping the old one?)"
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt under the first (newest) key."""
    return _multi().rotate(token.encode()).decode()
