import html

import pytest
from django.urls import reverse

from hosts.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_failed_and_successful_changes_are_recorded_and_filterable(admin_client, https_host, lab, admin_user):
    url = reverse("host-config", args=[https_host.name])
    page = admin_client.get(url)
    etag = page.context["form"].initial["etag"]
    admin_client.post(
        url, {"config": page.context["form"].initial["config"] + "\nbogus.key = 1", "etag": etag}
    )
    failed = AuditEntry.objects.get(action="host.config", outcome="failed")
    assert failed.username == "admin" and failed.host_name == "lab2" and "bogus.key" in failed.target
    assert failed.error  # LXD's own text

    response = admin_client.get(reverse("audit"), {"outcome": "failed", "host": "lab2"})
    body = response.content.decode()
    assert response.status_code == 200
    assert html.escape(failed.error) in body
    none = admin_client.get(reverse("audit"), {"host": "no-such-host"}).content.decode()
    assert "Nothing recorded" in none


def test_audit_is_for_admins_only(client, django_user_model):
    user = django_user_model.objects.create_user("op", password="a-long-password")
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name="operator"))
    client.force_login(user)
    assert client.get(reverse("audit")).status_code == 403


def test_a_long_target_is_kept_whole(admin_client, unix_host, lab):
    from tests.files_helpers import container, mkdir

    with container(lab.d1) as name:
        parent = "/root/" + "a" * 250 + "/" + "b" * 250
        mkdir(lab.d1, name, "/root/" + "a" * 250)
        mkdir(lab.d1, name, parent)
        url = reverse("instance-file-mkdir", args=["lab1", name])
        assert admin_client.post(url, {"dir": parent, "name": "c" * 250}).status_code == 302
    entry = AuditEntry.objects.get(action="file.mkdir", outcome="ok")
    assert entry.target == f"{name}:{parent}/{'c' * 250}"
    assert len(entry.target) > 512
