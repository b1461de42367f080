"""The URLconf as a flat list of routes, for the tests that crawl every URL."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.urls import URLPattern, URLResolver, get_resolver

CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def all_routes() -> list[tuple[str, str | None]]:
    """(route, url name) for every pattern, admin and auth included."""
    found: list[tuple[str, str | None]] = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                found.append((prefix + str(p.pattern), p.name))

    walk(get_resolver().url_patterns)
    return found


def dashboard_routes() -> list[tuple[str, str | None]]:
    """Our own routes: not Django's admin, not login/logout."""
    return [(r, n) for r, n in all_routes() if not r.startswith(("admin/", "accounts/"))]


def fill(route: str, value: Callable[[str], str]) -> str:
    """A concrete path: each <converter:name> replaced by value(name)."""
    return "/" + CONVERTER.sub(lambda m: value(m.group(2)), route)
