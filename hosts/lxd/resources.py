"""What a host reports about its hardware (`GET /1.0/resources`), mixed into LXDClient.

About 7.5 KB on a small host (LXD-API.md §11): cpu, memory, gpu, network, storage, usb, pci,
system.  Readable by restricted clients too.
"""

from __future__ import annotations


class ResourcesAPI:
    def resources(self) -> dict:
        return self.get("/1.0/resources", project_scoped=False) or {}
