"""The only code in the project that speaks LXD: HTTP, TLS pinning, JSON, websockets."""

from .client import LXDClient, Operation
from .errors import (
    CertificateMismatch,
    HostUnreachable,
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
    "NotLXD",
    "NotTrusted",
    "CertificateMismatch",
    "OperationFailed",
]
