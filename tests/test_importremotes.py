"""`manage.py importremotes`: the remotes of the real lxc and incus tools, set up against the lab's
daemons, registered as hosts; every bad input skipped (or refused) with its reason."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from hosts.domain.registration import register_host, remove_host
from hosts.models import AuditEntry, ClientCertificate, Host
from tests.remotes_helpers import add_remote, client_fingerprint, snapshot
from tests.servers import closed_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def lxc_conf(tmp_path, lab):
    """lxc's directory with d2 (trusts the tool's certificate) and d3 (trusted it, then forgot it)."""
    conf = tmp_path / "lxc"
    trusted = {daemon.name: daemon.client_fingerprints() for daemon in (lab.d2, lab.d3)}
    add_remote(conf, "d2", lab.d2)
    add_remote(conf, "d3", lab.d3)
    lab.d3.admin().delete_certificate(client_fingerprint(conf))
    yield conf
    for daemon in (lab.d2, lab.d3):
        daemon.forget_client_certificates(keep=trusted[daemon.name])


@pytest.fixture
def incus_conf(tmp_path, lab):
    conf = tmp_path / "incus"
    trusted = lab.incus.client_fingerprints()
    add_remote(conf, "i1", lab.incus)
    yield conf
    lab.incus.forget_client_certificates(keep=trusted)


def lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_an_lxc_configuration_becomes_hosts(lxc_conf, lab, monkeypatch, capsys):
    monkeypatch.setenv("LXD_DIR", lab.d1.lxd_dir)  # where the tool's `local` (unix://) leads
    before = snapshot(lxc_conf)
    call_command("importremotes", "--from", str(lxc_conf), "--token", f"d3={lab.d3.trust_token()}")
    out = lines(capsys)
    assert out[:4] == [
        f"d2: imported (as host d2 on {lab.d2.url}, pinned {lab.d2.fingerprint()[:12]}, the tool's own client certificate)",
        f"d3: imported (as host d3 on {lab.d3.url}, pinned {lab.d3.fingerprint()[:12]}, the dashboard's certificate, trusted with the token)",
        "images: skipped (a simplestreams image server, not a host)",
        f"local: imported (as host local on {lab.d1.socket})",
    ]
    assert out[4] == f"3 of 4 remotes imported from {lxc_conf}."
    d2, d3 = Host.objects.get(name="d2"), Host.objects.get(name="d3")
    assert d2.client().server()[0]["auth"] == "trusted" and d3.client().server()[0]["auth"] == "trusted"
    tool_cert = d2.client_certificate
    assert tool_cert.fingerprint == client_fingerprint(lxc_conf) and tool_cert.imported_from == str(lxc_conf)
    assert (
        "PRIVATE KEY" not in tool_cert.private_key_encrypted and "PRIVATE KEY" in tool_cert.private_key_pem()
    )
    assert d3.client_certificate.name == ClientCertificate.DEFAULT_NAME
    assert (d2.server_kind, d3.server_kind, Host.objects.get(name="local").server_kind) == ("lxd",) * 3
    assert snapshot(lxc_conf) == before  # the tool's files were only read
    assert AuditEntry.objects.filter(action="host.import", outcome="ok").count() == 3


def test_an_incus_configuration_becomes_hosts(incus_conf, lab, monkeypatch, capsys):
    monkeypatch.setenv("INCUS_DIR", lab.incus.lxd_dir)
    call_command("importremotes", "--from", str(incus_conf), "--names", "i1,local")
    # `local` is the same daemon as i1 (its socket): one server is registered once.
    assert lines(capsys) == [
        f"i1: imported (as host i1 on {lab.incus.url}, pinned {lab.incus.fingerprint()[:12]}, the tool's own client certificate)",
        f"local: skipped (the server at {lab.incus.socket} is already registered as host i1 "
        f"(same certificate, sha256 {lab.incus.fingerprint()}): refused)",
        f"1 of 2 remotes imported from {incus_conf}.",
    ]
    i1 = Host.objects.get(name="i1")
    assert i1.server_kind == "incus" and i1.client().server()[0]["auth"] == "trusted"

    remove_host(i1)
    call_command("importremotes", "--from", str(incus_conf), "--names", "local")
    assert lines(capsys)[0] == f"local: imported (as host local on {lab.incus.socket})"
    assert Host.objects.get(name="local").server_kind == "incus"


def test_the_tools_certificate_is_never_taken_out_of_a_trust_store(lxc_conf, lab, capsys):
    tool_fingerprint = client_fingerprint(lxc_conf)

    def trusted():
        return {c["fingerprint"] for c in lab.d2.admin().certificates()}

    call_command("importremotes", "--from", str(lxc_conf), "--names", "d2")
    warning = remove_host(Host.objects.get(name="d2"), revoke=True)
    assert "left trusted, so the tool keeps working" in warning and tool_fingerprint in trusted()
    call_command("importremotes", "--from", str(lxc_conf), "--names", "d2")
    call_command("rotate_client_certificate")
    assert "stays trusted" in capsys.readouterr().out
    assert tool_fingerprint in trusted()  # the tool still works
    assert Host.objects.get(name="d2").client().server()[0]["auth"] == "trusted"  # with the new one


def test_bad_remotes_are_skipped_each_with_its_reason(lxc_conf, lab, capsys):
    register_host("d2", lab.d1.socket)  # the name is taken
    config = lxc_conf / "config.yml"
    d2_cert = (lxc_conf / "servercerts" / "d2.crt").read_text()
    config.write_text(
        config.read_text().replace(
            "remotes:\n",
            "remotes:\n"
            f"  gone:\n    addr: https://{closed_port()}\n    protocol: lxd\n    public: false\n"
            f"  moved:\n    addr: {lab.d3.url}\n    protocol: lxd\n    public: false\n"
            "  nocert:\n    addr: https://127.0.0.1:1\n    protocol: lxd\n    public: false\n"
            "  sso:\n    addr: https://127.0.0.1:1\n    auth_type: oidc\n    protocol: incus\n",
        )
    )
    for name in ("gone", "moved"):
        (lxc_conf / "servercerts" / f"{name}.crt").write_text(d2_cert)
    call_command(
        "importremotes", "--from", str(lxc_conf), "--names", "d2,d3,gone,moved,nocert,sso,images,nope"
    )
    out = dict(line.split(": ", 1) for line in lines(capsys)[:-1])
    assert out["d2"] == "skipped (a host named 'd2' is already registered)"
    assert out["d3"].startswith(
        "skipped (it does not trust the tool's certificate: give a trust token for it"
    )
    assert out["gone"].startswith("skipped (nothing listens on") and "connection refused" in out["gone"]
    assert out["moved"] == (
        f"skipped ({lab.d3.url} now presents certificate {lab.d3.fingerprint()}, not the one the tool pinned "
        f"({lab.d2.fingerprint()}): refused. If the server's certificate was renewed, check it and register it with addhost)"
    )
    assert out["nocert"].startswith("skipped (servercerts/ holds no certificate for it")
    assert out["sso"] == "skipped (it signs in with oidc: the dashboard uses TLS client certificates only)"
    assert out["images"] == "skipped (a simplestreams image server, not a host)"
    assert out["nope"] == "skipped (config.yml has no remote of that name)"
    assert list(Host.objects.values_list("name", flat=True)) == ["d2"]  # only the one registered above
    assert not ClientCertificate.objects.exclude(imported_from="").exists()


def test_a_token_for_another_server_is_refused(lxc_conf, lab, capsys):
    call_command(
        "importremotes", "--from", str(lxc_conf), "--names", "d3", "--token", f"d3={lab.d2.trust_token()}"
    )
    assert "but the trust token was issued by" in lines(capsys)[0]
    assert not Host.objects.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("remotes: [unclosed\n", "config.yml is not valid YAML: .* \\(line 2\\)"),
        ("just a string\n", "has no `remotes:` mapping"),
        ("remotes:\n  a: {addr: x\n", "config.yml is not valid YAML"),
    ],
)
def test_a_malformed_configuration_is_refused_whole(tmp_path, text, message):
    (tmp_path / "config.yml").write_text(text)
    with pytest.raises(CommandError, match=message):
        call_command("importremotes", "--from", str(tmp_path))
    assert not Host.objects.exists() and not AuditEntry.objects.exists()


def test_a_directory_without_configuration_and_bad_token_options(tmp_path):
    with pytest.raises(CommandError, match="holds no config.yml"):
        call_command("importremotes", "--from", str(tmp_path))
    (tmp_path / "config.yml").write_text("remotes: {}\n")
    with pytest.raises(CommandError, match="--token REMOTE=TOKEN"):
        call_command("importremotes", "--from", str(tmp_path), "--token", "no-equals-sign")
