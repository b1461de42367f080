"""Instance, image and operation intentions of LXDClient (mixed into LXDClient)."""

from __future__ import annotations


class InstancesAPI:
    """Methods here use self.call / self.get / self.run from LXDClient."""
