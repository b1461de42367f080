"""Secret-bearing configuration (server API keys, instance environment, cloud-init) is shown to
admins only, on every page that shows configuration, against the real lab daemons."""

from __future__ import annotations

import secrets

import pytest
from django.urls import reverse

from hosts.domain.config_view import HIDDEN
from hosts.lxd.config import is_secret_key
from tests.support import an_instance, logged_in, make_user

pytestmark = pytest.mark.django_db

SERVER_SECRET = "maas-key-" + secrets.token_hex(8)
ENV_SECRET = "env-" + secrets.token_hex(8)
USER_DATA = "#cloud-config\npassword: ud-" + secrets.token_hex(8)


@pytest.fixture
def server_secret(lab):
    """d2 with a MAAS API key: a key LXD 5.0.2 accepts and returns verbatim in GET /1.0."""
    lab.d2.lxc("config", "set", "maas.api.key", SERVER_SECRET)
    yield SERVER_SECRET
    lab.d2.lxc("config", "unset", "maas.api.key")


@pytest.fixture(scope="module")
def secret_instance(lab):
    """A running instance with an environment secret and cloud-init user data, and a snapshot."""
    with an_instance(lab.d1, running=False) as name:
        lab.d1.lxc("config", "set", name, "environment.DB_PASSWORD", ENV_SECRET)
        lab.d1.lxc("config", "set", name, "user.user-data", USER_DATA)
        lab.d1.lxc("start", name)
        lab.d1.lxc("snapshot", name, "snap0")
        yield name


def pages(name: str) -> list[str]:
    return [
        reverse("host-detail", args=["lab2"]),
        reverse("instance-detail", args=["lab1", name]),
        reverse("instance-snapshot", args=["lab1", name, "snap0"]),
        reverse("instance-log", args=["lab1", name, "lxc.conf"]),
    ]


def test_the_key_rule():
    for key in (
        "maas.api.key",
        "candid.api.key",
        "rbac.agent.private_key",
        "loki.auth.password",
        "loki.auth.username",
        "core.trust_password",
        "oidc.client.secret",
        "network.ovn.client_key",
        "environment.ANYTHING",
        "cloud-init.user-data",
        "user.user-data",
        "user.vendor-data",
        "user.network-config",
        "user.db_password",
        "raw.lxc",
    ):
        assert is_secret_key(key), key
    for key in ("core.https_address", "image.os", "volatile.base_image", "limits.memory", "user.comment"):
        assert not is_secret_key(key), key


def test_viewers_and_operators_never_see_secret_values(
    admin_client, unix_host, https_host, server_secret, secret_instance, lab
):
    secrets_set = (SERVER_SECRET, ENV_SECRET, USER_DATA.split("password: ")[1])
    for role in (None, "operator"):
        client = logged_in(make_user(f"user-{role}", role))
        for url in pages(secret_instance):
            response = client.get(url)
            body = response.content.decode()
            assert response.status_code == 200, (role, url, body[:500])
            assert not any(s in body for s in secrets_set), (role, url)
        # ... but they see that the keys are set.
        host_page = client.get(pages(secret_instance)[0]).content.decode()
        assert "maas.api.key" in host_page and HIDDEN in host_page
        instance_page = client.get(pages(secret_instance)[1]).content.decode()
        assert "environment.DB_PASSWORD" in instance_page and "user.user-data" in instance_page
        assert "image.os" in instance_page and "busybox" in instance_page  # the rest is shown
        log = client.get(pages(secret_instance)[3]).content.decode()
        assert "DB_PASSWORD=" + HIDDEN in log

    shown = "".join(admin_client.get(url).content.decode() for url in pages(secret_instance))
    assert all(s in shown for s in secrets_set)
    assert HIDDEN not in shown
