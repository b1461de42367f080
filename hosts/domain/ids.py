"""Stable DOM ids shared by pages, htmx responses and live pushes (one helper, one scheme)."""

import re

from django import template

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def dom_id(kind: str, *parts: str) -> str:
    """dom_id("instance", "lab1", "c1") -> "instance-lab1-c1"; parts are made id-safe."""
    return "-".join([kind, *(_UNSAFE.sub("_", str(p)) for p in parts if p != "")])


register = template.Library()
register.simple_tag(dom_id, name="dom_id")
