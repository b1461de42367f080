"""The answer to a request that failed with no answer of its own (Django's handler500).

One failure has a meaning a person can act on: the dashboard's database not answering
(PostgreSQL restarted, the connection dropped, SQLite locked past its timeout): 503, and to
try again.  Every request reads the database (the session, the user, the host) before it
reaches a host, so a request made while the database is away fails before anything is sent
anywhere.  Anything else is the plain 500 it was.  Neither page reads the database (no user,
no role: the base template needs both).
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseServerError
from django.template import loader

UNAVAILABLE = (
    "The dashboard's database is not answering, so this request could not be done. Try again in a moment."
)


def server_error(request) -> HttpResponse:
    exc = sys.exc_info()[1]  # Django calls this inside its `except`
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return HttpResponseServerError(loader.render_to_string("server_error.html", {"status": 500}))
    htmx = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"
    if htmx:
        body = loader.render_to_string(
            "hosts/partials/error.html", {"title": "Database unavailable", "message": UNAVAILABLE}
        )
    else:
        body = loader.render_to_string(
            "server_error.html", {"status": 503, "title": "Database unavailable", "message": UNAVAILABLE}
        )
    response = HttpResponse(body, status=503)
    response["Retry-After"] = "5"
    return response
