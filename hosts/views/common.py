"""Small helpers shared by the views."""

from functools import wraps

from django.shortcuts import render

from ..domain.config_view import config_value
from ..lxd import LXDError
from ..lxd.names import NameRule


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


def lxd_names(**rules: NameRule):
    """Check the LXD names a URL carries (URL keyword -> rule) before the view runs: a bad one
    is a 400 page naming the rule, and never reaches LXD."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            for key, rule in rules.items():
                if key in kwargs and (error := rule.error(kwargs[key])) is not None:
                    return render(
                        request,
                        "hosts/error.html",
                        {"title": f"Invalid {rule.what}", "message": error},
                        status=400,
                    )
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
