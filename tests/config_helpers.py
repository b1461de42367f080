"""Helpers of the config, profile and project tests (issue 14): pages read back, and profiles
and projects made on the real lab daemons, removed afterwards with what uses them."""

from __future__ import annotations

import html
import re

import pytest

from tests.support import new_name


def text(response) -> str:
    """The page as a person reads it (entities unescaped): for what it says."""
    return html.unescape(response.content.decode())


def raw(response) -> str:
    """The page's HTML as sent: for reading its form fields back (form_value)."""
    return response.content.decode()


def form_value(page: str, name: str) -> str:
    """A form field's value as the page (raw HTML) has it (textarea or input)."""
    match = re.search(rf'<textarea name="{name}"[^>]*>\n?(.*?)</textarea>', page, re.S)
    if match:
        return html.unescape(match.group(1))
    match = re.search(rf'<input [^>]*name="{name}"[^>]*>', page)
    assert match, f"no field {name}"
    value = re.search(r'value="([^"]*)"', match.group(0))
    return html.unescape(value.group(1)) if value else ""


def editor_form(page: str) -> dict[str, str]:
    return {name: form_value(page, name) for name in ("config", "devices", "profiles", "version")}


class Made:
    """Profiles and projects a test made on lab daemons: removed at the end, instances in them
    first (a project goes only once empty)."""

    def __init__(self):
        self.profiles: list[tuple[object, str, str]] = []
        self.projects: list[tuple[object, str]] = []

    @staticmethod
    def name(tag: str) -> str:
        """A profile, project or instance name of the tests' factory (t-<tag>-<hex>): what an
        interrupted run leaves is swept at the next start."""
        return new_name(tag)

    def profile(self, daemon, name: str, project: str = "default", *settings: str) -> str:
        self.profiles.append((daemon, name, project))
        daemon.lxc("profile", "create", name, "--project", project)
        for setting in settings:
            key, _, value = setting.partition("=")
            daemon.lxc("profile", "set", name, key, value, "--project", project)
        return name

    def track_profile(self, daemon, name: str, project: str = "default") -> str:
        self.profiles.append((daemon, name, project))
        return name

    def project(self, daemon, name: str, *config: str) -> str:
        self.projects.append((daemon, name))
        daemon.lxc("project", "create", name, *[arg for c in config for arg in ("-c", c)])
        return name

    def track_project(self, daemon, name: str) -> str:
        self.projects.append((daemon, name))
        return name

    def cleanup(self) -> None:
        for daemon, name, project in self.profiles:
            users = (
                daemon.admin().for_project(project).get(f"/1.0/profiles/{name}")
                if _has(daemon, name, project)
                else {}
            )
            for url in (users or {}).get("used_by") or []:
                instance = url.split("?")[0].rsplit("/", 1)[-1]
                daemon.lxc("profile", "remove", instance, name, "--project", project, check=False)
            daemon.lxc("profile", "delete", name, "--project", project, check=False)
        for daemon, project in self.projects:
            for instance in daemon.admin().for_project(project).get("/1.0/instances") or []:
                name = instance.split("?")[0].rsplit("/", 1)[-1]  # the URL names the project too
                daemon.lxc("delete", "--force", name, "--project", project, check=False)
            for profile in daemon.admin().for_project(project).profiles():
                if profile != "default":
                    daemon.lxc("profile", "delete", profile, "--project", project, check=False)
            daemon.lxc("project", "delete", project, check=False)


def _has(daemon, name: str, project: str) -> bool:
    return name in daemon.admin().for_project(project).profiles()


@pytest.fixture(name="made")
def made_fixture():
    things = Made()
    yield things
    things.cleanup()
