"""The only code in the project that speaks LXD: HTTP, TLS pinning, JSON, websockets."""

from .client import LXDClient, Operation
from .errors import (
    CertificateMismatch,
    HostUnreachable,
    InvalidName,
    LXDAPIError,
    LXDError,
    NotLXD,
    NotTrusted,
    OperationFailed,
)

__all__ = [
    "LXDClient",
    "Operation",
    "LXDError",
    "LXDAPIError",
    "HostUnreachable",
    "InvalidName",
    "NotLXD",
    "NotTrusted",
    "CertificateMismatch",
    "OperationFailed",
]
