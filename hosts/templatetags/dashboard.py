from ..domain.ids import register  # noqa: F401  ({% load dashboard %} then {% dom_id "instance" host name %}
