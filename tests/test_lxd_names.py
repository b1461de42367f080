"""LXD names taken from URLs: one rule per kind (hosts/lxd/names.py), a clear 400 for a bad one,
and a client that never sends a path whose names would not stay names."""

import re

import pytest

from hosts.lxd import InvalidName, LXDClient
from hosts.lxd.names import (
    DEVICE,
    IMAGE_ALIAS,
    IMAGE_FINGERPRINT,
    INSTANCE,
    LOG_FILE,
    NETWORK,
    OPERATION,
    PROFILE,
    SNAPSHOT,
    STORAGE_POOL,
    STORAGE_VOLUME,
    check_path,
)
from hosts.models import Host
from tests.routes import CONVERTER, dashboard_routes
from tests.support import an_instance

pytestmark = pytest.mark.django_db


# -- the rules on plain inputs ---------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "good", "bad"),
    [
        (
            INSTANCE,
            ["c1", "web-01", "a" * 63],
            ["", ".", "..", "1abc", "-a", "a-", "a_b", "a.b", "a/b", "a" * 64],
        ),
        (
            SNAPSHOT,
            ["snap0", "before-upgrade_2.1", "ü", "x" * 255],
            ["", ".", "..", "a/b", "a b", "a\x00", "x" * 256],
        ),
        (PROFILE, ["default", "gpu_1.x"], ["", ".", "..", "a/b", "a b"]),
        (LOG_FILE, ["lxc.log", "exec_0b1c.stdout", "console.log"], ["", ".", "..", ".hidden", "a/b", "a b"]),
        (OPERATION, ["0b1c2d3e-aaaa-bbbb-cccc-0123456789ab"], ["", "..", "xyz", "a/b"]),
        (IMAGE_FINGERPRINT, ["ab" * 32], ["", "..", "AB" * 32, "ab" * 31, "ab" * 33, "g" * 64]),
        (IMAGE_ALIAS, ["busybox", "debian/12", "x" * 255], ["", ".", "..", "a b", "x" * 256]),
        (NETWORK, ["lxdbr0", "eth0.100", "a" * 15], ["", "..", "a" * 16, "a b", "a/b", "br:0"]),
        (STORAGE_POOL, ["default", "fast_1"], ["", ".", "..", "a/b", "a b", "p" * 64]),
        (STORAGE_VOLUME, ["data", "web-1.2_x", "v" * 200], ["", ".", "..", "a/b", "a b", "x:y", "v" * 201]),
        (DEVICE, ["eth0", "root", "data-1"], ["", "..", "a/b", "a b", "d" * 65]),
    ],
    ids=lambda value: getattr(value, "what", None),
)
def test_each_rule_accepts_lxd_names_and_refuses_the_rest(rule, good, bad):
    for name in good:
        assert rule.error(name) is None, name
        assert rule.check(name) == name
    for name in bad:
        assert rule.error(name).endswith(rule.rule), name
        with pytest.raises(InvalidName):
            rule.check(name)


@pytest.mark.parametrize(
    "path",
    [
        "/1.0/instances/c1/snapshots/..",
        "/1.0/instances/c1/snapshots/.",
        "/1.0/instances/../certificates",
        "/1.0/instances/c1/snapshots/%2E%2E",
        "/1.0/instances/c1%2Fsnap0",
        "/1.0/instances/c1/logs/..?project=x",
    ],
)
def test_the_client_refuses_paths_whose_names_would_not_stay_names(path):
    with pytest.raises(InvalidName):
        check_path(path)


def test_image_aliases_may_hold_an_encoded_slash_but_no_dot_segment():
    check_path("/1.0/images/aliases/debian%2F12", encoded_slash_ok=True)
    check_path("/1.0/instances/c1/snapshots/snap.0")
    with pytest.raises(InvalidName):
        check_path("/1.0/images/aliases/..", encoded_slash_ok=True)


# -- the real lab ----------------------------------------------------------------------


@pytest.fixture
def stopped(lab):
    """A stopped container with one snapshot on d2: LXD would delete or rename it if asked."""
    with an_instance(lab.d2, running=False) as name:
        lab.d2.lxc("snapshot", name, "snap0")
        yield name


DOT_CALLS = {
    "delete snapshot ..": lambda client, name: client.delete_snapshot(name, ".."),
    "rename snapshot ..": lambda client, name: client.rename_snapshot(name, "..", "renamed"),
    "snapshot .": lambda client, name: client.snapshot(name, "."),
    "instance with an encoded /": lambda client, name: client.delete_instance(f"{name}/snap0"),
    "log ..": lambda client, name: client.instance_log(name, ".."),
}


@pytest.mark.parametrize("call", DOT_CALLS.values(), ids=DOT_CALLS.keys())
def test_the_client_refuses_such_a_path_before_sending_it(call):
    client = LXDClient("/nonexistent/unix.socket")  # a request sent would be HostUnreachable
    with pytest.raises(InvalidName):
        call(client, "c1")


def test_a_dot_dot_snapshot_never_reaches_the_instance_over_https(https_host, lab, stopped):
    # urllib3 removes dot segments for https: snapshots/.. would be the instance's own URL
    # (LXD 5.0.2 answers 404 only because a trailing slash is left behind)
    client = https_host.client(timeout=(5, 60))
    for call in DOT_CALLS.values():
        with pytest.raises(InvalidName):
            call(client, stopped)
    instance = lab.d2.admin().instance(stopped)
    assert instance["name"] == stopped and [s["name"] for s in instance["snapshots"]] == ["snap0"]


BAD_SNAPSHOTS = ["..", ".", "a%2Fb", "%2e%2e", "a%20b"]


@pytest.mark.parametrize("snap", BAD_SNAPSHOTS)
def test_a_bad_snapshot_name_on_every_snapshot_route_is_a_400(admin_client, https_host, lab, stopped, snap):
    base = f"/hosts/lab2/instances/{stopped}/snapshots/{snap}/"
    requests = [
        ("get", base, {}),
        ("post", base + "restore/", {"confirm": "yes"}),
        ("post", base + "rename/", {"new_name": "renamed"}),
        ("post", base + "delete/", {"confirm": "yes"}),
        ("get", base + "delete/", {}),
        ("get", base + "restore/", {}),
    ]
    for method, url, data in requests:
        response = getattr(admin_client, method)(url, data)
        body = response.content.decode()
        assert response.status_code == 400, f"{method} {url} -> {response.status_code}"
        assert "is not a valid snapshot name" in body and "are not &#x27;.&#x27; or &#x27;..&#x27;" in body
    instance = lab.d2.admin().instance(stopped)
    assert instance["name"] == stopped and [s["name"] for s in instance["snapshots"]] == ["snap0"]


# Per URL keyword: a dot segment (which the client would also refuse) and a name only the
# view's rule refuses (the client would send it to LXD).
BAD_IN_URL = {
    "name": ["..", "a_b"],
    "snap": ["..", "a%20b"],
    "filename": ["..", "a%20b"],
    "op_id": ["..", "not-an-id"],
    "fingerprint": ["..", "not-a-fingerprint"],
    "network": ["..", "a%20b"],
    "pool": ["..", "a%20b"],
    "volume": ["..", "a%20b"],
    "backup": ["..", "a%20b"],
}


def test_every_lxd_name_in_a_url_is_checked_before_lxd_is_asked(admin_client, db):
    # the host cannot be reached: a 400 naming the rule proves LXD was never asked
    Host.objects.create(name="nowhere", endpoint="/nonexistent/unix.socket")
    good = {
        "host": "nowhere",
        "name": "c1",
        "snap": "snap0",
        "filename": "lxc.log",
        "op_id": "0b1c2d3e-aaaa",
        "action": "start",
        "fingerprint": "ab" * 32,
        "network": "lxdbr0",
        "pool": "default",
        "volume": "data",
        "backup": "b1",
    }
    checked = set()
    for route, url_name in dashboard_routes():
        keywords = [m.group(2) for m in CONVERTER.finditer(route)]
        if "host" not in keywords:  # hosts/<slug:name>/...: a host name, looked up in the database
            continue
        for keyword in [k for k in keywords if k in BAD_IN_URL]:
            for bad in BAD_IN_URL[keyword]:
                values = {**good, keyword: bad}
                url = "/" + CONVERTER.sub(lambda m, v=values: v[m.group(2)], route)
                response = admin_client.get(url)
                if response.status_code == 405:
                    response = admin_client.post(url, {"confirm": "yes"})
                assert response.status_code == 400, f"{url} -> {response.status_code}"
                assert re.search(
                    r"is not a valid (instance|snapshot|log file|network|storage pool|storage volume|backup) name"
                    r"|is not a valid (operation id|image fingerprint)",
                    response.content.decode(),
                ), url
                checked.add((url_name, keyword))
    assert {k for _, k in checked} == set(BAD_IN_URL)
    assert len(checked) >= 15
