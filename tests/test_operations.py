"""The operations page on real daemons: only safe fields reach the browser (exec operations
carry websocket secrets), cancel where LXD allows it, wait as the seed's /wait does."""

import json

import pytest
from django.urls import reverse

from hosts.views.operations import _row

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def start_exec(daemon, name):
    """An exec waiting for its websockets: its metadata holds the fd secrets (bearer tokens)."""
    op = daemon.admin().call(
        "POST",
        f"/1.0/instances/{name}/exec",
        json_body={"command": ["sleep", "30"], "interactive": False, "wait-for-websocket": True},
    )[0]
    return op.id, list(op.metadata["fds"].values())


def image_secret(daemon):
    fingerprint = daemon.admin().resolve_image("busybox")
    secret, op_id = daemon.admin().create_image_secret(fingerprint)
    return op_id, secret


def test_operations_page_never_shows_secrets(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1)
    exec_id, fd_secrets = start_exec(lab.d1, name)
    token_id, secret = image_secret(lab.d1)
    try:
        html = admin_client.get(reverse("operation-list")).content.decode()
        assert exec_id in html and token_id in html
        assert "Executing command" in html and "Image download token" in html
        for value in [*fd_secrets, secret]:
            assert value not in html
        assert "fds" not in html
        shown = _row("lab1", lab.d1.admin().operation(exec_id))
        assert not any(s in json.dumps(shown, default=str) for s in fd_secrets)
    finally:
        lab.d1.admin().cancel_operation(token_id)


def test_cancel_where_lxd_allows_it(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1)
    token_id, _ = image_secret(lab.d1)
    page = admin_client.get(reverse("operation-list"), {"host": "lab1"}).content.decode()
    assert reverse("operation-cancel", args=["lab1", token_id]) in page
    response = admin_client.post(reverse("operation-cancel", args=["lab1", token_id]), **HX)
    assert response.status_code == 200
    assert "cancelled" in response.content.decode()
    assert lab.d1.admin().operation(token_id).status_code == 401
    # an exec cannot be cancelled: LXD's refusal comes through, as a 400
    exec_id, _ = start_exec(lab.d1, name)
    refused = admin_client.post(reverse("operation-cancel", args=["lab1", exec_id]), **HX)
    assert refused.status_code == 400
    assert "This operation can&#x27;t be cancelled" in refused.content.decode()


def test_wait_shows_running_then_the_failure_lxd_answered_200_for(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1)
    exec_id, _ = start_exec(lab.d1, name)
    url = reverse("operation-wait", args=["lab1", exec_id])
    still = admin_client.get(url, {"timeout": "1"}, **HX).content.decode()
    assert "status-running" in still
    # nobody connects the websockets: after 5 s the operation fails, and /wait says 200
    done = admin_client.get(url, {"timeout": "15"}, **HX)
    assert done.status_code == 200
    assert "status-failure" in done.content.decode()
    assert "Timed out waiting for websockets to connect" in done.content.decode()


def test_wait_on_a_forgotten_operation(admin_client, unix_host, lab):
    response = admin_client.get(
        reverse("operation-wait", args=["lab1", "00000000-0000-0000-0000-000000000000"])
    )
    assert response.status_code == 404
    assert "forgets finished ones after 5 s" in response.content.decode()
    bad = admin_client.get(reverse("operation-wait", args=["lab1", "not an id"]))
    assert bad.status_code == 400


def test_viewer_cannot_cancel(viewer_client, unix_host, lab):
    token_id, _ = image_secret(lab.d1)
    try:
        assert viewer_client.get(reverse("operation-list")).status_code == 200
        assert viewer_client.post(reverse("operation-cancel", args=["lab1", token_id])).status_code == 403
        assert lab.d1.admin().operation(token_id).status_code == 103
    finally:
        lab.d1.admin().cancel_operation(token_id)
