"""File and snapshot intentions of LXDClient (mixed into LXDClient)."""

from __future__ import annotations


class FilesAPI:
    """Methods here use self.request / self.call / self.run from LXDClient."""
