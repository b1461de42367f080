"""Encryption at rest for client private keys (Fernet, keys from settings).

settings.DASHBOARD_ENCRYPTION_KEYS: the first key encrypts, every key decrypts, so a new key
can be put first and `manage.py rotate_encryption_key` re-encrypts what the old one sealed.

A key is either a Fernet key (44 url-safe base64 characters, what the dashboard generates),
used as it is, or a passphrase, stretched with scrypt and a random salt stored with each
token ("scrypt1$<salt>$<fernet token>").  scrypt rather than HKDF: a passphrase a person
chose may be guessable, and scrypt makes each guess cost 32 MiB and a tenth of a second
where HKDF would cost a microsecond; input with full entropy needs no stretching at all, so
it is given as a Fernet key.  Tokens sealed before this (one unsalted SHA-256 of the
passphrase, no prefix) still decrypt; rotate_encryption_key re-seals them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from django.conf import settings

SCRYPT_PREFIX = "scrypt1"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1  # 32 MiB per derivation
SALT_BYTES = 16


def generate_key() -> str:
    """A new Fernet key: what DASHBOARD_ENCRYPTION_KEYS should hold."""
    return Fernet.generate_key().decode()


def fernet_key(secret: str) -> bytes | None:
    """The secret as a Fernet key if it is one (32 bytes in url-safe base64), else None."""
    if len(secret) != 44:
        return None
    try:
        raw = base64.urlsafe_b64decode(secret.encode())
    except (binascii.Error, ValueError):
        return None
    return secret.encode() if len(raw) == 32 else None


@lru_cache(maxsize=64)
def _stretched(passphrase: str, salt: bytes) -> Fernet:
    kdf = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return Fernet(base64.urlsafe_b64encode(kdf.derive(passphrase.encode())))


def _legacy(passphrase: str) -> Fernet:
    """How keys were derived before: kept only to read tokens sealed then."""
    digest = hashlib.sha256(("lxd-dashboard-key:" + passphrase).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> list[str]:
    keys = settings.DASHBOARD_ENCRYPTION_KEYS
    if not keys:
        raise RuntimeError("DASHBOARD_ENCRYPTION_KEYS is empty")
    return list(keys)


def _fernet_for(secret: str, salt: bytes) -> Fernet:
    key = fernet_key(secret)
    return Fernet(key) if key else _stretched(secret, salt)


def encrypt(plaintext: str) -> str:
    first = _keys()[0]
    if fernet_key(first):
        return _fernet_for(first, b"").encrypt(plaintext.encode()).decode()
    salt = os.urandom(SALT_BYTES)
    token = _stretched(first, salt).encrypt(plaintext.encode()).decode()
    return f"{SCRYPT_PREFIX}${base64.urlsafe_b64encode(salt).decode()}${token}"


def _candidates(token: str) -> tuple[MultiFernet, str]:
    keys = _keys()
    prefix, _, rest = token.partition("$")
    if prefix == SCRYPT_PREFIX:
        salt_text, _, body = rest.partition("$")
        try:
            salt = base64.urlsafe_b64decode(salt_text.encode())
        except (binascii.Error, ValueError) as exc:
            raise InvalidToken from exc
        return MultiFernet([_fernet_for(k, salt) for k in keys]), body
    direct = [Fernet(key) for k in keys if (key := fernet_key(k))]
    return MultiFernet([*direct, *(_legacy(k) for k in keys)]), token


def decrypt(token: str) -> str:
    try:
        fernets, body = _candidates(token)
        return fernets.decrypt(body.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError(
            "a client private key cannot be decrypted with DASHBOARD_ENCRYPTION_KEYS "
            "(was the key changed without keeping the old one?)"
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt under the first (newest) key, with a fresh salt."""
    return encrypt(decrypt(token))
