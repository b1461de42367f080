"""A logged-in HTTP client for the live dashboard (what a browser does, minus the browser)."""

from __future__ import annotations

import json
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


def form_fields(page: str, form_id: str) -> dict[str, list[str]]:
    """What a browser would submit from the form `form_id` of `page`, as it stands
    (checked boxes only, selected options only): for changing one field of an admin form."""
    from html.parser import HTMLParser

    class Parser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside = False
            self.select = ""
            self.textarea = ""
            self.fields: dict[str, list[str]] = {}

        def add(self, name: str, value: str) -> None:
            self.fields.setdefault(name, []).append(value)

        def handle_starttag(self, tag, attrs):
            a = {k: (v if v is not None else "") for k, v in attrs}
            if tag == "form":
                self.inside = a.get("id") == form_id
            if not self.inside or not a.get("name") and tag != "option":
                return
            if tag == "input":
                kind = a.get("type", "text")
                if kind in ("checkbox", "radio") and "checked" not in a:
                    return
                if kind not in ("submit", "button", "file"):
                    self.add(a["name"], a.get("value", "on" if kind == "checkbox" else ""))
            elif tag == "select":
                self.select = a["name"]
            elif tag == "option" and self.select and "selected" in a:
                self.add(self.select, a.get("value", ""))
            elif tag == "textarea":
                self.textarea = a["name"]
                self.add(self.textarea, "")

        def handle_endtag(self, tag):
            if tag == "form":
                self.inside = False
            elif tag == "select":
                self.select = ""
            elif tag == "textarea":
                value = self.fields[self.textarea][-1]
                self.fields[self.textarea][-1] = value[1:] if value.startswith("\n") else value
                self.textarea = ""

        def handle_data(self, data):
            if self.textarea:
                self.fields[self.textarea][-1] += data

    parser = Parser()
    parser.feed(page)
    if not parser.fields:
        raise AssertionError(f"no form {form_id!r} with fields on the page")
    return parser.fields


def audit_entries(live_dashboard, **filters) -> list[dict]:
    """The live dashboard's audit entries matching `filters` (ORM lookups), newest first."""
    code = (
        "import json\n"
        "from hosts.models import AuditEntry\n"
        f"qs = AuditEntry.objects.filter(**{filters!r})\n"
        "print(json.dumps(list(qs.values('username', 'action', 'host_name', 'target', 'outcome', 'error'))))\n"
    )
    return json.loads(live_dashboard.manage("shell", "-c", code).stdout.strip().splitlines()[-1])
