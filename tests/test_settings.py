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
