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
