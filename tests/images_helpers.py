"""Images for the images tests and bench/images.py, built locally from the lab's busybox image
(never downloaded): unified or split, small or with a large random file, each one unique (a
random marker file makes its own fingerprint)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import tarfile
import time
from pathlib import Path

from tests.lab import LabDaemon

MiB = 1024 * 1024


def _base_members(lab_dir: str):
    """(TarInfo, data) of the lab busybox image's rootfs, read once per process."""
    cache = _base_members.__dict__.setdefault("cache", {})
    if lab_dir not in cache:
        members = []
        with tarfile.open(Path(lab_dir) / "images" / "busybox.tar.gz") as tar:
            for member in tar:
                if member.name == "metadata.yaml":
                    continue
                data = tar.extractfile(member).read() if member.isfile() else None
                members.append((member, data))
        cache[lab_dir] = members
    return cache[lab_dir]


def _metadata(release: str) -> bytes:
    return (
        f"architecture: {os.uname().machine}\ncreation_date: {int(time.time())}\n"
        f'properties:\n  os: busybox\n  release: "{release}"\n  description: "busybox ({release}), a test image"\n'
    ).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_blob(tar: tarfile.TarFile, name: str, mib: int) -> None:
    """A file of `mib` MiB of random bytes (incompressible: the image is as large as it says)."""

    class Random(io.RawIOBase):
        left = mib * MiB

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            n = min(len(buffer), self.left)
            buffer[:n] = os.urandom(n)
            self.left -= n
            return n

    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = mib * MiB, int(time.time()), 0o644
    tar.addfile(info, io.BufferedReader(Random(), 4 * MiB))


def build_image(path: Path, lab_dir: str, *, release: str = "test", blob_mib: int = 0) -> Path:
    """A unified image (an uncompressed tarball: metadata.yaml + rootfs/)."""
    with tarfile.open(path, "w") as tar:
        _add(tar, "metadata.yaml", _metadata(release))
        for member, data in _base_members(lab_dir):
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
        _add(tar, "rootfs/etc/marker", os.urandom(16).hex().encode())
        if blob_mib:
            _add_blob(tar, "rootfs/blob", blob_mib)
    return path


def build_split_image(directory: Path, lab_dir: str, *, release: str = "split") -> tuple[Path, Path]:
    """A split image: metadata.tar (metadata.yaml) and rootfs.tar (the rootfs' contents)."""
    metadata, rootfs = directory / "metadata.tar", directory / "rootfs.tar"
    with tarfile.open(metadata, "w") as tar:
        _add(tar, "metadata.yaml", _metadata(release))
    with tarfile.open(rootfs, "w") as tar:
        for member, data in _base_members(lab_dir):
            if member.name == "rootfs":
                continue
            member = copy.copy(member)
            member.name = member.name.removeprefix("rootfs/")
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
        _add(tar, "etc/marker", os.urandom(16).hex().encode())
    return metadata, rootfs


def sha256_of(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(MiB):
                digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def imported(daemon: LabDaemon, path: Path, alias: str | None = None):
    """The image imported with the daemon's own `lxc` (deleted afterwards): its fingerprint."""
    fingerprint = sha256_of(path)
    args = ["image", "import", str(path)] + (["--alias", alias] if alias else [])
    daemon.lxc(*args, timeout=300)
    try:
        yield fingerprint
    finally:
        forget_image(daemon, fingerprint)


def forget_image(daemon: LabDaemon, fingerprint: str) -> None:
    """Delete the image from the daemon if it holds it (a test's leftovers)."""
    client = daemon.admin()
    if client.has_image(fingerprint):
        client.wait(client.delete_image(fingerprint), timeout=60)


def images_dir_leftovers(daemon: LabDaemon) -> list[str]:
    """What LXD keeps mid-upload or mid-download in its images directory (lxd_build_*, ...)."""
    return sorted(n for n in os.listdir(Path(daemon.lxd_dir) / "images") if not _is_fingerprint_file(n))


def _is_fingerprint_file(name: str) -> bool:
    stem = name.removesuffix(".rootfs")
    return len(stem) == 64 and all(c in "0123456789abcdef" for c in stem)


def ws_import(
    base_url: str,
    session,
    host: str,
    files: list[Path],
    *,
    aliases: list[str] = (),
    frame: int = MiB,
    window: int = 4 * MiB,
    stop_after: int | None = None,
    header: dict | None = None,
) -> dict:
    """Import as static/js/images.js does: the description, then the files' bytes in order
    within the window, then the outcome.  `stop_after` closes the socket once that many bytes
    are sent (an interrupted upload); `header` replaces the description."""
    from websockets.sync.client import connect

    uri = base_url.replace("http://", "ws://") + f"/ws/hosts/{host}/images/import/"
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    description = header or {
        "files": [{"name": p.name, "size": p.stat().st_size} for p in files],
        "aliases": list(aliases),
    }
    with connect(uri, origin=base_url, additional_headers={"Cookie": cookie}, max_size=None) as ws:
        ws.send(json.dumps(description))
        reply = json.loads(ws.recv(timeout=30))
        if reply["type"] != "ready":
            return reply
        sent = acked = 0
        for path in files:
            with open(path, "rb") as fh:
                while piece := fh.read(frame):
                    while sent - acked >= window:
                        reply = json.loads(ws.recv(timeout=120))
                        if reply["type"] != "ack":
                            return reply
                        acked = reply["received"]
                    ws.send(piece)
                    sent += len(piece)
                    if stop_after is not None and sent >= stop_after:
                        return {"type": "stopped", "sent": sent}
        while True:
            reply = json.loads(ws.recv(timeout=300))
            if reply["type"] != "ack":
                return reply
