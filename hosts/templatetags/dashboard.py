from ..domain.ids import register
from ..lxd.timestamps import parse_time

# {% load dashboard %} then {% dom_id "instance" host name %}


@register.filter
def lxd_time(value):
    """An LXD time string as a datetime (None for Go's zero time: "never")."""
    return parse_time(value if isinstance(value, str) else None)
