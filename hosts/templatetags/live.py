"""{% load live %}{% live_since %}: when a page was rendered, for its live connection."""

import time

from django import template

register = template.Library()


@register.simple_tag
def live_since() -> str:
    return f"{time.time():.3f}"
