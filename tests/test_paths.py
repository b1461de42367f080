"""The one place that validates paths and names inside an instance."""

import pytest

from hosts.domain.paths import BadPath, breadcrumbs, join, normalise_path, parse_id, parse_mode, resolve_link


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "/"),
        ("/", "/"),
        ("/etc/hosts", "/etc/hosts"),
        ("etc//hosts/", "/etc/hosts"),
        ("/etc/./hosts", "/etc/hosts"),
        ("/etc/../etc/hosts", "/etc/hosts"),
        ("/tmp/dír with space/ñ ü.txt", "/tmp/dír with space/ñ ü.txt"),
    ],
)
def test_paths_are_normalised(raw, expected):
    assert normalise_path(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("/..", "climbs above"),
        ("/../etc/passwd", "climbs above"),
        ("/etc/../../root", "climbs above"),
        ("/etc/hosts\x00.txt", "NUL"),
        ("/" + "a/" * 2100, "longer than 4096 bytes"),
        ("/tmp/" + "é" * 200, "longer than 255 bytes"),
    ],
)
def test_bad_paths_are_refused_with_a_reason(raw, message):
    with pytest.raises(BadPath, match=message):
        normalise_path(raw)


def test_path_max_counts_bytes_not_characters():
    assert normalise_path("/" + "/".join(["é" * 100] * 20))  # 4020 bytes: fine
    with pytest.raises(BadPath, match="4096"):
        normalise_path("/" + "/".join(["é" * 100] * 21))  # 4221 bytes


@pytest.mark.parametrize("name", ["", "a/b", "..", ".", "x\x00y", "n" * 256])
def test_a_new_name_is_a_single_usable_segment(name):
    with pytest.raises(BadPath):
        join("/tmp", name)


def test_join_and_breadcrumbs():
    assert join("/tmp/", "a b") == "/tmp/a b"
    assert breadcrumbs("/etc/ssl/certs") == [
        ("/", "/"),
        ("etc", "/etc"),
        ("ssl", "/etc/ssl"),
        ("certs", "/etc/ssl/certs"),
    ]


def test_symlink_targets_resolve_from_their_directory():
    assert resolve_link("/bin", "busybox") == "/bin/busybox"
    assert resolve_link("/sbin", "../bin/busybox") == "/bin/busybox"
    assert resolve_link("/x", "/abs/target") == "/abs/target"
    assert resolve_link("/", "../../..") is None


@pytest.mark.parametrize(("raw", "mode"), [("644", "0644"), ("0644", "0644"), ("0o755", "0755"), ("", None)])
def test_modes_always_get_the_leading_zero_lxd_needs(raw, mode):
    assert parse_mode(raw) == mode


@pytest.mark.parametrize("raw", ["755x", "888", "04755", "rw-r--r--", "12"])
def test_modes_that_are_not_permission_bits_are_refused(raw):
    with pytest.raises(BadPath, match="octal"):
        parse_mode(raw)


def test_ids():
    assert parse_id("1000", "uid") == 1000
    assert parse_id("", "uid") is None
    for bad in ("-1", "abc", str(2**32)):
        with pytest.raises(BadPath):
            parse_id(bad, "uid")
