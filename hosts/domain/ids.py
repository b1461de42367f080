"""Stable DOM ids shared by pages, htmx responses and live pushes (one helper, one scheme)."""

import re

from django import template

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def dom_id(kind: str, *parts: str) -> str:
    """dom_id("instance", "lab1", "c1") -> "instance-lab1-c1"; parts are made id-safe."""
    return "-".join([kind, *(_UNSAFE.sub("_", str(p)) for p in parts if p != "")])


def instance_dom_id(host: str, name: str, project: str = "default") -> str:
    """An instance's id: dom_id("instance", host, name), and its project after "__" when not
    the default one (no instance or host name holds a "_", so ids never collide)."""
    base = dom_id("instance", host, name)
    return base if project in ("", "default") else f"{base}__{_UNSAFE.sub('_', project)}"


register = template.Library()
register.simple_tag(dom_id, name="dom_id")
