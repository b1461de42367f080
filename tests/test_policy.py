"""Operators must not own the hosts: what a role may write into an instance's config, devices and
profile list (hosts/policy.py), on plain inputs and through the create form on the real lab."""

from types import SimpleNamespace

import pytest
from django.urls import reverse

from hosts.domain.policy import PolicyRefused, check_write, refusals
from hosts.models import AuditEntry
from tests.support import PREFIX, logged_in, make_user, status_of

pytestmark = pytest.mark.django_db

HOST = SimpleNamespace(name="lab1", operator_profiles=["default"])

# (key, value, whether LXD 5.0.2 accepts it on a container at create time)
DANGEROUS_CONFIG = [
    ("security.privileged", "true", True),
    ("raw.lxc", "lxc.mount.entry = / mnt/hostroot none rbind,create=dir 0 0", True),
    ("raw.idmap", "both 0 0", True),
    ("raw.apparmor", "mount,", True),
    ("raw.seccomp", "2", True),
    ("linux.kernel_modules", "ip_tables", True),
    ("raw.qemu", "-S", False),  # a VM key: LXD itself refuses it on a container
    ("security.nesting", "true", True),
    ("security.syscalls.intercept.mount", "true", True),
    ("security.syscalls.intercept.mknod", "true", True),
    ("security.idmap.isolated", "true", True),
    ("limits.kernel.nofile", "1048576", True),
    ("nvidia.runtime", "true", True),
    ("volatile.eth0.hwaddr", "00:16:3e:00:00:01", True),
    ("migration.incremental.memory", "true", True),
]

# (device line as the form takes it, the refused subject named, LXD accepts it at create)
DANGEROUS_DEVICES = [
    (
        "host disk path=/mnt/host source=/",
        "device host: operators attach a disk only from a storage pool",
        True,
    ),
    ("host disk pool=default path=/data source=/etc", "source /etc is not a custom volume name", False),
    ("host disk pool=default path=/data source=vol shift=true", "disk key shift needs the admin role", False),
    ("host disk pool=default path=/data source=vol raw.mount.options=x", "raw.mount.options needs", False),
    ("host disk pool=default path=/data source=vol propagation=shared", "propagation needs", False),
    ("host unix-char path=/dev/kmsg source=/dev/kmsg", "type unix-char needs the admin role", True),
    ("host unix-block path=/dev/loop0 source=/dev/loop0", "type unix-block needs the admin role", True),
    ("host unix-hotplug vendorid=1234", "type unix-hotplug needs the admin role", True),
    ("host gpu", "type gpu needs the admin role", True),
    ("host usb vendorid=1d6b", "type usb needs the admin role", True),
    ("host proxy listen=tcp:127.0.0.1:1 connect=tcp:127.0.0.1:22", "type proxy needs the admin role", True),
    ("host infiniband nictype=physical parent=lab0ib1", "type infiniband needs the admin role", True),
    ("host pci address=0000:00:01.0", "type pci needs the admin role", False),
    ("host tpm path=/dev/tpm0 pathrm=/dev/tpmrm0", "type tpm needs the admin role", True),
    ("host nic nictype=bridged parent=lab1br1 name=eth1", "nic key nictype needs the admin role", True),
    ("host nic nictype=physical parent=lab1br2 name=eth1", "nic key parent needs the admin role", True),
]


# -- the rule on plain inputs ----------------------------------------------------------


def test_admins_may_write_everything():
    config = {key: value for key, value, _ in DANGEROUS_CONFIG}
    devices = {"d": {"type": "unix-char", "path": "/dev/kmsg"}, "r": {"type": "disk", "source": "/"}}
    assert refusals("admin", HOST, config=config, devices=devices, profiles=["anything"]) == []


@pytest.mark.parametrize("key", [key for key, _, _ in DANGEROUS_CONFIG] + ["bogus.key", "limits.", "user."])
def test_operators_may_not_write_keys_outside_the_allow_list(key):
    with pytest.raises(PolicyRefused) as refused:
        check_write("operator", HOST, config={key: "1"})
    assert refused.value.http_status == 403
    assert refused.value.refused[0].startswith(f"{key} needs the admin role")


def test_operators_may_write_the_allow_listed_keys_and_pool_and_network_devices():
    config = {
        "limits.cpu": "1",
        "limits.memory": "128MiB",
        "user.note": "x",
        "environment.FOO": "bar",
        "cloud-init.user-data": "#cloud-config",
        "boot.autostart": "true",
        "snapshots.schedule": "@daily",
        "image.description": "mine",
    }
    devices = {
        "root": {"type": "disk", "pool": "default", "path": "/", "size": "1GiB"},
        "data": {"type": "disk", "pool": "default", "source": "vol1", "path": "/data", "readonly": "true"},
        "eth1": {
            "type": "nic",
            "network": "lxdbr0",
            "name": "eth1",
            "limits.ingress": "1Mbit",
            "mtu": "1400",
        },
        "gpu0": {"type": "none"},
        "gone": None,  # removing a device only takes away what the instance had
    }
    assert refusals("operator", HOST, config=config, devices=devices, profiles=["default"]) == []


def test_every_refusal_is_named_at_once():
    found = refusals(
        "operator",
        HOST,
        config={"security.privileged": "true", "raw.lxc": "x", "user.ok": "1"},
        devices={"k": {"type": "unix-char", "path": "/dev/kmsg"}, "e": {"type": "nic", "parent": "br0"}},
        profiles=["default", "gpu"],
    )
    text = "; ".join(found)
    for subject in (
        "raw.lxc needs",
        "security.privileged needs",
        "device k: type unix-char",
        "nic key parent",
    ):
        assert subject in text
    assert "profile gpu is not allowed for operators on lab1" in text
    assert "user.ok" not in text and "profile default" not in text


def test_no_profile_list_means_lxds_default_profile():
    nothing_allowed = SimpleNamespace(name="lab1", operator_profiles=[])
    assert "profile default is not allowed" in refusals("operator", nothing_allowed, profiles=None)[0]
    assert refusals("operator", nothing_allowed, profiles=()) == []
    assert refusals("operator", HOST, profiles=None) == []


def test_viewers_and_strangers_may_write_nothing():
    viewer = make_user("v")
    with pytest.raises(PolicyRefused, match="needs the operator role; you are a viewer"):
        check_write(viewer, HOST, config={"user.x": "1"})
    assert refusals(None, HOST, profiles=()) != []


# -- through the create form, on the real lab ------------------------------------------


@pytest.fixture
def operator_client():
    return logged_in(make_user("op", "operator"))


@pytest.fixture
def admin_browser(admin_user):
    """The admin in a client of their own (the operator has the other)."""
    return logged_in(admin_user)


def create(client, name: str, **fields):
    return client.post(
        reverse("instance-create"), {"host": "lab1", "name": name, "image": "busybox", **fields}
    )


def refused_then_admin_creates(operator_client, admin_browser, lab, instances, fields, named, lxd_accepts):
    name = instances.track(lab.d1, instances.name())
    refused = create(operator_client, name, **fields)
    body = refused.content.decode()
    assert refused.status_code == 403, body[:2000]
    assert named in body.replace("&#x27;", "'").replace("&quot;", '"')
    assert status_of(lab.d1, name) is None  # nothing reached LXD
    entry = AuditEntry.objects.get(action="instance.create", target=name)
    assert entry.outcome == "refused" and entry.username == "op"

    allowed = create(admin_browser, name, **fields)
    if lxd_accepts:
        assert allowed.status_code == 302, allowed.content.decode()[:2000]
        return lab.d1.admin().instance(name)
    assert allowed.status_code != 403 and "needs the admin role" not in allowed.content.decode()
    return None


@pytest.mark.parametrize(
    ("key", "value", "lxd_accepts"), DANGEROUS_CONFIG, ids=[c[0] for c in DANGEROUS_CONFIG]
)
def test_a_dangerous_key_is_refused_to_operators_and_created_for_admins(
    operator_client, admin_browser, unix_host, lab, instances, key, value, lxd_accepts
):
    made = refused_then_admin_creates(
        operator_client,
        admin_browser,
        lab,
        instances,
        {"config": f"user.note = fine\n{key} = {value}"},
        f"{key} needs the admin role",
        lxd_accepts,
    )
    if made is not None:
        assert made["config"][key] == value and made["status"] == "Stopped"


@pytest.mark.parametrize(
    ("line", "named", "lxd_accepts"),
    DANGEROUS_DEVICES,
    ids=[d[0].split()[1] + "-" + d[1][:20] for d in DANGEROUS_DEVICES],
)
def test_a_dangerous_device_is_refused_to_operators_and_created_for_admins(
    operator_client, admin_browser, unix_host, lab, instances, line, named, lxd_accepts
):
    made = refused_then_admin_creates(
        operator_client, admin_browser, lab, instances, {"devices": line}, named, lxd_accepts
    )
    if made is not None:
        assert made["devices"]["host"]["type"] == line.split()[1]


def test_an_unlisted_profile_is_refused_to_operators(
    operator_client, admin_browser, unix_host, lab, instances
):
    unlisted = PREFIX + "unlisted"
    lab.d1.lxc("profile", "create", unlisted, check=False)
    try:
        made = refused_then_admin_creates(
            operator_client,
            admin_browser,
            lab,
            instances,
            {"profiles": f"default, {unlisted}"},
            f"profile {unlisted} is not allowed for operators on lab1",
            True,
        )
        assert made["profiles"] == ["default", unlisted]
    finally:
        instances.cleanup()  # the profile's users first
        lab.d1.lxc("profile", "delete", unlisted, check=False)


def test_operators_create_with_allowed_config_pool_disk_and_managed_nic(
    operator_client, unix_host, lab, instances
):
    form = operator_client.get(reverse("instance-create")).content.decode()
    assert "limits.* (not limits.kernel.*)" in form and "lab1: default" in form  # what they may do
    name = instances.track(lab.d1, instances.name())
    # The lab's managed bridge on d1 (its name depends on LAB_ID).
    bridge = lab.d1.admin().get("/1.0/profiles/default")["devices"]["eth0"]["network"]
    response = create(
        operator_client,
        name,
        profiles="default",
        limits_memory="128MiB",
        config="user.note = by-an-operator\nboot.autostart = false",
        devices=f"eth1 nic network={bridge} name=eth1\nroot disk pool=default path=/",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    made = lab.d1.admin().instance(name)
    assert made["config"]["user.note"] == "by-an-operator" and made["config"]["limits.memory"] == "128MiB"
    assert made["devices"]["eth1"] == {"type": "nic", "network": bridge, "name": "eth1"}
