"""Profile intentions of LXDClient (mixed into LXDClient), and how profiles expand into an
instance's config and devices.

What LXD 5.0.2 does (checked on the lab):
- profiles belong to a project (one with `features.profiles=false` uses the default
  project's); `POST /1.0/profiles` creates, `PUT` replaces config, description and devices
  (ETag on the GET), `POST /1.0/profiles/<n>` renames; all sync (later LXD makes them
  operations: `storage_and_profile_operations`, followed alike);
- a taken name: 400 `Error inserting "p" into database: The profile already exists` on create,
  `Name "p" already in use` on rename; `default` cannot be renamed or deleted;
- a profile an instance uses is refused on delete: 400 `Profile is currently in use`;
- an instance's expanded config and devices are its profiles' in order, each later one
  overriding the earlier, then its own config and devices on top.
"""

from __future__ import annotations

from urllib.parse import quote

from .instances import name_from_url

# What `PUT /1.0/profiles/<n>` replaces.
PUT_FIELDS = ("config", "description", "devices")


def _q(name: str) -> str:
    return quote(name, safe="")


class ProfilesAPI:
    """Methods here use self.call / self.get / self.run from LXDClient (project-scoped)."""

    def profiles(self) -> list[str]:
        return sorted(name_from_url(url) for url in self.get("/1.0/profiles") or [])

    def profile(self, name: str) -> dict:
        return self.get(f"/1.0/profiles/{_q(name)}") or {}

    def profiles_full(self) -> list[dict]:
        """Every profile of the project: name, description, config, devices, used_by."""
        return sorted(
            self.get("/1.0/profiles", params={"recursion": 1}) or [], key=lambda p: p.get("name", "")
        )

    def profile_and_etag(self, name: str) -> tuple[dict, str]:
        data, response = self.call("GET", f"/1.0/profiles/{_q(name)}")
        return data, response.headers.get("ETag", "")

    def create_profile(self, name: str, config: dict, devices: dict, description: str = "") -> None:
        body = {"name": name, "config": config, "devices": devices, "description": description}
        self.run("POST", "/1.0/profiles", json_body=body)

    def put_profile(self, name: str, profile: dict, etag: str) -> None:
        """Replace config, description and devices; refused (412) if the ETag moved."""
        body = {key: profile.get(key) or ({} if key != "description" else "") for key in PUT_FIELDS}
        headers = {"If-Match": etag} if etag else {}
        self.run("PUT", f"/1.0/profiles/{_q(name)}", json_body=body, headers=headers)

    def rename_profile(self, name: str, new_name: str) -> None:
        self.run("POST", f"/1.0/profiles/{_q(name)}", json_body={"name": new_name})

    def delete_profile(self, name: str) -> None:
        self.run("DELETE", f"/1.0/profiles/{_q(name)}")


def expand(
    profiles: list[dict], config: dict, devices: dict
) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[dict, str]]]:
    """What LXD makes of an instance's profile list and its own config and devices:
    key -> (value, source) and device -> (device, source), source being "instance" or the
    profile that gives it (the last one in the list that has it)."""
    expanded_config: dict[str, tuple[str, str]] = {}
    expanded_devices: dict[str, tuple[dict, str]] = {}
    for profile in profiles:
        name = profile.get("name", "")
        for key, value in (profile.get("config") or {}).items():
            expanded_config[key] = (value, name)
        for device, spec in (profile.get("devices") or {}).items():
            expanded_devices[device] = (spec, name)
    for key, value in (config or {}).items():
        expanded_config[key] = (value, "instance")
    for device, spec in (devices or {}).items():
        expanded_devices[device] = (spec, "instance")
    return expanded_config, expanded_devices
