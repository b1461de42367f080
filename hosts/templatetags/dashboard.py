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
