"""The hosts pages, through Django's test client, against the real lab daemons."""

import json
import re

import pytest
from django.urls import reverse

from hosts.models import AuditEntry, Host
from tests.servers import hanging_server
from tests.support import wait_until

pytestmark = pytest.mark.django_db


def test_register_over_https_from_the_form_asks_to_confirm_the_fingerprint(admin_client, lab):
    form = {
        "name": "web1",
        "url": lab.d1.url,
        "auth": "password",
        "secret": lab.trust_password,
        "project": "default",
    }
    first = admin_client.post(reverse("host-add"), form)
    assert first.status_code == 200
    assert lab.d1.fingerprint() in first.content.decode()
    assert not Host.objects.exists()
    second = admin_client.post(reverse("host-add"), {**form, "fingerprint": lab.d1.fingerprint()})
    assert second.status_code == 302
    host = Host.objects.get(name="web1")
    assert host.server_fingerprint == lab.d1.fingerprint()
    assert AuditEntry.objects.filter(action="host.add", host_name="web1", outcome="ok").exists()


def test_register_with_token_from_the_form_needs_no_confirmation(admin_client, lab):
    form = {
        "name": "web2",
        "url": lab.d2.url,
        "auth": "token",
        "secret": lab.d2.trust_token(),
        "project": "default",
    }
    response = admin_client.post(reverse("host-add"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Host.objects.filter(name="web2").exists()


def test_the_confirmation_step_keeps_the_trust_password_on_the_server(admin_client, lab):
    lab.d1.forget_client_certificates()  # so the password is what gets us trusted
    form = {"name": "web3", "url": lab.d1.url, "auth": "password", "secret": lab.trust_password}
    first = admin_client.post(reverse("host-add"), {**form, "project": "default"})
    body = first.content.decode()
    assert first.status_code == 200 and lab.d1.fingerprint() in body
    assert lab.trust_password not in body
    assert lab.trust_password not in json.dumps(dict(admin_client.session))  # encrypted there
    assert first.wsgi_request.sensitive_post_parameters == ("secret",)  # hidden in error reports
    pending = re.search(r'name="pending" value="([^"]+)"', body).group(1)

    second = admin_client.post(reverse("host-add"), {"pending": pending})
    assert second.status_code == 302, second.content.decode()[:2000]
    assert Host.objects.get(name="web3").server_fingerprint == lab.d1.fingerprint()
    again = admin_client.post(reverse("host-add"), {"pending": pending})
    assert again.status_code == 400 and "expired or was already confirmed" in again.content.decode()


def test_a_refused_token_or_password_is_not_echoed_into_the_page(admin_client, lab):
    lab.d1.forget_client_certificates()
    wrong = "wrong-" + lab.trust_password[::-1]
    form = {"name": "web4", "url": lab.d1.url, "auth": "password", "secret": wrong, "project": "default"}
    confirm = admin_client.post(reverse("host-add"), form).content.decode()
    assert wrong not in confirm
    pending = re.search(r'name="pending" value="([^"]+)"', confirm).group(1)
    refused = admin_client.post(reverse("host-add"), {"pending": pending})
    body = refused.content.decode()
    assert refused.status_code == 400 and "refused the trust password" in body and wrong not in body
    assert 'value="web4"' in body  # the rest of the form is kept; the password is typed again

    token = lab.d1.trust_token()  # d1's token, offered to d2
    form = {**form, "url": lab.d2.url, "auth": "token", "secret": token}
    response = admin_client.post(reverse("host-add"), form)
    body = response.content.decode()
    assert response.status_code == 400 and "refused" in body and token not in body
    assert not Host.objects.filter(name="web4").exists()


def test_form_shows_why_registration_failed(admin_client, lab):
    form = {
        "name": "web1",
        "url": lab.d1.url,
        "auth": "password",
        "secret": "wrong",
        "project": "default",
        "fingerprint": lab.d1.fingerprint(),
    }
    response = admin_client.post(reverse("host-add"), form)
    assert response.status_code == 400
    assert "refused the trust password" in response.content.decode()
    assert not Host.objects.exists()


def test_host_detail_shows_server_information(admin_client, https_host, lab):
    response = admin_client.get(reverse("host-detail", args=[https_host.name]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "5.0.2" in body
    assert lab.d2.fingerprint() in body
    assert "core.https_address" in body


def test_config_edit_changes_only_the_config(admin_client, https_host, lab):
    url = reverse("host-config", args=[https_host.name])
    page = admin_client.get(url)
    etag = page.context["form"].initial["etag"]
    text = page.context["form"].initial["config"] + "\nuser.dashboard-test = hello"
    response = admin_client.post(url, {"config": text, "etag": etag})
    assert response.status_code == 302
    info, _ = lab.d2.admin().server()
    assert info["config"]["user.dashboard-test"] == "hello"
    assert info["config"]["core.https_address"]
    # removing the line unsets the key
    page = admin_client.get(url)
    text = "\n".join(
        line for line in page.context["form"].initial["config"].splitlines() if "user.dashboard" not in line
    )
    admin_client.post(url, {"config": text, "etag": page.context["form"].initial["etag"]})
    assert "user.dashboard-test" not in lab.d2.admin().server()[0]["config"]


def test_config_edit_with_stale_etag_is_refused(admin_client, https_host, lab):
    url = reverse("host-config", args=[https_host.name])
    page = admin_client.get(url)
    lab.d2.admin().patch_server_config({"user.other-writer": "x"}, "")
    try:
        response = admin_client.post(
            url, {"config": "user.mine = 1", "etag": page.context["form"].initial["etag"]}
        )
        assert response.status_code == 409
        assert "changed on the host" in response.content.decode()
        assert "user.mine" not in lab.d2.admin().server()[0]["config"]
    finally:
        lab.d2.admin().patch_server_config({"user.other-writer": ""}, "")


def test_config_edit_shows_lxd_error_text(admin_client, https_host, lab):
    url = reverse("host-config", args=[https_host.name])
    page = admin_client.get(url)
    text = page.context["form"].initial["config"] + "\nno.such.key = 1"
    response = admin_client.post(url, {"config": text, "etag": page.context["form"].initial["etag"]})
    assert response.status_code == 400
    assert "LXD refused the change" in response.content.decode()
    assert AuditEntry.objects.filter(action="host.config", outcome="failed").exists()


def test_changed_certificate_is_refused_with_a_clear_message(admin_client, https_host, lab):
    Host.objects.filter(pk=https_host.pk).update(endpoint=lab.d1.url)  # same URL now answers with d1's cert
    response = admin_client.get(reverse("host-detail", args=[https_host.name]))
    body = response.content.decode()
    assert response.status_code == 502
    assert (
        f"the certificate of lab2 changed: expected {lab.d2.fingerprint()}, got {lab.d1.fingerprint()}"
        in body
    )
    assert "certificate changed" in body
    # an admin checks and re-pins explicitly
    repin = admin_client.post(
        reverse("host-repin", args=[https_host.name]), {"fingerprint": lab.d1.fingerprint()}
    )
    assert repin.status_code == 302
    assert Host.objects.get(pk=https_host.pk).server_fingerprint == lab.d1.fingerprint()


@pytest.mark.timeout(60)  # a page that waited for the hung host's answer would never answer
def test_a_hanging_host_does_not_hold_the_pages(admin_client, https_host):
    with hanging_server() as address:
        Host.objects.filter(pk=https_host.pk).update(endpoint=f"https://{address}")
        for url in (reverse("home"), reverse("host-detail", args=[https_host.name])):
            response = admin_client.get(url)
            assert "offline" in response.content.decode()
            # It asked the host, stopped waiting and hung up (nothing left hanging behind it).
            assert address.connections() >= 1
            wait_until(address.all_dropped, 15, f"{url} hanging up on the host")


def test_remove_host(admin_client, https_host, lab):
    fp = https_host.client_certificate.fingerprint
    response = admin_client.post(reverse("host-remove", args=[https_host.name]), {"revoke": "on"})
    assert response.status_code == 302
    assert not Host.objects.exists()
    assert fp not in {c["fingerprint"] for c in lab.d2.admin().certificates()}


def test_viewer_cannot_register_or_edit(viewer_client, https_host):
    assert viewer_client.get(reverse("host-detail", args=[https_host.name])).status_code == 200
    response = viewer_client.post(reverse("host-config", args=[https_host.name]), {"config": "a = b"})
    assert response.status_code == 403
    assert viewer_client.post(reverse("host-remove", args=[https_host.name])).status_code == 403
    assert Host.objects.filter(pk=https_host.pk).exists()


def test_admin_pages_never_show_a_private_key(admin_client, https_host):
    cert = https_host.client_certificate
    for url in (
        f"/admin/hosts/clientcertificate/{cert.pk}/change/",
        f"/admin/hosts/host/{https_host.pk}/change/",
        reverse("host-detail", args=[https_host.name]),
    ):
        body = admin_client.get(url).content.decode()
        assert "PRIVATE KEY" not in body
        assert cert.private_key_encrypted[:40] not in body
