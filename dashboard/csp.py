"""Content-Security-Policy on every response: scripts only from our own static files.

The policy (settings.CONTENT_SECURITY_POLICY) is one constant header, with no per-request nonce:
every script is a file under /static/, templates hold no inline script and no on* handler, and
htmx is told not to evaluate strings (allowEval: false in base.html), so a script injected into
a page (an instance name, a file listing, a message from LXD) does not run.  A middleware of our
own rather than django-csp: a constant header is a few lines, and Django 6.0 brings its own
(SECURE_CSP, ContentSecurityPolicyMiddleware) that this one can make way for.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.deprecation import MiddlewareMixin


def policy() -> str:
    return "; ".join(
        f"{name} {' '.join(sources)}" for name, sources in settings.CONTENT_SECURITY_POLICY.items()
    )


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    def process_response(self, request, response):
        response.headers.setdefault("Content-Security-Policy", policy())
        return response
