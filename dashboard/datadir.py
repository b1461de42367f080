"""The data directory: private to the dashboard's own user, or the dashboard does not start.

It holds the SQLite database (session keys, password hashes, the audit log, the encrypted client
keys) and the generated secrets, so a directory that other local users can enter would hand them
all of it.  Settings call prepare() first thing, in every process (daphne, runserver, the relay,
any manage.py command).

Files are made private one by one rather than with a process-wide umask 077: the secrets are
created 0600 (settings._secret_from_file), and the SQLite file is created 0600 here before
SQLite opens it; SQLite gives its -wal, -shm and -journal files the mode of the database file.
A umask would also reach every program the process starts (the test lab builds container
images from the test process, and an unprivileged container cannot read 0700 directories).
"""

from __future__ import annotations

import os
from pathlib import Path


class UnsafeDataDirError(RuntimeError):
    pass


def private_dir(path: Path, what: str, holds: str) -> Path:
    """Create `path` (0700) if missing and refuse one that group or others can access."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise UnsafeDataDirError(
            f"The {what} {path} is open to other users (mode {mode:04o}); it holds {holds}. "
            f"Make it private and start again: chmod 700 {path}"
        )
    return path


def prepare(path: Path, database: Path) -> None:
    """Create `path` (0700) if missing and refuse one that group or others can access; create
    the SQLite file `database` 0600 (or take group and other permissions away from it)."""
    private_dir(
        path,
        "data directory",
        "the database (sessions, password hashes, the audit log, encrypted keys) and the generated secrets",
    )
    if database.parent.is_dir():  # else SQLite says the file cannot be opened
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
        if database.stat().st_mode & 0o077:
            database.chmod(0o600)  # made by an earlier version, when files were created 0644
