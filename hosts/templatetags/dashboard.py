from datetime import UTC, datetime

from django.utils.html import format_html

from ..domain.ids import register
from ..lxd.timestamps import parse_time
from ..views.common import project_url

# {% load dashboard %} then {% dom_id "instance" host name %}
# and {% project_url "instance-files" host.name name project=row.project path="/etc" %}
register.simple_tag(project_url, name="project_url")


@register.filter
def lxd_time(value):
    """An LXD time string as a datetime (None for Go's zero time: "never")."""
    return parse_time(value if isinstance(value, str) else None)


@register.simple_tag
def when(value, never="—", seconds=False, clock=False):
    """A point in time for people: UTC in the HTML (so it reads right without JavaScript), shown
    in the viewer's own time zone by static/js/time.js, the exact UTC time on hover.

    `value` is a datetime or an LXD time string; None or Go's zero time shows `never`.
    `clock`: the time of day only (HH:MM:SS), for a time that is today's by nature."""
    if isinstance(value, str):
        value = parse_time(value)
    if not isinstance(value, datetime):
        return never
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if clock:
        shown, local = value.strftime("%H:%M:%S"), "clock"
    else:
        shown = value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
        local = "seconds" if seconds else "minutes"
    return format_html(
        '<time datetime="{}" title="{} UTC" data-local="{}">{} UTC</time>',
        value.isoformat().replace("+00:00", "Z"),
        value.strftime("%Y-%m-%d %H:%M:%S"),
        local,
        shown,
    )
