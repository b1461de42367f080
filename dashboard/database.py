"""The database from the environment: SQLite by default, PostgreSQL for several web processes.

    DATABASE_URL=postgresql://USER:PASSWORD@HOST:PORT/NAME?sslmode=require
    DASHBOARD_DB_NAME, DASHBOARD_DB_USER, DASHBOARD_DB_PASSWORD, DASHBOARD_DB_HOST, DASHBOARD_DB_PORT
                 (the same, one variable each: a password with URL-special characters needs no quoting)

PostgreSQL needs the `scale` extra (psycopg 3).  Anything else is refused by name, at start.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "pgsql"}


class DatabaseConfigError(RuntimeError):
    pass


def sqlite(path: Path) -> dict:
    # IMMEDIATE: a writer takes the lock at BEGIN, so two writers queue (timeout) instead of
    # one failing at once on a lock upgrade.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # WAL: readers (every page) never wait for the relay's writes, and a commit is one
        # append (synchronous=NORMAL: a power cut may lose the last commits, never the file).
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def postgresql(
    name: str, user: str = "", password: str = "", host: str = "", port: str = "", **options
) -> dict:
    if not name:
        raise DatabaseConfigError(
            "the PostgreSQL database needs a name (DATABASE_URL .../NAME or DASHBOARD_DB_NAME)"
        )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": user,
        "PASSWORD": password,
        "HOST": host,
        "PORT": str(port or ""),
        # A connection per request (ASGI runs each request's queries in a fresh thread);
        # a dead one is noticed before use rather than failing the request.
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 5, **options},
    }


def from_url(url: str) -> dict:
    """DATABASE_URL as Django's DATABASES entry; query parameters become libpq options."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path, as dj-database-url reads it
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path:
            raise DatabaseConfigError("DATABASE_URL sqlite:///PATH needs a file path")
        return sqlite(Path(path))
    if scheme not in POSTGRES_SCHEMES:
        raise DatabaseConfigError(
            f"DATABASE_URL: unsupported database {parts.scheme or '(none)'!r}: use postgresql://USER@HOST:PORT/NAME"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise DatabaseConfigError(f"DATABASE_URL: {exc}") from None
    return postgresql(
        unquote(parts.path.lstrip("/")),
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        host=unquote(parts.hostname or ""),
        port=str(port or ""),
        **dict(parse_qsl(parts.query)),
    )


def from_environ(environ, default_sqlite: Path) -> dict:
    if environ.get("DATABASE_URL"):
        return from_url(environ["DATABASE_URL"])
    if environ.get("DASHBOARD_DB_NAME"):
        return postgresql(
            environ["DASHBOARD_DB_NAME"],
            user=environ.get("DASHBOARD_DB_USER", ""),
            password=environ.get("DASHBOARD_DB_PASSWORD", ""),
            host=environ.get("DASHBOARD_DB_HOST", ""),
            port=environ.get("DASHBOARD_DB_PORT", ""),
        )
    return sqlite(default_sqlite)
