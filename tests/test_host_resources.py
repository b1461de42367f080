"""A host's page sums up its hardware (/1.0/resources) and leads to its images, networks and
storage; a viewer reads all of those pages and is offered no write."""

from __future__ import annotations

import os

import pytest
from django.template.defaultfilters import filesizeformat

pytestmark = pytest.mark.django_db

LAB_ID = os.environ.get("LAB_ID", "0")


def section(page: str, element_id: str) -> str:
    return page.split(f'id="{element_id}"', 1)[1].split("</dd>", 1)[0]


def test_the_host_page_sums_up_the_hardware_the_host_reports(admin_client, unix_host, lab):
    resources = lab.d1.admin().resources()
    page = admin_client.get("/hosts/lab1/").content.decode()
    threads = resources["cpu"]["total"]
    assert section(page, "resources-cpu").startswith(f">{threads} thread")
    assert f"of {filesizeformat(resources['memory']['total'])}" in section(page, "resources-memory")
    disks = section(page, "resources-disks")
    assert all(f"{d['id']}: {filesizeformat(d['size'])}" in disks for d in resources["storage"]["disks"])
    ports = [p["address"] for c in resources["network"]["cards"] for p in c.get("ports") or []]
    assert all(address in section(page, "resources-cards") for address in ports)
    for link in ('href="/hosts/lab1/networks/"', 'href="/hosts/lab1/storage/"', 'href="/images/?host=lab1"'):
        assert link in page


def test_a_viewer_reads_every_page_and_is_offered_no_write(client, django_user_model, unix_host, lab):
    client.force_login(
        django_user_model.objects.create_user("resources-viewer", password="a-long-password-1")
    )
    busybox = lab.d1.admin().resolve_image("busybox")
    for url in (
        "/hosts/lab1/",
        "/images/",
        f"/hosts/lab1/images/{busybox}/",
        "/images/import/",
        "/hosts/lab1/networks/",
        f"/hosts/lab1/networks/lab{LAB_ID}br1/",
        "/hosts/lab1/storage/",
        "/hosts/lab1/storage/default/",
    ):
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 200, url
        assert body.count('method="post"') == 1, url  # the log-out form only
    assert "Importing images needs the operator role." in client.get("/images/import/").content.decode()


def test_resources_networks_and_storage_on_each_server_kind(admin_client, served):
    """The host's pages on LXD and on Incus: hardware, its managed bridge, its pool, and a custom
    volume made and deleted through the storage page."""
    host, daemon = served.host, served.daemon
    page = admin_client.get(f"/hosts/{host.name}/").content.decode()
    assert section(page, "resources-cpu").startswith(f">{daemon.admin().resources()['cpu']['total']} thread")
    bridges = [n["name"] for n in daemon.admin().networks() if n.get("managed")]
    networks = admin_client.get(f"/hosts/{host.name}/networks/")
    assert networks.status_code == 200 and bridges and all(b in networks.content.decode() for b in bridges)
    storage = admin_client.get(f"/hosts/{host.name}/storage/")
    assert storage.status_code == 200 and 'id="pool-default"' in storage.content.decode()
    volume = "vol-kind-" + os.urandom(3).hex()
    try:
        made = admin_client.post(f"/hosts/{host.name}/storage/default/", {"name": volume, "size": "10MiB"})
        assert made.status_code == 302
        assert daemon.admin().volume("default", volume)["config"]["size"] == "10MiB"
        url = f"/hosts/{host.name}/storage/default/volumes/{volume}/delete/"
        assert admin_client.post(url, {"confirm": "yes"}).status_code == 302
        assert volume not in [v["name"] for v in daemon.admin().volumes("default")]
    finally:
        daemon.lxc("storage", "volume", "delete", "default", volume, check=False)
