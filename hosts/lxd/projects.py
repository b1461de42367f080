"""Project intentions of LXDClient (mixed into LXDClient), and what a project's config means.

What LXD 5.0.2 does (checked on the lab):
- `/1.0/projects` lists only the projects the client's certificate may see (a restricted
  certificate sees its own); `POST` answers 201, sync; `PUT` replaces config and description
  (ETag on the GET); `DELETE` is refused while the project holds anything but its default
  profile ("Only empty projects can be removed");
- a project that does not exist: `GET /1.0/instances?project=nope` answers an empty list (200),
  `GET /1.0/instances/c1?project=nope` "Instance not found" (404), `/1.0/profiles?project=nope`
  "Project not found" (404): only `/1.0/projects/<name>` says plainly whether it exists;
- a new project gets `features.images`, `features.profiles` and `features.storage.volumes`
  true unless told otherwise: it has no images of its own (a create from an image there fails
  "Image not found") and an empty `default` profile (a create without devices fails "No root
  device could be found"); with `features.images=false` it uses the default project's images,
  with `features.profiles=false` its profiles;
- a bad config key or value: 400 `Invalid project configuration key "limits.memory" value: ...`;
- `all-projects=true` on `/1.0/instances` lists every visible project's instances, each with
  its `project`; on `/1.0/events` it streams every project's events.
"""

from __future__ import annotations

from urllib.parse import quote

from .errors import LXDAPIError, NotTrusted

DEFAULT_PROJECT = "default"

# The features a project may have of its own (else it shares the default project's).
FEATURES = (
    "features.images",
    "features.profiles",
    "features.storage.volumes",
    "features.networks",
)
# What LXD 5.0.2 lets a project restrict or limit, as shown on the project form.
LIMITS = (
    "limits.instances",
    "limits.containers",
    "limits.virtual-machines",
    "limits.cpu",
    "limits.memory",
    "limits.processes",
    "limits.disk",
    "limits.networks",
)
RESTRICTIONS = (
    "restricted",
    "restricted.containers.nesting",
    "restricted.containers.privilege",
    "restricted.containers.lowlevel",
    "restricted.devices.disk",
    "restricted.devices.nic",
    "restricted.devices.unix-char",
    "restricted.devices.unix-block",
    "restricted.devices.unix-hotplug",
    "restricted.devices.usb",
    "restricted.devices.gpu",
    "restricted.devices.infiniband",
    "restricted.devices.pci",
    "restricted.devices.proxy",
    "restricted.idmap.uid",
    "restricted.idmap.gid",
    "restricted.virtual-machines.lowlevel",
    "restricted.snapshots",
    "restricted.networks.uplinks",
    "restricted.networks.subnets",
    "restricted.networks.zones",
    "restricted.cluster.target",
    "restricted.cluster.groups",
    "restricted.backups",
)


def _q(name: str) -> str:
    return quote(name, safe="")


def feature_on(config: dict, feature: str) -> bool:
    return str((config or {}).get(feature, "")).lower() == "true"


class ProjectsAPI:
    """Methods here use self.call / self.get / self.run from LXDClient."""

    def projects(self) -> list[dict]:
        """Every project the dashboard's certificate may see, with config and used_by."""
        return self.get("/1.0/projects", params={"recursion": 1}, project_scoped=False) or []

    def project_and_etag(self, name: str) -> tuple[dict, str]:
        data, response = self.call("GET", f"/1.0/projects/{_q(name)}", project_scoped=False)
        return data, response.headers.get("ETag", "")

    def project_visible(self, name: str) -> bool | None:
        """True if the project exists and we may see it, False if not; None if LXD refused
        to say (a restricted certificate asking for another project)."""
        try:
            self.get(f"/1.0/projects/{_q(name)}", project_scoped=False)
        except NotTrusted:
            return None
        except LXDAPIError as exc:
            if exc.error_code == 404:
                return False
            raise
        return True

    def create_project(self, name: str, config: dict[str, str], description: str = "") -> None:
        body = {"name": name, "config": config, "description": description}
        self.run("POST", "/1.0/projects", json_body=body, project_scoped=False)

    def put_project(self, name: str, config: dict[str, str], description: str, etag: str) -> None:
        """Replace config and description; refused (412) if the ETag moved."""
        headers = {"If-Match": etag} if etag else {}
        body = {"config": config, "description": description}
        self.run("PUT", f"/1.0/projects/{_q(name)}", json_body=body, headers=headers, project_scoped=False)

    def delete_project(self, name: str) -> None:
        # later LXD makes this an operation (project_delete_operation): followed alike
        self.run("DELETE", f"/1.0/projects/{_q(name)}", project_scoped=False)
