"""Byte counts and rates as the dashboard shows them: binary units (KiB, MiB ...), as LXD's
own size settings (limits.memory=256MiB) and its state counters are in bytes of 1024.
(LXD's progress texts say "MB/s" in units of 1000: those are shown as LXD wrote them.)"""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(value: float | None) -> str:
    """1536 -> "1.5 KiB"; None -> "" (unknown)."""
    if value is None:
        return ""
    size = float(value)
    for unit in _UNITS:
        if abs(size) < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # pragma: no cover


def human_rate(bytes_per_second: float | None) -> str:
    """A transfer rate ("12.3 MiB/s"); "" when unknown or not positive."""
    if not bytes_per_second or bytes_per_second <= 0:
        return ""
    return human_bytes(bytes_per_second) + "/s"
