import html

import pytest
from django.urls import reverse

from hosts.models import AuditEntry
from tests.support import an_instance, form_fields, logged_in, make_user, mkdir

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


def test_audit_is_for_admins_only():
    operator = logged_in(make_user("op", "operator"))
    assert operator.get(reverse("audit")).status_code == 403


def test_a_long_target_is_kept_whole(admin_client, unix_host, lab):
    with an_instance(lab.d1) as name:
        parent = "/root/" + "a" * 250 + "/" + "b" * 250
        mkdir(lab.d1, name, "/root/" + "a" * 250)
        mkdir(lab.d1, name, parent)
        url = reverse("instance-file-mkdir", args=["lab1", name])
        assert admin_client.post(url, {"dir": parent, "name": "c" * 250}).status_code == 302
    entry = AuditEntry.objects.get(action="file.mkdir", outcome="ok")
    assert entry.target == f"{name}:{parent}/{'c' * 250}"
    assert len(entry.target) > 512


def test_changes_made_in_djangos_admin_are_audited(admin_client, django_user_model):
    from django.contrib.auth.models import Group

    bob = make_user("bob")
    change = f"/admin/auth/user/{bob.pk}/change/"
    fields = form_fields(admin_client.get(change).content.decode(), "user_form")
    fields["groups"] = [str(Group.objects.get(name="admin").pk)]
    assert admin_client.post(change, {**fields, "_save": "Save"}).status_code == 302
    entry = AuditEntry.objects.get(action="admin.change")
    assert entry.username == "admin" and entry.outcome == "ok"
    assert entry.target.startswith(f"auth.user bob (#{bob.pk}): Changed Groups")
    assert "now: groups admin; active yes" in entry.target

    # A bulk "delete selected" logs with bulk_create (no signal): each deletion is audited too.
    doomed = [django_user_model.objects.create_user(f"doomed{i}").pk for i in range(2)]
    confirm = {"action": "delete_selected", "_selected_action": doomed, "post": "yes"}
    assert admin_client.post("/admin/auth/user/", confirm).status_code == 302
    deleted = AuditEntry.objects.filter(action="admin.delete").values_list("target", flat=True)
    assert sorted(deleted) == [f"auth.user doomed{i} (#{pk})" for i, pk in enumerate(doomed)]


def test_a_hosts_registered_facts_cannot_be_edited_in_the_admin(admin_client, https_host, lab):
    change = f"/admin/hosts/host/{https_host.pk}/change/"
    page = admin_client.get(change).content.decode()
    for field in ("endpoint", "client_certificate", "server_fingerprint"):
        assert f'name="{field}"' not in page, field
    posted = {"name": https_host.name, "endpoint": lab.d1.url, "_save": "Save"}
    assert admin_client.post(change, posted).status_code == 302
    https_host.refresh_from_db()
    assert https_host.endpoint == lab.d2.url
    assert AuditEntry.objects.filter(action="admin.change", host_name=https_host.name).exists()
    assert admin_client.get("/admin/hosts/host/add/").status_code == 403


def test_the_audit_trail_sorts_by_a_column_kept_in_the_url_with_the_filters(admin_client):
    for name in ("bob", "alice", "carol"):
        AuditEntry.objects.create(username=name, action="instance.start", host_name="h1", target=name)
    AuditEntry.objects.create(username="dave", action="instance.stop", host_name="h1", target="dave")
    url = reverse("audit")
    body = admin_client.get(url, {"action": "instance.start", "sort": "user", "dir": "asc"}).content.decode()
    rows = [n for n in ("alice", "bob", "carol", "dave") if f"<td>{n}</td>" in body]
    assert rows == ["alice", "bob", "carol"]
    assert body.index("<td>alice</td>") < body.index("<td>bob</td>") < body.index("<td>carol</td>")
    assert 'aria-sort="ascending" data-col="user"' in body
    # the header flips the direction and keeps the filter; the filter form keeps the sort
    assert 'href="?action=instance.start&amp;sort=user&amp;dir=desc"' in body
    assert '<input type="hidden" name="sort" value="user">' in body
    body = admin_client.get(url, {"action": "instance.start", "sort": "user", "dir": "desc"}).content.decode()
    assert body.index("<td>carol</td>") < body.index("<td>bob</td>") < body.index("<td>alice</td>")
    # a column that does not sort, or none at all: newest first, no error
    for params in ({"sort": "error"}, {"sort": "<x>", "dir": "sideways"}, {}):
        response = admin_client.get(url, params)
        assert response.status_code == 200
        assert 'aria-sort="descending" data-col="time"' in response.content.decode()
