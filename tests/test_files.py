"""The file browser through Django's test client, against containers on the real lab daemons."""

from urllib.parse import quote

import pytest
from django.urls import reverse

from hosts.models import AuditEntry
from tests.support import an_instance, head, mkdir, pull, push

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def running(lab):
    with an_instance(lab.d1) as name:
        yield name


@pytest.fixture(scope="module")
def stopped(lab):
    with an_instance(lab.d1, running=False) as name:
        yield name


def files(host, name, path):
    return reverse("instance-files", args=[host.name, name]) + "?path=" + quote(path, safe="/")


def download(host, name, path):
    return reverse("instance-file-download", args=[host.name, name]) + "?path=" + quote(path, safe="/")


def upload_url(host, name, path="", **params):
    url = reverse("instance-file-upload", args=[host.name, name])
    query = {"path": path, **params} if path else params
    return url + ("?" + "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in query.items()) if query else "")


def put(client, host, name, path, data: bytes, **params):
    return client.generic(
        "PUT", upload_url(host, name, path, **params), data, content_type="application/octet-stream"
    )


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# -- browse and view ----------------------------------------------------------------------


def test_listing_is_sorted_with_directories_first_and_shows_mode_and_owner(
    admin_client, unix_host, running, lab
):
    mkdir(lab.d1, running, "/root/Zdir")
    push(lab.d1, running, "/root/afile", b"x", **{"X-LXD-mode": "0640", "X-LXD-uid": "0", "X-LXD-gid": "0"})
    response = admin_client.get(files(unix_host, running, "/root"))
    assert response.status_code == 200
    entries = response.context["entries"]
    names = [e["info"].name for e in entries]
    assert names.index("Zdir") < names.index("afile")  # directories first, whatever the letter
    afile = next(e for e in entries if e["info"].name == "afile")
    assert (afile["info"].type, afile["info"].mode, afile["info"].symbolic_mode) == (
        "file",
        "0640",
        "-rw-r-----",
    )
    assert afile["owner"] == "root" and afile["group"] == "root"  # names from the instance's own /etc/passwd
    html = response.content.decode()
    assert "-rw-r-----" in html and 'data-path="/root/Zdir" data-type="directory"' in html


def test_symlinks_are_shown_as_links_with_their_target(admin_client, unix_host, running):
    response = admin_client.get(files(unix_host, running, "/bin"))
    ls = next(e for e in response.context["entries"] if e["info"].name == "ls")
    # LXD 5.0.2 hands back relative targets ("busybox") already resolved to absolute paths
    assert ls["info"].is_link and ls["info"].target == "/bin/busybox" and ls["link"] == "/bin/busybox"
    assert '→ <a href="?path=/bin/busybox">/bin/busybox</a>' in response.content.decode()
    link_page = admin_client.get(files(unix_host, running, "/sbin/init"))  # ../bin/busybox
    assert link_page.context["target"] == "/bin/busybox" and link_page.context["link"] == "/bin/busybox"


def test_seed_read_etc_hosts(admin_client, unix_host, running):
    response = admin_client.get(files(unix_host, running, "/etc/hosts"))
    assert response.status_code == 200
    assert "127.0.0.1 localhost" in response.context["text"]
    assert [c[0] for c in response.context["crumbs"]] == ["/", "etc", "hosts"]


def test_seed_push_abc_to_tmp_a_and_read_it_back(admin_client, unix_host, running, lab):
    response = put(admin_client, unix_host, running, "/tmp/a", b"abc")
    assert response.status_code == 201, response.content
    assert pull(lab.d1, running, "/tmp/a") == b"abc"
    assert admin_client.get(files(unix_host, running, "/tmp/a")).context["text"] == "abc"
    got = admin_client.get(download(unix_host, running, "/tmp/a"))
    assert body(got) == b"abc" and got["Content-Length"] == "3"
    assert AuditEntry.objects.filter(action="file.push", target=f"{running}:/tmp/a", outcome="ok").exists()


def test_binary_and_non_utf8_files_are_offered_as_downloads(admin_client, unix_host, running, lab):
    for path, data in (("/tmp/bin", b"\x7fELF\x00\x01\x02"), ("/tmp/latin1", "café\n".encode("latin-1"))):
        push(lab.d1, running, path, data)
        page = admin_client.get(files(unix_host, running, path))
        assert page.status_code == 200 and page.context["text"] is None
        assert "download it instead" in page.content.decode()
        assert body(admin_client.get(download(unix_host, running, path))) == data


def test_a_name_that_is_not_utf8_is_listed_but_marked(admin_client, unix_host, running, lab):
    lab.d1.lxc(
        "exec",
        running,
        "--",
        "sh",
        "-c",
        'mkdir -p /root/nu && touch /root/nu/ok "/root/nu/$(printf "caf\\351")"',
    )
    listing = admin_client.get(files(unix_host, running, "/root/nu"))
    assert listing.status_code == 200
    entries = {e["info"].name: e["info"].type for e in listing.context["entries"]}
    assert entries == {"caf\ufffd": "unaddressable", "ok": "file"}
    assert "the name is not UTF-8" in listing.content.decode()


def test_a_large_text_file_is_shown_up_to_the_cap(admin_client, unix_host, running, lab, settings):
    settings.DASHBOARD_FILE_VIEW_BYTES = 1000
    push(lab.d1, running, "/tmp/big.txt", "é".encode() * 600)  # the cap falls inside a character
    page = admin_client.get(files(unix_host, running, "/tmp/big.txt"))
    assert page.context["truncated"] and page.context["text"] == "é" * 500
    assert "Only the first" in page.content.decode()


def test_files_of_a_stopped_instance(admin_client, unix_host, stopped, lab):
    assert put(admin_client, unix_host, stopped, "/root/note", b"written while stopped").status_code == 201
    assert (
        admin_client.get(files(unix_host, stopped, "/root/note")).context["text"] == "written while stopped"
    )
    assert admin_client.get(files(unix_host, stopped, "/etc")).status_code == 200


def test_files_over_https_with_a_pinned_host(admin_client, https_host, lab):
    with an_instance(lab.d2, running=False) as name:
        data = bytes(range(256)) * 4096  # 1 MiB, every byte value
        assert put(admin_client, https_host, name, "/root/blob", data).status_code == 201
        assert pull(lab.d2, name, "/root/blob") == data
        assert body(admin_client.get(download(https_host, name, "/root/blob"))) == data


# -- upload ---------------------------------------------------------------------------------


def test_upload_form_sets_mode_and_owner_on_creation(admin_client, unix_host, running, lab):
    from django.core.files.uploadedfile import SimpleUploadedFile

    form = {
        "dir": "/tmp",
        "file": SimpleUploadedFile("owned.txt", b"mine"),
        "mode": "600",
        "uid": "1000",
        "gid": "1001",
    }
    response = admin_client.post(upload_url(unix_host, running), form)
    assert response.status_code == 302 and "path=/tmp" in response["Location"]
    meta = head(lab.d1, running, "/tmp/owned.txt")
    assert (meta["x-lxd-mode"], meta["x-lxd-uid"], meta["x-lxd-gid"]) == ("0600", "1000", "1001")


def test_new_text_file_from_the_form(admin_client, unix_host, running, lab):
    response = admin_client.post(
        upload_url(unix_host, running), {"dir": "/tmp", "name": "note.txt", "content": "line\r\n"}
    )
    assert response.status_code == 302
    assert pull(lab.d1, running, "/tmp/note.txt") == b"line\n"


def test_overwrite_needs_confirmation(admin_client, unix_host, running, lab):
    push(lab.d1, running, "/tmp/keep", b"original", **{"X-LXD-mode": "0640"})
    refused = put(admin_client, unix_host, running, "/tmp/keep", b"new")
    assert refused.status_code == 409
    assert "/tmp/keep already exists. Confirm" in refused.content.decode()
    assert pull(lab.d1, running, "/tmp/keep") == b"original"
    replaced = put(admin_client, unix_host, running, "/tmp/keep", b"new", overwrite=1, mode="0777")
    assert replaced.status_code == 200 and "Replaced" in replaced.content.decode()
    assert pull(lab.d1, running, "/tmp/keep") == b"new"
    assert head(lab.d1, running, "/tmp/keep")["x-lxd-mode"] == "0640"  # LXD keeps the mode of a replaced file


def test_names_with_spaces_and_non_ascii(admin_client, unix_host, running, lab):
    folder = admin_client.post(
        reverse("instance-file-mkdir", args=[unix_host.name, running]),
        {"dir": "/tmp", "name": "dír with space"},
    )
    assert folder.status_code == 302
    path = "/tmp/dír with space/ñ ü + 100%.txt"
    assert put(admin_client, unix_host, running, path, "héllo".encode()).status_code == 201
    assert pull(lab.d1, running, path) == "héllo".encode()
    listing = admin_client.get(files(unix_host, running, "/tmp/dír with space"))
    assert [e["info"].name for e in listing.context["entries"]] == ["ñ ü + 100%.txt"]
    got = admin_client.get(download(unix_host, running, path))
    assert body(got) == "héllo".encode()
    assert got["Content-Disposition"] == "attachment; filename*=utf-8''%C3%B1%20%C3%BC%20%2B%20100%25.txt"


def test_upload_over_the_limit_is_refused_with_the_limit(admin_client, unix_host, running, lab, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DASHBOARD_MAX_UPLOAD_BYTES = 1000
    raw = put(admin_client, unix_host, running, "/tmp/too-big", b"x" * 1001)
    assert raw.status_code == 413 and "limit of 1000\xa0bytes (1000 bytes)" in raw.content.decode()
    form = admin_client.post(
        upload_url(unix_host, running), {"dir": "/tmp", "file": SimpleUploadedFile("too-big", b"x" * 1001)}
    )
    assert form.status_code == 413 and "(1000 bytes)" in form.content.decode()
    assert head(lab.d1, running, "/tmp/too-big") is None


def test_plain_http_uploads_have_their_own_lower_limit(admin_client, unix_host, running, lab, settings):
    settings.DASHBOARD_MAX_UPLOAD_BYTES, settings.DASHBOARD_MAX_HTTP_UPLOAD_BYTES = 2**20, 1000
    raw = put(admin_client, unix_host, running, "/tmp/http-big", b"x" * 1001)
    assert raw.status_code == 413
    assert "(1000 bytes). That is the limit for plain HTTP uploads" in raw.content.decode()
    assert "takes up to 1.0\xa0MB" in raw.content.decode()
    assert head(lab.d1, running, "/tmp/http-big") is None


def test_upload_into_a_missing_directory_or_onto_a_directory(admin_client, unix_host, running):
    missing = put(admin_client, unix_host, running, "/no/such/dir/f", b"x")
    assert (
        missing.status_code == 404 and "The directory /no/such/dir does not exist" in missing.content.decode()
    )
    onto_dir = put(admin_client, unix_host, running, "/etc", b"x", overwrite=1)
    assert onto_dir.status_code == 409 and "/etc is a directory" in onto_dir.content.decode()
    under_file = put(admin_client, unix_host, running, "/etc/hosts/x", b"x")
    assert (
        under_file.status_code == 409
        and "/etc/hosts is a file, not a directory" in under_file.content.decode()
    )


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/../etc/passwd", "climbs above the root"),
        ("/etc/hosts\x00", "NUL byte"),
        ("/" + "d/" * 2100, "longer than 4096 bytes"),
        ("/tmp/" + "n" * 300, "longer than 255 bytes"),
    ],
)
def test_bad_paths_are_refused_everywhere(admin_client, unix_host, running, path, message):
    for response in (
        admin_client.get(files(unix_host, running, path)),
        admin_client.get(download(unix_host, running, path)),
        put(admin_client, unix_host, running, path, b"x"),
    ):
        assert response.status_code == 400
        assert message in response.content.decode()


def test_dot_dot_inside_the_tree_is_resolved(admin_client, unix_host, running):
    response = admin_client.get(files(unix_host, running, "/etc/../etc/./hosts"))
    assert response.status_code == 200 and response.context["path"] == "/etc/hosts"


def test_a_missing_path_is_a_404_with_a_message(admin_client, unix_host, running):
    for url in (files(unix_host, running, "/nope"), download(unix_host, running, "/nope/x")):
        response = admin_client.get(url)
        assert response.status_code == 404
        assert "does not exist in " + running in response.content.decode()
    for response in (
        admin_client.get(files(unix_host, "fs-no-such-instance", "/")),
        put(admin_client, unix_host, "fs-no-such-instance", "/tmp/x", b"x"),
    ):
        assert response.status_code == 404 and "Instance not found" in response.content.decode()


def test_a_directory_where_a_file_was_expected_and_the_reverse(admin_client, unix_host, running):
    as_file = admin_client.get(download(unix_host, running, "/etc"))
    assert as_file.status_code == 409 and "/etc is a directory, not a file" in as_file.content.decode()
    as_dir = admin_client.post(
        reverse("instance-file-mkdir", args=[unix_host.name, running]), {"dir": "/etc", "name": "hosts"}
    )
    assert as_dir.status_code == 409 and "/etc/hosts already exists (a file)" in as_dir.content.decode()
    into_file = admin_client.post(
        reverse("instance-file-mkdir", args=[unix_host.name, running]), {"dir": "/etc/hosts", "name": "d"}
    )
    assert into_file.status_code == 409 and "is a file, not a directory" in into_file.content.decode()


# -- delete ---------------------------------------------------------------------------------


def test_delete_asks_first_then_deletes(admin_client, unix_host, running, lab):
    push(lab.d1, running, "/tmp/doomed", b"bye")
    url = reverse("instance-file-delete", args=[unix_host.name, running])
    ask = admin_client.get(url + "?path=/tmp/doomed")
    assert ask.status_code == 200 and "Delete /tmp/doomed?" in ask.content.decode()
    assert admin_client.post(url, {"path": "/tmp/doomed"}).status_code == 200  # no confirm: asks again
    assert pull(lab.d1, running, "/tmp/doomed") == b"bye"
    done = admin_client.post(url, {"path": "/tmp/doomed", "confirm": "yes"})
    assert done.status_code == 302 and head(lab.d1, running, "/tmp/doomed") is None
    assert AuditEntry.objects.filter(action="file.delete", outcome="ok").exists()


def test_delete_a_directory_only_when_empty(admin_client, unix_host, running, lab):
    mkdir(lab.d1, running, "/tmp/full")
    push(lab.d1, running, "/tmp/full/f", b"x")
    url = reverse("instance-file-delete", args=[unix_host.name, running])
    refused = admin_client.post(url, {"path": "/tmp/full", "confirm": "yes"})
    assert refused.status_code == 409 and "not empty" in refused.content.decode()
    assert AuditEntry.objects.filter(action="file.delete", outcome="failed").exists()
    admin_client.post(url, {"path": "/tmp/full/f", "confirm": "yes"})
    assert admin_client.post(url, {"path": "/tmp/full", "confirm": "yes"}).status_code == 302
    assert head(lab.d1, running, "/tmp/full") is None


# -- roles ----------------------------------------------------------------------------------


def test_viewers_browse_and_download_but_do_not_write(viewer_client, unix_host, running, lab):
    push(lab.d1, running, "/tmp/shared", b"read me")
    assert viewer_client.get(files(unix_host, running, "/tmp")).status_code == 200
    assert body(viewer_client.get(download(unix_host, running, "/tmp/shared"))) == b"read me"
    assert put(viewer_client, unix_host, running, "/tmp/shared", b"changed", overwrite=1).status_code == 403
    delete = reverse("instance-file-delete", args=[unix_host.name, running])
    assert viewer_client.post(delete, {"path": "/tmp/shared", "confirm": "yes"}).status_code == 403
    mkdir_url = reverse("instance-file-mkdir", args=[unix_host.name, running])
    assert viewer_client.post(mkdir_url, {"dir": "/tmp", "name": "v"}).status_code == 403
    assert pull(lab.d1, running, "/tmp/shared") == b"read me" and head(lab.d1, running, "/tmp/v") is None
