"""Projects on the real lab daemons (lab1 = d1 over its unix socket): the fleet covers every
project of a host, every instance page and action names its project (?project=) and acts on
that project only (one name in two projects is two instances), creates in a chosen project,
projects that do not exist or are malformed, and admins creating and editing projects."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from hosts.domain.ids import instance_dom_id
from hosts.domain.registration import register_host
from hosts.models import AuditEntry, ClientCertificate, Host
from tests.config_helpers import form_value, made_fixture, raw, text  # noqa: F401 (fixture)
from tests.support import logged_in, make_user

pytestmark = pytest.mark.django_db


def shared_project(made, daemon) -> str:
    """A project using the default project's images and profiles: instances made from busybox."""
    return made.project(daemon, made.name("prj"), "features.images=false", "features.profiles=false")


def twin(daemon, name: str, project: str) -> None:
    """An instance named like one of the default project, in `project`, with no nic: LXD
    refuses to start a second instance of one DNS name on the shared bridge."""
    body = {
        "name": name,
        "source": {"type": "image", "alias": "busybox"},
        "profiles": [],
        "devices": {"root": {"type": "disk", "path": "/", "pool": "default"}},
    }
    daemon.lxc("query", "--wait", "-X", "POST", f"/1.0/instances?project={project}", "-d", json.dumps(body))


def status(daemon, name: str, project: str) -> str:
    return json.loads(daemon.lxc("query", f"/1.0/instances/{name}?project={project}").stdout)["status"]


def in_project(viewname: str, *args, project: str) -> str:
    return f"{reverse(viewname, args=args)}?project={project}"


def test_the_fleet_covers_every_project_with_a_column_and_a_filter(
    admin_client, unix_host, lab, instances, made
):
    project = shared_project(made, lab.d1)
    here = instances.make(lab.d1, running=False)
    there = made.name("prj-c")
    lab.d1.lxc("init", "busybox", there, "--project", project)
    html = raw(admin_client.get(reverse("home")))
    assert f'id="{instance_dom_id("lab1", here)}"' in html
    row = html.split(f'id="{instance_dom_id("lab1", there, project)}"', 1)[1].split("</tr>", 1)[0]
    assert f'<td data-value="{project}" class="project">{project}</td>' in row
    assert f"{reverse('instance-detail', args=['lab1', there])}?project={project}" in row

    only = raw(admin_client.get(reverse("home") + f"?project={project}"))
    assert f'id="{instance_dom_id("lab1", there, project)}"' in only
    assert f'id="{instance_dom_id("lab1", here)}"' not in only
    default = raw(admin_client.get(reverse("home") + "?project=default"))
    assert f'id="{instance_dom_id("lab1", here)}"' in default and there not in default


def test_one_name_in_two_projects_is_two_instances(admin_client, unix_host, lab, instances, made):
    project = shared_project(made, lab.d1)
    name = instances.make(lab.d1, running=False)
    twin(lab.d1, name, project)

    page = admin_client.get(in_project("instance-detail", "lab1", name, project=project))
    assert page.status_code == 200
    for view in ("instance-files", "instance-snapshots", "instance-config", "instance-backups"):
        assert in_project(view, "lab1", name, project=project) in raw(page), view

    answer = admin_client.post(in_project("instance-action", "lab1", name, "start", project=project), {})
    assert answer.status_code in (200, 302), text(answer)
    assert status(lab.d1, name, project) == "Running"
    assert status(lab.d1, name, "default") == "Stopped"  # the other one is untouched

    made_snapshot = admin_client.post(
        in_project("instance-snapshots", "lab1", name, project=project), {"name": "in-project"}
    )
    assert made_snapshot.status_code in (200, 302), text(made_snapshot)
    snapshots = lab.d1.lxc("query", f"/1.0/instances/{name}/snapshots?project={project}").stdout
    assert "in-project" in snapshots
    assert "in-project" not in lab.d1.lxc("query", f"/1.0/instances/{name}/snapshots").stdout

    files = admin_client.get(in_project("instance-files", "lab1", name, project=project) + "&path=/etc")
    assert files.status_code == 200 and "passwd" in text(files)
    upload = in_project("instance-file-upload", "lab1", name, project=project) + "&path=/root/in-project"
    put = admin_client.put(upload, b"project file\n", content_type="application/octet-stream")
    assert put.status_code == 201, text(put)
    pulled = lab.d1.lxc("file", "pull", f"{name}/root/in-project", "-", "--project", project)
    assert pulled.stdout == "project file\n"
    assert lab.d1.lxc("file", "pull", f"{name}/root/in-project", "-", check=False).returncode != 0
    entry = AuditEntry.objects.filter(action="instance.start").latest("pk")
    assert entry.outcome == "ok" and entry.target == f"{name} (project {project})"
    snapshot = AuditEntry.objects.filter(action="snapshot.create").latest("pk")
    assert snapshot.target == f"{name}/in-project (project {project})"


def test_a_project_that_does_not_exist_or_breaks_the_rule(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1, running=False)
    missing = admin_client.get(in_project("instance-detail", "lab1", name, project="no-such-project"))
    assert missing.status_code == 404
    assert "lab1 has no project no-such-project" in text(missing)
    start = admin_client.post(in_project("instance-action", "lab1", name, "start", project="no-such-project"))
    assert start.status_code == 404 and "has no project no-such-project" in text(start)
    assert status(lab.d1, name, "default") == "Stopped"
    bad = admin_client.get(in_project("instance-detail", "lab1", name, project="a%2Fb"))
    assert bad.status_code == 400 and "project" in text(bad).lower()


def create_form(project: str, name: str) -> dict:
    return {"host": "lab1", "project": project, "name": name, "image": "busybox", "profiles": "default"}


def test_create_an_instance_in_a_chosen_project(admin_client, unix_host, lab, made):
    project = shared_project(made, lab.d1)
    name = made.name("prj-new")
    answer = admin_client.post(reverse("instance-create"), create_form(project, name))
    assert answer.status_code == 302, text(answer)
    assert answer["Location"] == in_project("instance-detail", "lab1", name, project=project)
    assert status(lab.d1, name, project) == "Stopped"
    assert lab.d1.lxc("info", name, check=False).returncode != 0  # not in the default project


def test_create_in_a_project_with_images_of_its_own(admin_client, unix_host, lab, made):
    """A new project has features.images=true: busybox, in the default project, is not its."""
    project = made.project(lab.d1, made.name("prj-own"), "features.profiles=false")
    name = made.name("prj-new")
    answer = admin_client.post(reverse("instance-create"), create_form(project, name))
    assert answer.status_code == 400
    message = text(answer)
    assert f"in project {project}" in message and "features.images" in message
    assert name not in lab.d1.lxc("list", "--project", project, "--format", "csv", "-c", "n").stdout


def test_create_in_a_project_that_does_not_exist(admin_client, unix_host, lab):
    answer = admin_client.post(reverse("instance-create"), create_form("no-such-project", "prj-never"))
    assert answer.status_code == 404 and "lab1 has no project no-such-project" in text(answer)
    bad = admin_client.post(reverse("instance-create"), create_form("a/b", "prj-never"))
    assert bad.status_code == 400


def project_config(daemon, name: str) -> dict:
    return json.loads(daemon.lxc("query", f"/1.0/projects/{name}").stdout)["config"]


def test_admins_create_and_edit_projects(admin_client, unix_host, lab, made):
    name = made.track_project(lab.d1, made.name("prj-adm"))
    form = {
        "name": name,
        "description": "made here",
        "features": ["features.images", "features.profiles"],
        "config": "limits.instances = 3\nrestricted = true",
    }
    made_it = admin_client.post(reverse("project-list", args=["lab1"]), form)
    assert made_it.status_code == 302, text(made_it)
    config = project_config(lab.d1, name)
    assert config["limits.instances"] == "3" and config["restricted"] == "true"
    assert config["features.images"] == "true" and config["features.storage.volumes"] == "false"

    clash = admin_client.post(reverse("project-list", args=["lab1"]), form)
    assert clash.status_code == 409 and "already exists" in text(clash)

    detail = reverse("project-detail", args=["lab1", name])
    page = raw(admin_client.get(detail))
    etag = form_value(page, "etag")
    assert etag
    edit = {**form, "config": "limits.instances = 5", "etag": etag}
    assert admin_client.post(detail, edit).status_code == 302
    config = project_config(lab.d1, name)
    assert config["limits.instances"] == "5" and "restricted" not in config

    stale = admin_client.post(detail, {**edit, "config": "limits.instances = 7"})  # the old ETag
    assert stale.status_code == 409 and "changed on the host" in text(stale)
    unknown = admin_client.post(detail, {**form, "config": "limits.bogus = 1", "etag": ""})
    assert unknown.status_code == 400 and "limits.bogus" in text(unknown)
    wrong = admin_client.post(detail, {**form, "config": "limits.instances = many", "etag": ""})
    assert wrong.status_code == 400 and "limits.instances" in text(wrong)
    assert project_config(lab.d1, name)["limits.instances"] == "5"

    operator = logged_in(make_user("prj-operator", "operator"))
    refused = operator.post(detail, {**form, "config": "limits.instances = 9", "etag": ""})
    assert refused.status_code == 403
    assert (
        operator.post(reverse("project-list", args=["lab1"]), {**form, "name": "prj-no"}).status_code == 403
    )
    assert project_config(lab.d1, name)["limits.instances"] == "5"
    assert AuditEntry.objects.filter(action="project.edit", outcome="failed").exists()


def test_a_project_in_use_is_not_deleted(admin_client, unix_host, lab, made):
    project = shared_project(made, lab.d1)
    lab.d1.lxc("init", "busybox", made.name("prj-c"), "--project", project)
    answer = admin_client.post(reverse("project-delete", args=["lab1", project]))
    assert answer.status_code == 409 and "Only empty projects can be removed" in text(answer)
    assert lab.d1.lxc("project", "show", project, check=False).returncode == 0


def register_restricted(name: str, daemon, projects: list[str]) -> Host:
    """A host whose certificate LXD then restricts to `projects` (`lxc config trust edit`):
    registration refuses a restricted certificate, so the restriction comes after it (as an
    admin of the server may make it at any time)."""
    host = register_host(name, daemon.url, token=daemon.trust_token())
    fingerprint = host.client_certificate.fingerprint
    path = f"/1.0/certificates/{fingerprint}"
    entry = daemon.admin().call("GET", path, project_scoped=False)[0]
    body = {k: entry[k] for k in ("name", "type", "certificate")} | {"restricted": True, "projects": projects}
    daemon.admin().call("PUT", path, json_body=body, project_scoped=False)
    return host


def test_a_certificate_restricted_to_one_project_sees_that_project(admin_client, lab, made):
    """LXD 5.0.2 refuses such a certificate the default project and all-projects listings: the
    fleet asks each project it may see instead."""
    project = shared_project(made, lab.d2)
    name = made.name("prj-r")
    lab.d2.lxc("init", "busybox", name, "--project", project)
    register_restricted("labr", lab.d2, [project])
    try:
        listed = raw(admin_client.get(reverse("project-list", args=["labr"])))
        assert f'data-project="{project}"' in listed and 'data-project="default"' not in listed
        html = raw(admin_client.get(reverse("home")))
        assert f'id="{instance_dom_id("labr", name, project)}"' in html
        state = raw(admin_client.get(reverse("fleet-state", args=["labr"])))
        assert f'id="{instance_dom_id("labr", name, project)}-status"' in state and "Stopped" in state
        assert "not authorized" not in html + state
    finally:
        fingerprint = ClientCertificate.default().fingerprint
        lab.d2.admin().call("DELETE", f"/1.0/certificates/{fingerprint}", project_scoped=False)
