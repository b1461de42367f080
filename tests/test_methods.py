"""Read-only views answer GET (and HEAD) only; a login lasts DASHBOARD_SESSION_SECONDS."""

import pytest
from django.conf import settings

from tests.routes import dashboard_routes, fill
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db

# The routes that accept a POST: each changes something.  Every other route is read-only and
# must refuse POST with 405 (require_safe), so a new view that forgets it fails here.
ACCEPT_POST = {
    "host-add",
    "host-config",
    "host-remove",
    "host-repin",
    "host-profiles",
    "instance-create",
    "instance-bulk",
    "instance-action",
    "instance-delete",
    "operation-cancel",
    "instance-file-upload",
    "instance-file-mkdir",
    "instance-file-delete",
    "instance-snapshots",
    "instance-snapshot-restore",
    "instance-snapshot-rename",
    "instance-snapshot-delete",
    "image-edit",
    "image-aliases",
    "image-copy",
    "image-delete",
    "network-list",
    "network-edit",
    "network-rename",
    "network-delete",
    "pool-list",
    "pool-detail",
    "pool-delete",
    "volume-resize",
    "volume-copy",
    "volume-delete",
    "volume-attach",
    "volume-detach",
    "volume-snapshot-create",
    "volume-snapshot-restore",
    "volume-snapshot-delete",
    "instance-transfer",
    "instance-bulk-move",
    "instance-backup-create",
    "instance-backup-delete",
    "backup-record-delete",
    "backup-restore",
    "schedule-new",
    "schedule-edit",
    "schedule-delete",
}


def test_read_only_views_refuse_post_even_for_an_admin(admin_client):
    """POST to every route as an admin; no host is registered, so nothing can reach LXD."""
    accepted, refused = set(), set()
    for route, name in dashboard_routes():
        response = admin_client.post(fill(route, lambda name: "1" if name == "pk" else "nohost"), {})
        (refused if response.status_code == 405 else accepted).add(name)
    assert accepted - ACCEPT_POST == set(), "read-only views that answer POST"
    assert ACCEPT_POST - accepted == set(), "views listed as accepting POST that refuse it"
    assert len(refused) >= 10


def test_a_login_lasts_the_configured_session_time(client, admin_user):
    assert settings.DASHBOARD_SESSION_SECONDS == 12 * 3600  # the default
    assert settings.SESSION_COOKIE_AGE == settings.DASHBOARD_SESSION_SECONDS
    response = client.post("/accounts/login/", {"username": "admin", "password": PASSWORD})
    assert response.status_code == 302
    assert response.cookies["sessionid"]["max-age"] == settings.DASHBOARD_SESSION_SECONDS
    assert client.session.get_expiry_age() == settings.DASHBOARD_SESSION_SECONDS
