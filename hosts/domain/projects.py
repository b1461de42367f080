"""LXD projects as the dashboard shows and changes them (no HTML).

A host is no longer registered for one project: pages cover every project its certificate
may see, and a page that names one (`?project=`) works on `host.for_project(name)`.  Creating
and editing projects is for admins (the views check the role); every write is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..lxd import LXDError
from ..lxd.errors import LXDAPIError, UserError
from ..lxd.names import PROJECT
from ..lxd.projects import DEFAULT_PROJECT, FEATURES, feature_on
from ..models import Host
from .audit import audited


class ProjectMissing(UserError):
    http_status = 404


class ProjectHidden(UserError):
    http_status = 403


def project_error(host: Host, exc: UserError) -> UserError:
    """`exc` as the person should read it: when a page names a project that does not exist
    (LXD then says only "Instance not found") or that the dashboard may not see, say so."""
    if host.project == DEFAULT_PROJECT or exc.http_status not in (403, 404):
        return exc
    return project_problem(host) or exc


def project_problem(host: Host) -> UserError | None:
    """What is wrong with the project `host` is scoped to (it does not exist, or the dashboard
    may not see it), or None (it is there, or the host did not say)."""
    if host.project == DEFAULT_PROJECT:
        return None
    try:
        visible = host.client().project_visible(host.project)
    except LXDError:
        return None
    if visible is False:
        return ProjectMissing(f"{host.name} has no project {host.project} (or the dashboard may not see it).")
    if visible is None:
        return ProjectHidden(
            f"the dashboard's certificate may not see project {host.project} on {host.name}."
        )
    return None


@dataclass
class ProjectRow:
    name: str
    description: str = ""
    config: dict = field(default_factory=dict)
    instances: int = 0
    profiles: int = 0

    @classmethod
    def from_lxd(cls, data: dict) -> ProjectRow:
        used = [str(u) for u in data.get("used_by") or []]
        return cls(
            name=data.get("name", ""),
            description=data.get("description") or "",
            config=dict(data.get("config") or {}),
            instances=sum(1 for u in used if u.startswith("/1.0/instances/")),
            profiles=sum(1 for u in used if u.startswith("/1.0/profiles/")),
        )

    @property
    def features(self) -> list[tuple[str, bool]]:
        return [(f.removeprefix("features."), feature_on(self.config, f)) for f in FEATURES]

    @property
    def limits(self) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in self.config.items() if not k.startswith("features."))


def projects_of(host: Host) -> list[ProjectRow]:
    return [ProjectRow.from_lxd(p) for p in host.client().projects()]


def create_project(request, host: Host, name: str, config: dict[str, str], description: str) -> None:
    PROJECT.check(name)
    with audited(request, "project.create", host=host, target=name):
        try:
            host.client().create_project(name, config, description)
        except LXDAPIError as exc:
            raise _refused(exc) from exc


def update_project(
    request, host: Host, name: str, config: dict[str, str], description: str, etag: str
) -> None:
    """Replace the project's config and description; refused (409) if it changed since `etag`."""
    with audited(request, "project.edit", host=host, target=name):
        try:
            host.client().put_project(name, config, description, etag)
        except LXDAPIError as exc:
            raise _refused(exc) from exc


def delete_project(request, host: Host, name: str) -> None:
    with audited(request, "project.delete", host=host, target=name):
        try:
            host.client().delete_project(name)
        except LXDAPIError as exc:
            raise _refused(exc) from exc


def _refused(exc: LXDAPIError) -> UserError:
    if exc.error_code == 412:
        return UserError("The project changed on the host since you opened this page: reload to see it.", 409)
    status = 409 if "already exists" in exc.message or "Only empty" in exc.message else exc.http_status
    return UserError(f"LXD refused: {exc.message}", status)
