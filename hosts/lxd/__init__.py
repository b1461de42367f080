"""The only code in the project that speaks LXD: HTTP, TLS pinning, JSON, websockets."""

from .client import LXDClient
from .endpoint import Endpoint, TLSIdentity, parse_endpoint
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
from .operation import Operation, Status

__all__ = [
    "LXDClient",
    "Endpoint",
    "TLSIdentity",
    "parse_endpoint",
    "Operation",
    "Status",
    "LXDError",
    "LXDAPIError",
    "HostUnreachable",
    "InvalidName",
    "NotLXD",
    "NotTrusted",
    "CertificateMismatch",
    "OperationFailed",
]
