"""The remotes import from the browser (admins only): files uploaded or pasted, a token field per
remote, a line per remote; the client key never comes back into a page."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from hosts.models import AuditEntry, Host
from tests.remotes_helpers import add_remote, client_fingerprint

pytestmark = pytest.mark.django_db
URL = "/hosts/import/"


@pytest.fixture
def conf(tmp_path, lab):
    """lxc's directory with d2 (trusts the tool) and d3 (does not any more), and incus' with i1."""
    lxc = tmp_path / "lxc"
    trusted = {daemon.name: daemon.client_fingerprints() for daemon in (lab.d2, lab.d3)}
    add_remote(lxc, "d2", lab.d2)
    add_remote(lxc, "d3", lab.d3)
    lab.d3.admin().delete_certificate(client_fingerprint(lxc))
    yield lxc
    for daemon in (lab.d2, lab.d3):
        daemon.forget_client_certificates(keep=trusted[daemon.name])


def upload(conf, **extra) -> dict:
    return {
        "config_file": SimpleUploadedFile("config.yml", (conf / "config.yml").read_bytes()),
        "servercert_files": [
            SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted((conf / "servercerts").glob("*.crt"))
        ],
        "client_cert_file": SimpleUploadedFile("client.crt", (conf / "client.crt").read_bytes()),
        "client_key_file": SimpleUploadedFile("client.key", (conf / "client.key").read_bytes()),
        **extra,
    }


def test_uploaded_files_then_a_token_field_per_remote_then_a_line_each(admin_client, conf, lab):
    assert 'id="import-link"' in admin_client.get("/hosts/").content.decode()
    listed = admin_client.post(URL, upload(conf))
    page = listed.content.decode()
    assert listed.status_code == 200
    assert 'name="token-d2"' in page and 'name="token-d3"' in page
    assert "skipped: a simplestreams image server, not a host" in page
    key_body = (conf / "client.key").read_text().splitlines()[1]
    assert key_body not in page  # the key stays on the server
    ref = page.split('name="ref" value="', 1)[1].split('"', 1)[0]
    done = admin_client.post(
        URL, {"ref": ref, "remote": ["d2", "d3"], "token-d2": "", "token-d3": lab.d3.trust_token()}
    )
    html = done.content.decode()
    assert done.status_code == 200
    assert "the tool&#x27;s own client certificate" in html and "trusted with the token" in html
    assert set(Host.objects.values_list("name", flat=True)) == {"d2", "d3"}
    assert Host.objects.get(name="d2").client_certificate.imported_from == "an upload"
    assert AuditEntry.objects.filter(action="host.import", outcome="ok", username="admin").count() == 2
    # sent again (the form kept): both names are taken now, said per remote
    again = admin_client.post(URL, {"ref": ref, "remote": ["d2"]}).content.decode()
    assert "a host named &#x27;d2&#x27; is already registered" in again


def test_pasted_files_work_the_same(admin_client, conf, lab):
    pasted = "\n".join(f"{p.stem}\n{p.read_text()}" for p in sorted((conf / "servercerts").glob("*.crt")))
    data = {
        "config_text": (conf / "config.yml").read_text(),
        "servercerts_text": pasted,
        "client_cert_text": (conf / "client.crt").read_text(),
        "client_key_text": (conf / "client.key").read_text(),
    }
    page = admin_client.post(URL, data).content.decode()
    ref = page.split('name="ref" value="', 1)[1].split('"', 1)[0]
    done = admin_client.post(URL, {"ref": ref, "remote": ["d2"]})
    assert "imported" in done.content.decode() and Host.objects.filter(name="d2").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"config_text": "remotes: [unclosed\n"}, "config.yml is not valid YAML"),
        ({}, "Upload or paste the tool&#x27;s config.yml."),
        (
            {"config_text": "remotes: {}\n", "servercerts_text": "-----BEGIN CERTIFICATE-----\n"},
            "put the remote",
        ),
    ],
)
def test_bad_files_are_refused_with_the_reason(admin_client, data, message):
    response = admin_client.post(URL, {**data, "client_key_text": "SECRET-KEY-MATERIAL"})
    assert response.status_code == 400 and message in response.content.decode()
    assert "SECRET-KEY-MATERIAL" not in response.content.decode()
    assert not Host.objects.exists()


def test_an_expired_or_forged_reference_and_nothing_ticked(admin_client, conf):
    response = admin_client.post(URL, {"ref": "forged", "remote": ["d2"]})
    assert response.status_code == 400 and "expired" in response.content.decode()
    page = admin_client.post(URL, upload(conf)).content.decode()
    ref = page.split('name="ref" value="', 1)[1].split('"', 1)[0]
    assert admin_client.post(URL, {"ref": ref}).status_code == 400
    assert not Host.objects.exists()


def test_only_admins_import(client, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("op", password="a-long-password-1")
    user.groups.add(Group.objects.get(name="operator"))
    client.force_login(user)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"config_text": "remotes: {}\n"}).status_code == 403
    assert reverse("host-import") == URL
