"""The fleet page on real daemons: first paint from the cheap listing, state filled lazily per
host, filters and sorting, a down host, and the row contract other parts rely on."""

import pytest
from django.urls import reverse

from hosts.fleet.rows import render_instance_row
from hosts.lxd import LXDClient
from hosts.models import Host
from tests.servers import hanging_server
from tests.support import cell, loader_urls, wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_hosts(unix_host, https_host):
    return unix_host, https_host


def test_fleet_lists_both_hosts_and_fills_state_lazily(admin_client, two_hosts, lab, instances):
    a = instances.make(lab.d1, ip="192.0.2.10")
    b = instances.make(lab.d2, running=False)
    lab.d1.lxc("snapshot", a, "s0")
    page = admin_client.get(reverse("home"))
    html = page.content.decode()
    assert page.status_code == 200
    assert f'id="instance-lab1-{a}"' in html and f'id="instance-lab2-{b}"' in html
    # the first paint comes from recursion=1: no IPs, memory or snapshot counts yet
    assert "192.0.2.10" not in html
    assert "pending" in cell(html, f"instance-lab1-{a}-ips")
    urls = loader_urls(html)
    assert sorted(u.split("?")[0] for u in urls) == ["/fleet/state/lab1/", "/fleet/state/lab2/"]
    lab1_state = admin_client.get(next(u for u in urls if "/lab1/" in u)).content.decode()
    ips = cell(lab1_state, f"instance-lab1-{a}-ips")
    assert "192.0.2.10" in ips and 'hx-swap-oob="true"' in ips and "pending" not in ips
    assert ">1<" in cell(lab1_state, f"instance-lab1-{a}-snapshots")
    assert "iB" in cell(lab1_state, f"instance-lab1-{a}-memory")
    lab2_state = admin_client.get(next(u for u in urls if "/lab2/" in u)).content.decode()
    assert "pending" not in cell(lab2_state, f"instance-lab2-{b}-memory")
    assert "Stopped" in cell(lab2_state, f"instance-lab2-{b}-status")


def test_state_request_without_prefetch_fetches_for_itself(admin_client, unix_host, lab, instances):
    a = instances.make(lab.d1, ip="192.0.2.11")
    response = admin_client.get(reverse("fleet-state", args=["lab1"]) + "?t=unknown-token")
    assert "192.0.2.11" in cell(response.content.decode(), f"instance-lab1-{a}-ips")


@pytest.mark.timeout(60)  # a page that waited for the hung host's answer would never answer
def test_a_hanging_host_shows_as_down_and_the_rest_renders(admin_client, two_hosts, lab, instances):
    a = instances.make(lab.d1, running=False)
    _, lab2 = two_hosts
    with hanging_server() as address:
        Host.objects.filter(pk=lab2.pk).update(endpoint=f"https://{address}")
        page = admin_client.get(reverse("home"))
        # The page asked lab2, stopped waiting and hung up (no request left hanging behind it).
        assert address.connections() >= 1
        wait_until(address.all_dropped, 15, "the dashboard hanging up on lab2")
    html = page.content.decode()
    # (how long pages take with a hung host: bench/hanging_host.py)
    assert f'id="instance-lab1-{a}"' in html
    assert "lab2 did not answer in time" in html
    assert [u.split("?")[0] for u in loader_urls(html)] == ["/fleet/state/lab1/"]
    assert 'id="host-status-lab2" class="badge status-offline"' in html


def test_filters_by_status_host_and_name(admin_client, two_hosts, lab, instances):
    run1 = instances.make(lab.d1)
    stop1 = instances.make(lab.d1, running=False)
    stop2 = instances.make(lab.d2, running=False)

    def names(**params):
        html = admin_client.get(reverse("home"), params).content.decode()
        return {
            n
            for n in (run1, stop1, stop2)
            if f'data-name="{n}"' in html
            and "hidden" not in cell(html, f"instance-{'lab1' if n != stop2 else 'lab2'}-{n}")[:300]
        }

    assert names(status="stopped") == {stop1, stop2}
    assert names(status="running") == {run1}
    assert names(host="lab2") == {stop2}
    assert names(q=run1) == {run1}
    assert names(q="lab2") == {stop2}


def test_text_filter_matches_ips_once_state_arrives(admin_client, unix_host, lab, instances):
    match = instances.make(lab.d1, ip="192.0.2.77")
    other = instances.make(lab.d1, ip="192.0.2.88")
    html = admin_client.get(reverse("home"), {"q": "192.0.2.77"}).content.decode()
    # neither name matches: both are tentative (hidden) until the state says which has the IP
    assert " hidden" in cell(html, f"instance-lab1-{match}")[:200]
    state = admin_client.get(loader_urls(html)[0]).content.decode()
    row = cell(state, f"instance-lab1-{match}")
    assert 'hx-swap-oob="true"' in row and " hidden" not in row[:200] and "192.0.2.77" in row
    assert 'hx-swap-oob="delete"' in cell(state, f"instance-lab1-{other}")


def test_sort_by_column(admin_client, unix_host, lab, instances):
    first = instances.make(lab.d1, name=instances.name("aaa"), running=False)
    last = instances.make(lab.d1, name=instances.name("zzz"), running=False)
    asc = admin_client.get(reverse("home"), {"sort": "name"}).content.decode()
    desc = admin_client.get(reverse("home"), {"sort": "name", "dir": "desc"}).content.decode()
    assert asc.index(f'data-name="{first}"') < asc.index(f'data-name="{last}"')
    assert desc.index(f'data-name="{last}"') < desc.index(f'data-name="{first}"')


def test_htmx_gets_the_partial_from_the_same_view(admin_client, unix_host, lab, instances):
    a = instances.make(lab.d1, running=False)
    partial = admin_client.get(reverse("home"), HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="fleet"') and "<html" not in partial
    assert f'id="instance-lab1-{a}"' in partial


def test_render_instance_row_contract(unix_host, lab, instances):
    a = instances.make(lab.d1, ip="192.0.2.12")
    admin = LXDClient(lab.d1.socket)
    instance = admin.instance(a)
    html = render_instance_row(unix_host, instance, instance["state"])
    assert html.startswith(f'<tr id="instance-lab1-{a}"')
    for suffix in ("status", "ips", "snapshots", "memory"):
        assert f'id="instance-lab1-{a}-{suffix}"' in html
    assert "192.0.2.12" in cell(html, f"instance-lab1-{a}-ips")
    cheap = render_instance_row(unix_host, next(i for i in admin.instances(1) if i["name"] == a), None)
    assert "pending" in cell(cheap, f"instance-lab1-{a}-memory")


def test_instance_detail_leads_to_its_files_and_snapshots(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1)
    detail = admin_client.get(reverse("instance-detail", args=[unix_host.name, name])).content.decode()
    files_url = reverse("instance-files", args=[unix_host.name, name])
    assert f'href="{files_url}"' in detail
    assert f'href="{reverse("instance-snapshots", args=[unix_host.name, name])}"' in detail
    listing = admin_client.get(files_url, {"path": "/etc"}).content.decode()
    assert "hosts" in listing and "inittab" in listing
