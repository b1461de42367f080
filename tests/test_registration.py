"""Registering hosts on the real lab daemons: the happy paths and every refusal."""

import os
import socket

import pytest
from django.core.management import CommandError, call_command

from hosts.domain.registration import ConfirmationNeeded, RegistrationError, register_host
from hosts.models import ClientCertificate, Host
from tests.servers import closed_port, hanging_server, plain_http_server, tls_server_not_lxd
from tests.support import wait_until

pytestmark = pytest.mark.django_db


def trusted_fingerprints(daemon):
    return {c["fingerprint"] for c in daemon.admin().certificates()}


def test_password_registration_pins_and_trusts(lab):
    host = register_host("one", lab.d1.url, password=lab.trust_password, fingerprint=lab.d1.fingerprint())
    assert host.server_fingerprint == lab.d1.fingerprint()
    assert host.client_certificate.fingerprint in trusted_fingerprints(lab.d1)
    info, _ = host.client().server()
    assert info["auth"] == "trusted"


def test_token_registration_needs_no_prompt(served):
    """On LXD 5.0 (token in `password`) and Incus (token in `trust_token`) alike."""
    host, daemon = served.host, served.daemon
    assert host.server_fingerprint == daemon.fingerprint()
    assert host.client().server()[0]["auth"] == "trusted"
    info = daemon.admin().server()[0]["environment"]
    assert (host.server_kind, host.server_version) == (daemon.kind, info["server_version"])
    assert Host.objects.get(name=host.name).server_kind == daemon.kind


def test_a_token_for_another_server_is_refused_on_incus(lab):
    with pytest.raises(RegistrationError, match="trust token was issued by"):
        register_host("inc1", lab.incus.url, token=lab.d2.trust_token())
    assert not Host.objects.exists()


@pytest.mark.parametrize("kind", ["lxd", "incus"])
def test_a_certificate_restricted_to_a_project_is_refused(lab, kind):
    daemon = lab.d2 if kind == "lxd" else lab.incus
    trusted = daemon.client_fingerprints()
    project = "restricted-" + kind
    daemon.lxc("project", "create", project)
    try:
        token = daemon.trust_token(restricted_to=[project])
        with pytest.raises(
            RegistrationError, match=f"restricted mode only \\(projects: {project}\\)"
        ) as caught:
            register_host("limited", daemon.url, token=token)
        assert caught.value.http_status == 403
        assert f"{'incus' if kind == 'incus' else 'lxc'} config trust edit" in str(caught.value)
        assert not Host.objects.exists()
    finally:
        daemon.forget_client_certificates(keep=trusted)
        daemon.lxc("project", "delete", project, check=False)


def test_the_unix_socket_records_the_server_kind(lab):
    host = register_host("local-incus", lab.incus.socket)
    assert host.server_kind == "incus" and host.client().kind.header("mode") == "X-Incus-mode"


def test_unknown_certificate_needs_confirmation(lab):
    with pytest.raises(ConfirmationNeeded) as caught:
        register_host("one", lab.d1.url, password=lab.trust_password)
    assert caught.value.fingerprint == lab.d1.fingerprint()
    assert not Host.objects.exists()


def test_wrong_fingerprint_is_refused(lab):
    with pytest.raises(RegistrationError, match="not the expected"):
        register_host("one", lab.d1.url, password=lab.trust_password, fingerprint="ab" * 32)
    assert not Host.objects.exists()


def test_wrong_trust_password_leaves_no_host(lab):
    with pytest.raises(RegistrationError, match="refused the trust password"):
        register_host("one", lab.d1.url, password="not-the-password", accept_certificate=True)
    assert not Host.objects.exists()


def test_used_token_is_refused(lab):
    token = lab.d2.trust_token()
    register_host("first", lab.d2.url, token=token)
    # a fresh dashboard identity (new client certificate) tries the same token again
    Host.objects.all().delete()
    ClientCertificate.objects.all().delete()
    with pytest.raises(RegistrationError, match="refused the trust token"):
        register_host("second", lab.d2.url, token=token)
    assert not Host.objects.exists()


def test_bad_token_is_refused(lab):
    with pytest.raises(RegistrationError, match="not an LXD trust token"):
        register_host("one", lab.d2.url, token="bm90IGEgdG9rZW4=")
    assert not Host.objects.exists()


def test_token_for_another_server_is_refused(lab):
    token = lab.d1.trust_token()
    with pytest.raises(RegistrationError, match="trust token was issued by"):
        register_host("one", lab.d2.url, token=token)
    assert not Host.objects.exists()


def test_closed_port_is_refused():
    with pytest.raises(RegistrationError, match="connection refused"):
        register_host("one", "https://" + closed_port(), accept_certificate=True)
    assert not Host.objects.exists()


def test_plain_http_port_is_refused():
    with plain_http_server() as address, pytest.raises(RegistrationError, match="plain HTTP"):
        register_host("one", address, accept_certificate=True)
    assert not Host.objects.exists()


def test_tls_server_that_is_not_lxd_is_refused():
    with tls_server_not_lxd() as (url, _fp), pytest.raises(RegistrationError, match="not LXD"):
        register_host("one", url, password="x", accept_certificate=True)
    assert not Host.objects.exists()


@pytest.mark.timeout(60)  # a registration that waited for an answer would never end
def test_hanging_server_is_refused():
    with hanging_server() as address:
        with pytest.raises(RegistrationError, match="did not answer"):
            register_host("one", address, accept_certificate=True)
        assert address.connections() >= 1
        wait_until(address.all_dropped, 15, "the registration hanging up")
    assert not Host.objects.exists()


def test_one_server_registered_twice_is_refused_naming_the_existing_host(lab):
    register_host("two", lab.d2.url, token=lab.d2.trust_token())
    # over HTTPS again (already trusted: no secret needed to get this far)
    with pytest.raises(RegistrationError, match="already registered as host two") as refused:
        register_host("two-again", lab.d2.url, fingerprint=lab.d2.fingerprint())
    assert lab.d2.fingerprint() in str(refused.value)
    # the same daemon through its unix socket: no certificate pinned, the server's own names it
    with pytest.raises(RegistrationError, match="already registered as host two"):
        register_host("two-local", lab.d2.socket)
    assert list(Host.objects.values_list("name", flat=True)) == ["two"]


def test_a_server_registered_by_its_socket_is_refused_over_https(lab):
    local = register_host("one", lab.d1.socket)
    assert local.server_fingerprint == lab.d1.fingerprint()
    token = lab.d1.trust_token("never-spent")
    with pytest.raises(RegistrationError, match="already registered as host one"):
        register_host("one-https", lab.d1.url, token=token)
    # refused before the token was spent: it is still pending on the server
    pending = [op for op in lab.d1.admin().operations() if op.op_class == "token" and not op.is_final]
    assert pending, "the refused registration used the trust token"
    for op in pending:
        lab.d1.admin().cancel_operation(op.id)
    assert list(Host.objects.values_list("name", flat=True)) == ["one"]


def test_duplicate_name_is_refused(lab):
    register_host("dup", lab.d1.socket)
    with pytest.raises(RegistrationError, match="already registered"):
        register_host("dup", lab.d2.socket)
    assert Host.objects.count() == 1


def test_invalid_name_is_refused(lab):
    with pytest.raises(RegistrationError, match="invalid host name"):
        register_host("Bad Name!", lab.d1.socket)


def test_unix_path_that_is_not_a_socket(tmp_path):
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(RegistrationError, match="not a unix socket"):
        register_host("one", str(regular))
    with pytest.raises(RegistrationError, match="does not exist"):
        register_host("one", str(tmp_path / "missing"))
    assert not Host.objects.exists()


def test_unix_socket_that_is_not_lxd(tmp_path):
    path = str(tmp_path / "other.socket")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    try:
        with pytest.raises(RegistrationError):
            register_host("one", path)
    finally:
        listener.close()
    assert not Host.objects.exists()


def test_http_url_is_refused():
    with pytest.raises(RegistrationError, match="HTTPS only"):
        register_host("one", "http://127.0.0.1:8443")


def test_addhost_command_with_password_and_fingerprint(lab, capsys):
    call_command(
        "addhost", "cli1", lab.d1.url, "--password", lab.trust_password, "--fingerprint", lab.d1.fingerprint()
    )
    assert "Host cli1 registered" in capsys.readouterr().out
    assert Host.objects.get(name="cli1").server_fingerprint == lab.d1.fingerprint()


def test_addhost_command_prints_fingerprint_when_unconfirmed(lab):
    with pytest.raises(CommandError, match=lab.d1.fingerprint()):
        call_command("addhost", "cli1", lab.d1.url, "--password", lab.trust_password)
    assert not Host.objects.exists()


def test_addhost_command_with_token_and_accept(lab):
    call_command("addhost", "cli2", lab.d2.url, "--token", lab.d2.trust_token(), "--accept-certificate")
    assert Host.objects.get(name="cli2").client().server()[0]["auth"] == "trusted"


def test_bootstrap_registers_local_socket_from_lxd_dir(lab, monkeypatch, capsys):
    monkeypatch.setenv("LXD_DIR", lab.d1.lxd_dir)
    call_command("bootstrap")
    out = capsys.readouterr().out
    assert "password:" in out
    assert Host.objects.get(name="local").endpoint == lab.d1.socket


def test_private_key_is_encrypted_at_rest(lab):
    register_host("two", lab.d2.url, token=lab.d2.trust_token())
    cert = ClientCertificate.objects.get()
    assert "PRIVATE KEY" not in cert.private_key_encrypted
    assert "PRIVATE KEY" in cert.private_key_pem()
    assert os.environ.get("DJANGO_SETTINGS_MODULE")


def test_remove_host_can_revoke_our_certificate(lab):
    from hosts.domain.registration import remove_host

    host = register_host("two", lab.d2.url, token=lab.d2.trust_token())
    fp = host.client_certificate.fingerprint
    assert fp in trusted_fingerprints(lab.d2)
    assert remove_host(host, revoke=True) is None
    assert fp not in trusted_fingerprints(lab.d2)
    assert not Host.objects.exists()


def test_revoking_keeps_trust_that_another_registered_host_needs(lab):
    from hosts.domain.registration import remove_host

    first = register_host("two", lab.d2.url, token=lab.d2.trust_token())
    # a database from before servers were refused twice may hold the same server twice
    Host.objects.create(
        name="two-again",
        endpoint=first.endpoint,
        server_certificate=first.server_certificate,
        server_fingerprint=first.server_fingerprint,
        client_certificate=first.client_certificate,
    )
    warning = remove_host(first, revoke=True)
    assert "two-again still uses it" in warning
    assert Host.objects.get(name="two-again").client().server()[0]["auth"] == "trusted"
