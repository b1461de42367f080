"""Small helpers shared by the views."""

from django.shortcuts import render

from ..config_view import config_value
from ..lxd import LXDError


def render_lxd_error(request, exc: LXDError, *, title: str = "LXD refused", status: int | None = None):
    """Show LXD's own error text on a page, with a status that fits."""
    return render(
        request,
        "hosts/error.html",
        {"title": title, "message": str(exc)},
        status=status or exc.http_status,
    )


def config_to_text(config: dict) -> str:
    return "\n".join(f"{key} = {config_value(value)}" for key, value in sorted((config or {}).items()))


def config_changes(original: dict, edited: dict[str, str]) -> dict[str, str]:
    """Only what the person changed: new or changed keys, and "" for removed ones."""
    changes = {
        key: value
        for key, value in edited.items()
        if config_value(original.get(key)) != value or key not in original
    }
    changes.update({key: "" for key in original if key not in edited})
    return changes
