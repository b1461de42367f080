"""A host's networks on the real lab daemons (lab1 = d1 over its unix socket).

The lab's daemons share the machine's network namespace, so bridge names are unique per
machine (`l<LAB_ID>n<hex>`, at most 15 characters) and the subnets these tests give are in the
lab's own range 10.251.<LAB_ID*10+5..9>.0/24, NAT off, never routed anywhere.
"""

from __future__ import annotations

import html
import os
import secrets

import pytest
from django.contrib.auth.models import Group

from hosts.models import AuditEntry

pytestmark = pytest.mark.django_db

LAB_ID = int(os.environ.get("LAB_ID", "0"))


def subnet(i: int) -> str:
    return f"10.251.{LAB_ID * 10 + i}"


@pytest.fixture
def bridge_name(lab):
    """A free bridge name, deleted from d1 afterwards if a test made it."""
    name = f"l{LAB_ID}n{secrets.token_hex(2)}"
    yield name
    for current in (name, name + "r"):
        lab.d1.lxc("network", "delete", current, check=False)


@pytest.fixture
def bridge(lab, bridge_name):
    lab.d1.lxc(
        "network",
        "create",
        bridge_name,
        f"ipv4.address={subnet(6)}.1/24",
        "ipv4.nat=false",
        "ipv6.address=none",
    )
    return bridge_name


@pytest.fixture
def container_on(lab, bridge_name):
    """Containers on a network; deleted before the test's bridge is (which they would hold)."""
    made = []

    def make(network: str) -> str:
        name = "net-" + secrets.token_hex(3)
        lab.d1.lxc("init", "busybox", name, "--network", network)
        made.append(name)
        return name

    yield make
    for name in made:
        lab.d1.lxc("delete", "--force", name, check=False)


def create(client, **fields):
    data = {"ipv6_address": "none", "description": "", **fields}
    return client.post("/hosts/lab1/networks/", data)


def test_the_list_shows_managed_bridges_and_the_hosts_own_interfaces(admin_client, unix_host, lab):
    page = admin_client.get("/hosts/lab1/networks/").content.decode()
    row = page.split(f'id="network-lab{LAB_ID}br1"', 1)[1].split("</tr>", 1)[0]
    assert f"<code>{subnet(1)}.1/24</code>" in row and '<td class="nat">off</td>' in row
    # The default profile's nic, and every instance on d1 through it (whatever other tests left).
    used_by = len(
        lab.d1.admin().request("GET", f"/1.0/networks/lab{LAB_ID}br1").json()["metadata"]["used_by"]
    )
    assert used_by >= 1 and f'<td class="used-by">{used_by}</td>' in row
    eth0 = page.split('id="network-eth0"', 1)[1].split("</tr>", 1)[0]
    assert "physical" in eth0 and "<code>192.0.2.2/24</code>" in eth0  # from its state: unmanaged


def test_an_admin_creates_a_bridge_with_nat_off_unless_asked(admin_client, unix_host, lab, bridge_name):
    response = create(admin_client, name=bridge_name, ipv4_address=f"{subnet(5)}.1/24")
    assert response.status_code == 302, response.content.decode()[:2000]
    config = lab.d1.admin().network_and_etag(bridge_name)[0]["config"]
    assert config["ipv4.address"] == f"{subnet(5)}.1/24"
    assert config["ipv4.nat"] == "false" and config["ipv6.address"] == "none"
    detail = admin_client.get(f"/hosts/lab1/networks/{bridge_name}/").content.decode()
    assert 'id="network-nat">off<' in detail and f"{bridge_name}.gw" in detail  # its own lease entry
    assert AuditEntry.objects.get(action="network.create").outcome == "ok"


def test_a_subnet_overlapping_another_network_is_refused_before_lxd_is_asked(
    admin_client, unix_host, lab, bridge_name
):
    # LXD 5.0.2 itself creates such a bridge when the gateway address differs
    response = create(admin_client, name=bridge_name, ipv4_address=f"{subnet(1)}.7/24")
    body = html.unescape(response.content.decode())
    assert response.status_code == 409
    assert f"{subnet(1)}.0/24 overlaps lab{LAB_ID}br1 ({subnet(1)}.0/24) on lab1" in body
    # an interface LXD does not manage counts too (its state says its subnet)
    response = create(admin_client, name=bridge_name, ipv4_address="192.0.2.200/25")
    assert response.status_code == 409 and "overlaps eth0 (192.0.2.0/24)" in html.unescape(
        response.content.decode()
    )
    assert bridge_name not in {n["name"] for n in lab.d1.admin().networks()}
    assert AuditEntry.objects.filter(action="network.create", outcome="failed").count() == 2


def test_bad_bridge_input_is_a_400_naming_the_rule(admin_client, unix_host, lab, bridge_name):
    for fields, needle in (
        ({"name": "a-name-far-too-long", "ipv4_address": f"{subnet(5)}.1/24"}, "is not a valid network name"),
        ({"name": bridge_name, "ipv4_address": "auto"}, "is not an address with its prefix length"),
        ({"name": bridge_name, "ipv4_address": "fd00::1/64"}, "is not an IPv4 address"),
    ):
        response = create(admin_client, **fields)
        assert response.status_code == 400 and needle in html.unescape(response.content.decode()), fields
    assert bridge_name not in {n["name"] for n in lab.d1.admin().networks()}


def test_an_edit_is_refused_when_the_network_changed_meanwhile(admin_client, unix_host, lab, bridge):
    page = admin_client.get(f"/hosts/lab1/networks/{bridge}/").content.decode()
    etag = html.unescape(page.split('name="etag" value="', 1)[1].split('"', 1)[0])
    config = f"ipv4.address = {subnet(6)}.1/24\nipv4.nat = false\nipv6.address = none\nuser.note = edited"
    url = f"/hosts/lab1/networks/{bridge}/edit/"
    assert admin_client.post(url, {"config": config, "etag": etag, "description": "d"}).status_code == 302
    assert lab.d1.admin().network_and_etag(bridge)[0]["config"]["user.note"] == "edited"
    stale = admin_client.post(url, {"config": config + "2", "etag": etag, "description": "d"})
    assert stale.status_code == 409 and "changed on the host" in stale.content.decode()
    overlapping = config.replace(f"{subnet(6)}.1/24", f"{subnet(1)}.9/24")
    fresh = html.unescape(admin_client.get(f"/hosts/lab1/networks/{bridge}/").content.decode())
    etag = fresh.split('name="etag" value="', 1)[1].split('"', 1)[0]
    refused = admin_client.post(url, {"config": overlapping, "etag": etag, "description": "d"})
    assert refused.status_code == 409 and f"overlaps lab{LAB_ID}br1" in html.unescape(
        refused.content.decode()
    )
    assert lab.d1.admin().network_and_etag(bridge)[0]["config"]["ipv4.address"] == f"{subnet(6)}.1/24"


def test_a_network_in_use_cannot_be_deleted_or_renamed_and_lxd_says_why(
    admin_client, unix_host, lab, bridge, container_on
):
    instance = container_on(bridge)
    deleted = admin_client.post(f"/hosts/lab1/networks/{bridge}/delete/", {"confirm": "yes"})
    body = deleted.content.decode()
    assert deleted.status_code == 409
    assert f"LXD refused: The network is currently in use. {bridge} is used by instance {instance}" in body
    renamed = admin_client.post(f"/hosts/lab1/networks/{bridge}/rename/", {"new_name": bridge + "r"})
    assert renamed.status_code == 409 and "Network is currently in use" in renamed.content.decode()
    assert bridge in {n["name"] for n in lab.d1.admin().networks()}
    lab.d1.lxc("delete", instance)
    assert (
        admin_client.post(f"/hosts/lab1/networks/{bridge}/rename/", {"new_name": bridge + "r"}).status_code
        == 302
    )
    assert admin_client.post(f"/hosts/lab1/networks/{bridge}r/delete/", {"confirm": "yes"}).status_code == 302
    assert {bridge, bridge + "r"}.isdisjoint({n["name"] for n in lab.d1.admin().networks()})


def test_networks_are_for_admins_to_change(client, django_user_model, unix_host, lab, bridge_name):
    user = django_user_model.objects.create_user("net-operator", password="a-long-password-1")
    user.groups.add(Group.objects.get(name="operator"))
    client.force_login(user)
    assert client.get("/hosts/lab1/networks/").status_code == 200
    assert create(client, name=bridge_name, ipv4_address=f"{subnet(5)}.1/24").status_code == 403
    assert bridge_name not in {n["name"] for n in lab.d1.admin().networks()}


def test_the_instance_page_links_each_nic_to_its_network(admin_client, unix_host, lab, container_on, bridge):
    instance = container_on(bridge)
    page = admin_client.get(f"/hosts/lab1/instances/{instance}/").content.decode()
    assert f'href="/hosts/lab1/networks/{bridge}/">network {bridge}</a>' in page
