"""Images, networks and storage in a real browser (Debian's chromium) on the real lab daemons,
served by daphne with the relay embedded: lab1 is d1 (unix socket), lab2 is d2 (HTTPS)."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.images_helpers import build_image, forget_image, sha256_of
from tests.support import new_name

pytestmark = pytest.mark.browser

LAB_ID = int(os.environ.get("LAB_ID", "0"))
UDHCPC_SCRIPT = (
    "#!/bin/sh\n"
    'case "$1" in bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface";; esac\n'
)


def wait_live(page) -> None:
    """The socket is open and the page caught up with the relay (live from here on)."""
    expect(page.locator("#live")).to_have_attribute("data-live", "open")
    expect(page.locator("#live-indicator")).to_have_attribute("data-synced", "1", timeout=10_000)


@pytest.fixture
def big_image_on_d2(lab, tmp_path):
    """200 MiB of random bytes in a busybox image, on d2 only (a copy takes about a second)."""
    path = build_image(tmp_path / "big.tar", lab.env["LAB_DIR"], release="big", blob_mib=200)
    fingerprint = sha256_of(path)
    lab.d2.lxc("image", "import", str(path), timeout=300)
    path.unlink()
    yield fingerprint
    forget_image(lab.d1, fingerprint)
    forget_image(lab.d2, fingerprint)


# Records, in the page, each percentage the panel shows for the copy's operation on lab1.
WATCH_COPY = """fingerprint => {
  window.copySeen = {percents: [], texts: []};
  const panel = document.getElementById("live-operations");
  new MutationObserver(() => {
    for (const li of panel.querySelectorAll('li[id^="operation-lab1-"]')) {
      if (!li.textContent.includes("Downloading image")) continue;
      const seen = window.copySeen, percent = li.dataset.percent;
      if (percent !== "" && seen.percents[seen.percents.length - 1] !== percent) seen.percents.push(percent);
      if (li.textContent.includes(fingerprint.slice(0, 12))) seen.texts.push(li.textContent);
    }
  }).observe(panel, {subtree: true, childList: true, attributes: true, characterData: true});
}"""


def test_a_copy_to_another_host_shows_its_progress_bar_moving(page, live_hosts, lab, big_image_on_d2):
    fingerprint = big_image_on_d2
    page.goto(f"/hosts/lab2/images/{fingerprint}/")
    wait_live(page)
    page.evaluate(WATCH_COPY, fingerprint)
    page.check('#image-copy input[name=target][value="lab1"]')
    page.click("#image-copy-submit")
    expect(page.locator('#image-copy-outcome li[data-host="lab1"]')).to_have_text(
        "Copied to lab1.", timeout=120_000
    )
    seen = page.evaluate("window.copySeen")
    moving = [int(p) for p in seen["percents"] if 0 < int(p) < 100]
    assert len(moving) >= 2 and moving == sorted(moving), seen["percents"]
    assert seen["texts"], "the bar never named the image it copies"
    assert lab.d1.admin().has_image(fingerprint)


@pytest.fixture
def cleanup(lab):
    networks, instances, volumes = [], [], []
    yield networks, instances, volumes
    for name in instances:
        lab.d1.lxc("delete", "--force", name, check=False)
    for name in volumes:
        lab.d1.lxc("storage", "volume", "delete", "default", name, check=False)
    for name in networks:
        lab.d1.lxc("network", "delete", name, check=False)


def test_a_bridge_made_here_gives_an_instance_attached_to_it_a_lease(page, live_hosts, lab, cleanup):
    networks, instances, _ = cleanup
    bridge, instance = f"l{LAB_ID}n{secrets.token_hex(2)}", new_name("lease")
    networks.append(bridge)
    instances.append(instance)
    page.goto("/hosts/lab1/networks/")
    page.fill("#id_name", bridge)
    page.fill("#id_ipv4_address", f"10.251.{LAB_ID * 10 + 7}.1/24")
    expect(page.locator("#id_ipv4_nat")).not_to_be_checked()
    page.click("#network-create-submit")
    expect(page.locator("#network-nat")).to_have_text("off")

    page.goto("/instances/create/")
    page.select_option("#id_host", "lab1")
    page.fill("#id_name", instance)
    page.fill("#id_image", "busybox")
    page.fill("#id_devices", f"eth0 nic network={bridge} name=eth0")
    page.uncheck("#id_start")
    page.click("#create-submit")
    expect(page.locator("#instance-devices")).to_contain_text(f"network {bridge}")
    page.click(f"#instance-devices a.device-network:has-text('network {bridge}')")
    expect(page.locator("#network-used-by")).to_contain_text(f"instance {instance}")

    # the lab's busybox runs no DHCP client of its own (LAB.md): ask once for a lease
    lab.d1.admin().push_file(instance, "/etc/udhcpc.sh", UDHCPC_SCRIPT.encode(), mode="0755")
    lab.d1.lxc("start", instance)
    lab.d1.lxc("exec", instance, "--", "ip", "link", "set", "eth0", "up")
    lab.d1.lxc("exec", instance, "--", "udhcpc", "-i", "eth0", "-s", "/etc/udhcpc.sh", "-q", "-n", "-t", "10")
    lease = page.locator("#network-leases tr.lease-dynamic", has_text=instance)
    deadline = time.monotonic() + 20
    while lease.count() == 0 and time.monotonic() < deadline:
        page.reload()
    expect(lease).to_contain_text(re.compile(rf"10\.251\.{LAB_ID * 10 + 7}\.\d+"))


def test_a_volume_made_and_attached_here_is_mounted_in_the_instance(page, live_hosts, lab, cleanup):
    _, instances, volumes = cleanup
    instance, volume = new_name("vol-br"), "vol-br-" + secrets.token_hex(3)
    instances.append(instance)
    volumes.append(volume)
    lab.d1.lxc("launch", "busybox", instance)
    page.goto("/hosts/lab1/storage/default/")
    page.fill("#volume-create-name", volume)
    page.click("#volume-create-submit")
    expect(page.locator("#volume-size")).to_have_text("no limit set")
    page.select_option("#volume-attach-instance", instance)
    page.click("#volume-attach-submit")
    expect(page.locator("#messages")).to_contain_text(
        f"Attached default/{volume} to {instance} at /mnt/{volume}"
    )
    expect(page.locator("#volume-attachments")).to_contain_text(instance)
    mounted = lab.d1.lxc("exec", instance, "--", "mount").stdout
    assert f" on /mnt/{volume} " in mounted, mounted
    # what the instance writes there lands in the volume (a dir pool keeps it as a directory)
    lab.d1.lxc("exec", instance, "--", "sh", "-c", f"echo from-inside > /mnt/{volume}/proof")
    kept = Path(lab.d1.lxd_dir) / "storage-pools" / "default" / "custom" / f"default_{volume}" / "proof"
    assert kept.read_text() == "from-inside\n"
    page.click(f'[data-detach="{instance}"]')
    expect(page.locator("#volume-attachments")).to_have_text("nothing")
    assert f" on /mnt/{volume} " not in lab.d1.lxc("exec", instance, "--", "mount").stdout
