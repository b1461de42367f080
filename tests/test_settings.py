"""Production settings and key rotation."""

import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from hosts.models import ClientCertificate
from tests.lab import ROOT


def run_check(env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DASHBOARD_"))}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_in_production(tmp_path):
    result = run_check(
        {
            "DASHBOARD_PRODUCTION": "1",
            "DJANGO_SECRET_KEY": "k" * 20 + "-a-long-random-production-secret-value-0123456789",
            "DASHBOARD_ENCRYPTION_KEYS": "new-key,old-key",
            "DJANGO_ALLOWED_HOSTS": "dashboard.example.test",
            "DJANGO_CSRF_TRUSTED_ORIGINS": "https://dashboard.example.test",
            "DASHBOARD_DATA_DIR": str(tmp_path),
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secrets(tmp_path):
    result = run_check({"DASHBOARD_PRODUCTION": "1", "DASHBOARD_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "needs DJANGO_SECRET_KEY, DASHBOARD_ENCRYPTION_KEYS" in result.stderr


@pytest.mark.django_db
def test_rotate_encryption_key_re_encrypts_with_the_new_key(settings, capsys):
    settings.DASHBOARD_ENCRYPTION_KEYS = ["old-key"]
    cert = ClientCertificate.default()
    pem = cert.private_key_pem()
    settings.DASHBOARD_ENCRYPTION_KEYS = ["new-key", "old-key"]
    call_command("rotate_encryption_key")
    assert "Re-encrypted 1" in capsys.readouterr().out
    settings.DASHBOARD_ENCRYPTION_KEYS = ["new-key"]  # the old key can now be dropped
    assert ClientCertificate.objects.get(pk=cert.pk).private_key_pem() == pem
    settings.DASHBOARD_ENCRYPTION_KEYS = ["unrelated"]
    with pytest.raises(RuntimeError, match="cannot be decrypted"):
        ClientCertificate.objects.get(pk=cert.pk).private_key_pem()


def manage(data_dir, *args):
    """A manage.py command in a fresh process started with the common umask 022."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DASHBOARD_"))}
    env["DASHBOARD_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        umask=0o022,
    )


def test_start_refuses_a_data_dir_other_users_can_read(tmp_path):
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    result = manage(data, "check")
    assert result.returncode != 0
    assert "open to other users (mode 0755)" in result.stderr
    assert f"chmod 700 {data}" in result.stderr
    assert not (data / "secret_key").exists()  # refused before anything was written there


def test_a_fresh_data_dir_and_its_files_are_private(tmp_path):
    data = tmp_path / "new" / "var"
    result = manage(data, "migrate", "--noinput", "-v", "0")
    assert result.returncode == 0, result.stderr
    assert data.stat().st_mode & 0o777 == 0o700
    files = {path.name: path.stat().st_mode & 0o777 for path in data.iterdir()}
    assert {"dashboard.sqlite3", "secret_key", "encryption_key"} <= files.keys()
    assert set(files.values()) == {0o600}, files


def test_an_existing_database_file_is_made_private(tmp_path):
    data = tmp_path / "var"
    data.mkdir(mode=0o700)
    (data / "dashboard.sqlite3").touch(mode=0o644)
    (data / "dashboard.sqlite3").chmod(0o644)
    assert manage(data, "migrate", "--noinput", "-v", "0").returncode == 0
    assert (data / "dashboard.sqlite3").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("value", ["0", "abc", "86400", "nan"])
def test_a_counters_cadence_out_of_range_is_refused_with_its_name(tmp_path, value):
    result = run_check({"DASHBOARD_COUNTERS_SECONDS": value, "DASHBOARD_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "DASHBOARD_COUNTERS_SECONDS must be a number of seconds from 1 to 3600" in result.stderr


def test_the_database_comes_from_database_url_or_dashboard_db_variables(tmp_path, lab):
    """PostgreSQL (the lab's own) named either way; a password with URL-special characters
    needs no quoting in DASHBOARD_DB_PASSWORD; anything else is refused by name."""
    import psycopg

    from dashboard.database import DatabaseConfigError, from_environ

    name = "dash_settings_" + os.urandom(3).hex()
    with psycopg.connect(lab.pg_url, autocommit=True) as conn:
        conn.execute("CREATE ROLE dash_settings LOGIN PASSWORD 'p@ss:w/rd#1'")
        conn.execute(f'CREATE DATABASE "{name}" OWNER dash_settings')
    port = lab.env["LAB_PG_PORT"]
    try:
        by_url = from_environ(
            {"DATABASE_URL": f"postgresql://dash_settings:p%40ss%3Aw%2Frd%231@127.0.0.1:{port}/{name}"},
            tmp_path,
        )
        by_parts = {
            "DASHBOARD_DB_NAME": name,
            "DASHBOARD_DB_USER": "dash_settings",
            "DASHBOARD_DB_PASSWORD": "p@ss:w/rd#1",
            "DASHBOARD_DB_HOST": "127.0.0.1",
            "DASHBOARD_DB_PORT": port,
        }
        assert from_environ(by_parts, tmp_path) == by_url
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env={**os.environ, **by_parts, "DASHBOARD_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stderr
        with psycopg.connect(lab.pg_url.rsplit("/", 1)[0] + "/" + name) as conn:
            assert (
                conn.execute("SELECT count(*) FROM django_migrations WHERE app = 'hosts'").fetchone()[0] > 0
            )
    finally:
        with psycopg.connect(lab.pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute("DROP ROLE IF EXISTS dash_settings")
    for bad, says in (
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql://u@h:99999/db", "Port out of range"),
        ("postgresql://u@h/", "needs a name"),
    ):
        with pytest.raises(DatabaseConfigError, match=says):
            from_environ({"DATABASE_URL": bad}, tmp_path)
    started = run_check({"DATABASE_URL": "mysql://u@h/db", "DASHBOARD_DATA_DIR": str(tmp_path)})
    assert started.returncode != 0 and "unsupported database 'mysql'" in started.stderr
