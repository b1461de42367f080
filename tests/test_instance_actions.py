"""Lifecycle actions on real daemons: each is followed through its operation, the row shows
the outcome, LXD's failure text reaches the person, and bad input is refused early."""

import pytest
from django.urls import reverse

from hosts.lxd import LXDClient
from hosts.models import AuditEntry, Host
from tests.servers import closed_port
from tests.support import cell, status_of

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def act(client, host, name, action, **data):
    return client.post(reverse("instance-action", args=[host, name, action]), data, **HX)


def test_start_freeze_unfreeze_restart_stop_follow_each_operation(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1, running=False)
    steps = [
        ("start", {}, "Running"),
        ("freeze", {}, "Frozen"),
        ("unfreeze", {}, "Running"),
        ("restart", {"timeout": "20"}, "Running"),
        ("stop", {"timeout": "20"}, "Stopped"),
        ("start", {}, "Running"),
        ("stop", {"force": "on"}, "Stopped"),
    ]
    for action, data, expected in steps:
        response = act(admin_client, "lab1", name, action, **data)
        html = response.content.decode()
        assert response.status_code == 200, html
        # the answer is the updated row, read back after the operation ended
        assert html.startswith(f'<tr id="instance-lab1-{name}"')
        assert expected in cell(html, f"instance-lab1-{name}-status"), (action, html)
        assert status_of(lab.d1, name) == expected
    entries = AuditEntry.objects.filter(host_name="lab1", target=name)
    assert entries.count() == len(steps) and not entries.exclude(outcome="ok").exists()
    assert all(e.operation_id for e in entries)


def test_actions_work_over_https_too(admin_client, https_host, lab, instances):
    name = instances.make(lab.d2, running=False)
    assert act(admin_client, "lab2", name, "start").status_code == 200
    assert status_of(lab.d2, name) == "Running"


def test_start_on_a_running_instance_shows_lxd_failure(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1)
    response = act(admin_client, "lab1", name, "start")
    html = response.content.decode()
    # 202 first, then the operation fails: the failure text must come through
    assert response.status_code == 409
    assert "The instance is already running" in html and 'role="alert"' in html
    assert "Running" in cell(html, f"instance-lab1-{name}-status")
    entry = AuditEntry.objects.get(action="instance.start", target=name)
    assert entry.outcome == "failed" and "already running" in entry.error


def test_action_on_an_instance_deleted_meanwhile(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1, running=False)
    assert name in admin_client.get(reverse("home")).content.decode()
    lab.d1.lxc("delete", name)
    response = act(admin_client, "lab1", name, "start")
    html = response.content.decode()
    assert response.status_code == 404
    assert "Instance not found" in html and "gone" in html


def test_graceful_stop_never_sends_timeout_zero(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1)
    response = act(admin_client, "lab1", name, "stop", timeout="0")
    assert response.status_code == 400
    assert status_of(lab.d1, name) == "Running"
    with pytest.raises(ValueError, match="timeout 0 means force"):
        LXDClient(lab.d1.socket).change_state(name, "stop", timeout=0)


def test_graceful_stop_that_times_out_reports_lxd_text(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1)
    # the init ignores SIGPWR here: a graceful stop cannot succeed, and LXD says so
    lab.d1.lxc("config", "set", name, "raw.lxc", "lxc.signal.halt=SIGUSR2")
    lab.d1.lxc("restart", "--force", name)
    response = act(admin_client, "lab1", name, "stop", timeout="1")
    assert response.status_code == 409
    assert "Failed shutting down instance" in response.content.decode()
    assert status_of(lab.d1, name) == "Running"


def test_delete_needs_confirmation(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1)
    url = reverse("instance-delete", args=["lab1", name])
    refused = admin_client.post(url, {}, **HX)
    assert refused.status_code == 400
    assert "needs a confirmation" in refused.content.decode()
    assert status_of(lab.d1, name) == "Running"
    # confirmed but running, without stopping first: LXD's own refusal, with a hint
    running = admin_client.post(url, {"confirm": "on"}, **HX)
    assert running.status_code == 400
    assert "Instance is running (stop it first)" in running.content.decode()
    assert status_of(lab.d1, name) == "Running"
    # the confirmation form offers to stop first
    confirm = admin_client.get(url, **HX).content.decode()
    assert 'name="stop_first" checked' in confirm
    done = admin_client.post(url, {"confirm": "on", "stop_first": "on"}, **HX)
    assert done.status_code == 200 and f"Deleted {name}" in done.content.decode()
    assert status_of(lab.d1, name) is None


def test_invalid_instance_names_are_refused_before_any_lxd_call(admin_client, db, lab):
    # the host cannot be reached at all: a 400 with the rule proves LXD was never asked
    Host.objects.create(name="nowhere", endpoint="/nonexistent/unix.socket")
    bad = ["1abc", "-abc", "abc-", "a_b", "a.b", "a" * 64, "a b"]
    for name in bad:
        response = admin_client.post(
            reverse("instance-create"), {"host": "nowhere", "name": name, "image": "busybox"}
        )
        assert response.status_code == 400, name
        assert "starting with a letter and not ending with a hyphen" in response.content.decode()
    for name in ["1abc", "abc-", "a_b"]:
        response = act(admin_client, "nowhere", name, "start")
        assert response.status_code == 400
        assert "letters, digits and hyphens" in response.content.decode()
    assert not AuditEntry.objects.filter(action__startswith="instance.").exists()


def test_create_on_this_host_and_start(admin_client, unix_host, lab, instances):
    name = instances.track(lab.d1, instances.name())
    response = admin_client.post(
        reverse("instance-create"),
        {
            "host": "lab1",
            "name": name,
            "image": "busybox",
            "profiles": "default",
            "limits_memory": "128MiB",
            "config": "user.note = from-the-dashboard",
            "start": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    instance = lab.d1.admin().instance(name)
    assert instance["status"] == "Running"
    assert instance["config"]["limits.memory"] == "128MiB"
    assert instance["config"]["user.note"] == "from-the-dashboard"
    detail = admin_client.get(response["Location"]).content.decode()
    assert "Running" in detail and "lxc.log" in detail


def test_create_from_an_image_that_does_not_exist(admin_client, unix_host, lab, instances):
    name = instances.track(lab.d1, instances.name())
    response = admin_client.post(
        reverse("instance-create"), {"host": "lab1", "name": name, "image": "no-such"}
    )
    assert response.status_code == 400
    assert "image &#x27;no-such&#x27; was not found on lab1" in response.content.decode()
    assert status_of(lab.d1, name) is None


def test_create_with_a_taken_name_shows_lxd_failure(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1, running=False)
    response = admin_client.post(
        reverse("instance-create"), {"host": "lab1", "name": name, "image": "busybox"}
    )
    assert response.status_code == 409
    assert "already exists" in response.content.decode()


def test_create_from_an_image_on_another_host(admin_client, unix_host, https_host, lab, instances):
    """d1 pulls busybox-d2 (only on d2) over HTTPS with a one-time secret the dashboard got."""
    fingerprint = lab.d2.admin().resolve_image("busybox-d2")
    d1 = lab.d1.admin()
    if d1.has_image(fingerprint):  # a cached copy from an earlier run would short-circuit
        d1.run("DELETE", f"/1.0/images/{fingerprint}")
    name = instances.track(lab.d1, instances.name())
    response = admin_client.post(
        reverse("instance-create"),
        {"host": "lab1", "name": name, "image": "busybox-d2", "image_host": "lab2"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    try:
        assert d1.instance(name)["config"]["image.release"] == "lab-d2"
        assert AuditEntry.objects.filter(action="image.secret", host_name="lab2", outcome="ok").exists()
        # the secret was used or revoked: no image token is left running on d2
        ops = lab.d2.admin().operations()
        assert not [
            op
            for op in ops
            if op.op_class == "token" and not op.is_final and any(kind == "image" for kind, _ in op.objects)
        ]
    finally:
        instances.cleanup()
        d1.run("DELETE", f"/1.0/images/{fingerprint}")


def test_create_from_another_host_uses_the_local_copy_when_there_is_one(
    admin_client, unix_host, https_host, lab, instances
):
    name = instances.track(lab.d2, instances.name())
    response = admin_client.post(
        reverse("instance-create"),
        {"host": "lab2", "name": name, "image": "busybox", "image_host": "lab1"},
        follow=True,
    )
    assert response.status_code == 200
    assert "lab1 was not contacted" in response.content.decode()
    assert status_of(lab.d2, name) == "Stopped"


def test_bulk_across_hosts_reports_each_instance_even_with_a_host_down(
    admin_client, unix_host, https_host, lab, instances
):
    a = instances.make(lab.d1)
    b = instances.make(lab.d2)
    Host.objects.create(
        name="down",
        endpoint=f"https://{closed_port()}",
        server_certificate=https_host.server_certificate,
        server_fingerprint=https_host.server_fingerprint,
        client_certificate=https_host.client_certificate,
    )
    response = admin_client.post(
        reverse("instance-bulk"),
        {
            "action": "stop",
            "force": "on",
            "sel": [f"lab1/{a}", f"lab2/{b}", "down/ghost", "lab1/flt-missing-x"],
        },
        **HX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert status_of(lab.d1, a) == "Stopped" and status_of(lab.d2, b) == "Stopped"
    assert f"lab1/{a}: stopped" in html and f"lab2/{b}: stopped" in html
    assert "down/ghost: down is unreachable: connection refused" in html
    assert "lab1/flt-missing-x: Instance not found" in html
    assert "2 failed" in html
    # the rows of the instances that worked come back as out-of-band swaps
    assert 'hx-swap-oob="true"' in cell(html, f"instance-lab1-{a}")
    outcomes = dict(AuditEntry.objects.filter(action="instance.stop").values_list("target", "outcome"))
    assert outcomes == {a: "ok", b: "ok", "ghost": "failed", "flt-missing-x": "failed"}


def test_bulk_delete_needs_confirmation(admin_client, unix_host, lab, instances):
    a = instances.make(lab.d1, running=False)
    refused = admin_client.post(reverse("instance-bulk"), {"action": "delete", "sel": [f"lab1/{a}"]}, **HX)
    assert refused.status_code == 400 and "confirmation" in refused.content.decode()
    assert status_of(lab.d1, a) == "Stopped"
    done = admin_client.post(
        reverse("instance-bulk"), {"action": "delete", "confirm": "on", "sel": [f"lab1/{a}"]}, **HX
    )
    assert f'<tr id="instance-lab1-{a}" hx-swap-oob="delete">' in done.content.decode()
    assert status_of(lab.d1, a) is None


def test_viewer_cannot_act(viewer_client, unix_host, lab, instances):
    name = instances.make(lab.d1, running=False)
    assert viewer_client.get(reverse("home")).status_code == 200
    assert act(viewer_client, "lab1", name, "start").status_code == 403
    assert (
        viewer_client.post(reverse("instance-bulk"), {"action": "start", "sel": [f"lab1/{name}"]}).status_code
        == 403
    )
    assert status_of(lab.d1, name) == "Stopped"


def test_detail_shows_state_config_devices_snapshots_and_logs(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1, ip="192.0.2.20")
    lab.d1.lxc("snapshot", name, "before-change")
    lab.d1.lxc("config", "set", name, "user.owner", "fleet-test")
    html = admin_client.get(reverse("instance-detail", args=["lab1", name])).content.decode()
    assert "192.0.2.20/24 (inet, global)" in html
    assert "before-change" in html and "user.owner" in html and "fleet-test" in html
    assert "eth0" in html and "root" in html and "Processes" in html
    log = admin_client.get(reverse("instance-log", args=["lab1", name, "lxc.log"]))
    assert log.status_code == 200 and name in log.content.decode()
    missing = admin_client.get(reverse("instance-log", args=["lab1", name, "nope.log"]))
    assert missing.status_code == 400  # LXD's own check: only lxc.log, lxc.conf and exec_* logs
    assert "log file name nope.log not valid" in missing.content.decode()


def test_actions_work_as_plain_forms_too(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1, running=False)
    url = reverse("instance-action", args=["lab1", name, "start"])
    done = admin_client.post(url, {})
    assert done.status_code == 302 and done["Location"] == reverse("instance-detail", args=["lab1", name])
    again = admin_client.post(url, {})
    assert again.status_code == 409
    assert "The instance is already running" in again.content.decode()
    assert admin_client.post(reverse("instance-action", args=["lab1", name, "jump"]), {}).status_code == 404
