"""A logged-in HTTP client for the live dashboard (what a browser does, minus the browser)."""

from __future__ import annotations

import re

import requests


class DashboardSession:
    def __init__(self, base_url: str, username: str, password: str):
        self.base = base_url
        self.http = requests.Session()
        self.http.trust_env = False
        login = self.http.get(f"{base_url}/accounts/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        done = self.http.post(
            f"{base_url}/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
            allow_redirects=False,
            timeout=10,
        )
        if done.status_code != 302:
            raise RuntimeError(f"login as {username} failed: {done.status_code}")

    def post(self, path: str, data: dict | None = None, **kwargs) -> requests.Response:
        headers = {"X-CSRFToken": self.http.cookies.get("csrftoken", ""), **kwargs.pop("headers", {})}
        return self.http.post(
            self.base + path,
            data=data or {},
            headers=headers,
            allow_redirects=False,
            timeout=kwargs.pop("timeout", 60),
            **kwargs,
        )

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.base + path, timeout=kwargs.pop("timeout", 30), **kwargs)


def create_users(live_dashboard, names: list[str], role: str, password: str) -> None:
    code = (
        "from django.contrib.auth.models import Group, User\n"
        f"g = Group.objects.get(name={role!r})\n"
        f"for n in {names!r}:\n"
        f"    u, _ = User.objects.get_or_create(username=n)\n"
        f"    u.set_password({password!r}); u.save(); u.groups.add(g)\n"
    )
    live_dashboard.manage("shell", "-c", code)


def audit_outcomes(live_dashboard, usernames: list[str]) -> dict[str, int]:
    code = (
        "from collections import Counter\n"
        "from hosts.models import AuditEntry\n"
        f"qs = AuditEntry.objects.filter(username__in={usernames!r}, action__startswith='instance.')\n"
        "print(dict(Counter(qs.values_list('outcome', flat=True))))\n"
    )
    import ast

    return ast.literal_eval(live_dashboard.manage("shell", "-c", code).stdout.strip().splitlines()[-1])
