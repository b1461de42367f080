"""`manage.py rotate_client_certificate` on the real lab: two HTTPS hosts (d2, d3)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from hosts.domain.registration import register_host
from hosts.models import AuditEntry, ClientCertificate, Host
from tests.servers import closed_port

pytestmark = [pytest.mark.django_db, pytest.mark.destructive]  # changes the trust stores of d2 and d3


def trust_store(daemon) -> dict[str, dict]:
    return {c["fingerprint"]: c for c in daemon.admin().certificates()}


def test_rotation_moves_every_https_host_to_a_new_certificate_and_removes_the_old(lab, capsys):
    hosts = {
        lab.d2: register_host("lab2", lab.d2.url, token=lab.d2.trust_token("rotation-d2")),
        lab.d3: register_host("lab3", lab.d3.url, token=lab.d3.trust_token("rotation-d3")),
    }
    register_host("lab1", lab.d1.socket)  # a unix host has no certificate to rotate
    old = ClientCertificate.default()

    call_command("rotate_client_certificate")

    new = ClientCertificate.default()
    assert new.fingerprint != old.fingerprint
    for daemon, host in hosts.items():
        host.refresh_from_db()
        assert host.client_certificate == new
        assert host.client().server()[0]["auth"] == "trusted"
        store = trust_store(daemon)
        assert old.fingerprint not in store
        assert store[new.fingerprint]["name"] == f"rotation-{daemon.name}"  # the old entry's name
    assert not ClientCertificate.objects.filter(fingerprint=old.fingerprint).exists()  # its key is gone
    out = capsys.readouterr().out
    assert f"lab2: now uses {new.fingerprint}; old certificate removed" in out
    assert f"Old certificate {old.fingerprint} deleted" in out
    audit = AuditEntry.objects.filter(action="certificate.rotate")
    assert sorted(audit.values_list("host_name", "outcome")) == [("lab2", "ok"), ("lab3", "ok")]
    assert {e.username for e in audit} == {"manage.py rotate_client_certificate"}


def test_a_host_that_fails_keeps_the_old_certificate_and_stays_reachable(lab, capsys):
    two = register_host("lab2", lab.d2.url, token=lab.d2.trust_token())
    three = register_host("lab3", lab.d3.url, token=lab.d3.trust_token())
    old = ClientCertificate.default()
    Host.objects.filter(pk=three.pk).update(endpoint=f"https://{closed_port()}")  # down during rotation

    with pytest.raises(CommandError, match=r"1 host\(s\) keep the old certificate: lab3"):
        call_command("rotate_client_certificate")

    assert "lab3: FAILED, keeps " + old.fingerprint in capsys.readouterr().out
    two.refresh_from_db()
    assert two.client_certificate != old and old.fingerprint not in trust_store(lab.d2)
    Host.objects.filter(pk=three.pk).update(endpoint=lab.d3.url)  # back up
    three.refresh_from_db()
    assert three.client_certificate == old  # its key was kept
    assert three.client().server()[0]["auth"] == "trusted"
    assert AuditEntry.objects.get(action="certificate.rotate", host_name="lab3").outcome == "failed"
    assert ClientCertificate.default() == two.client_certificate  # new registrations use the new one
