"""LXD or Incus: what GET /1.0 says, the fields a trust token travels in, the API's header names."""

import pytest

from hosts.lxd import LXDClient
from hosts.lxd.server import INCUS, LXD, ServerInfo, trust_token_fields


def info(extensions=(), server=None, version=""):
    meta = {"api_version": "1.0", "auth": "untrusted", "api_extensions": list(extensions)}
    if server:
        meta["auth"] = "trusted"
        meta["environment"] = {"server": server, "server_version": version}
    return ServerInfo.from_metadata(meta)


def test_a_token_goes_in_trust_token_alone_where_the_server_says_explicit_trust_token():
    # LXD 6.2+ answers 501 to any `password`
    lxd_6 = info(["certificate_token", "explicit_trust_token"])
    assert trust_token_fields(lxd_6, "TOKEN") == {"trust_token": "TOKEN"}


def test_where_no_extension_settles_it_the_token_goes_in_both_fields():
    # untrusted, LXD 5.0 and Incus 6.0 look alike: both list certificate_token, no environment
    for untrusted in (info(["certificate_token"]), info(["certificate_token", "oidc"]), info()):
        assert trust_token_fields(untrusted, "T") == {"password": "T", "trust_token": "T"}


def test_the_kind_and_version_come_from_the_environment_once_trusted():
    assert info(["certificate_token"]).kind is None and info().label == ""
    incus = info(["certificate_token"], "incus", "6.0.4")
    assert (incus.kind, incus.label, incus.has("certificate_token")) == (INCUS, "Incus 6.0.4", True)
    assert info(server="lxd", version="5.0.2").label == "LXD 5.0.2"
    assert info(server="something-else").kind == LXD  # the same API: LXD's headers
    assert (
        ServerInfo.from_metadata({"environment": "junk", "api_extensions": "junk"}).extensions == frozenset()
    )


@pytest.mark.parametrize("which", ["d1", "incus"])
def test_each_lab_daemon_says_what_it_is_and_names_its_headers(lab, which):
    daemon = getattr(lab, which)
    client = LXDClient(daemon.socket)  # no kind given: asked once, from GET /1.0
    assert client.kind.name == daemon.kind
    expected = "X-Incus-uid" if daemon.kind == "incus" else "X-LXD-uid"
    assert client.header("uid") == expected
    assert client.server_info().label.split()[0] == ("Incus" if daemon.kind == "incus" else "LXD")


@pytest.mark.django_db
def test_instances_never_cross_between_lxd_and_incus_but_stay_free_within_a_kind(lab, unix_host, https_host):
    from hosts.domain.registration import register_host
    from hosts.domain.server_kinds import transfer_refusal
    from hosts.models import Host

    incus = register_host("inc1", lab.incus.url, token=lab.incus.trust_token())
    assert transfer_refusal(unix_host, https_host) is None and transfer_refusal(incus, incus) is None
    refusal = transfer_refusal(unix_host, incus)
    assert refusal.startswith("lab1 runs LXD and inc1 runs Incus: instances cannot be copied or moved")
    Host.objects.filter(pk=incus.pk).update(server_kind="")  # not known yet: the host is asked
    assert transfer_refusal(Host.objects.get(pk=incus.pk), https_host).startswith(
        "inc1 runs Incus and lab2 runs LXD"
    )
    # a page listing every host asks none of them: an unknown kind is no refusal there
    assert transfer_refusal(Host.objects.get(pk=incus.pk), https_host, ask=False) is None
