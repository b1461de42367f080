"""Copy and move instances between the real lab daemons (d1 over its unix socket, d2 over HTTPS),
and within one: what arrives, what is refused before anything moves, what the task log says."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from hosts.domain.copy import TransferRefused, TransferSpec, plan_transfer, transfer_now
from hosts.domain.policy import PolicyRefused
from hosts.domain.transfer import clean_pending
from hosts.models import AuditEntry, PendingCleanup, Task
from tests.move_helpers import describe, made_fixture, marker_of, small_pool  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def run(user, spec):
    plan = plan_transfer(user, spec)
    task, outcome = transfer_now(user, plan)
    task.refresh_from_db()
    return task, outcome


def snapshot_names(daemon, name):
    return [s["name"] for s in describe(daemon, name)["snapshots"] or []]


def test_copy_to_another_host_pulls_the_instance_with_its_snapshots_and_files(
    admin_user, unix_host, https_host, lab, made
):
    name, marker = made.make(lab.d1, snapshots=2)
    task, outcome = run(admin_user, TransferSpec(unix_host, name, https_host))
    assert outcome.ok, outcome
    assert snapshot_names(lab.d2, name) == ["s1", "s2"]
    assert marker_of(lab.d2, name) == marker
    assert describe(lab.d1, name) is not None  # a copy leaves the source
    assert task.status == Task.Status.SUCCESS and task.host_name == "lab2"
    assert task.progress == f"copy now on lab2; {name} stays on lab1"
    assert task.description == f"Copy {name} from lab1 to lab2"
    assert task.username == "admin"
    # the row names both hosts' operations (the relay's own rows for them carry the progress)
    operations = [name for kind, name in task.target_list() if kind == "operation"]
    assert [op.split("/")[0] for op in operations] == ["lab1", "lab2"]
    assert Task.objects.filter(
        host_name="lab1", operation_id=operations[0].split("/")[1], username="admin"
    ).exists()
    entry = AuditEntry.objects.get(action="instance.copy")
    assert entry.outcome == "ok" and entry.target == f"lab1/{name} -> lab2/{name}"


def test_move_of_a_running_instance_in_push_mode_stops_moves_and_starts_it_there(
    admin_user, unix_host, https_host, lab, made
):
    name, marker = made.make(lab.d2, running=True, snapshots=1)
    spec = TransferSpec(https_host, name, unix_host, move=True, mode="push", stop_running=True)
    task, outcome = run(admin_user, spec)
    assert outcome.ok, outcome
    assert describe(lab.d2, name) is None
    moved = describe(lab.d1, name)
    assert moved["status"] == "Running" and len(moved["snapshots"]) == 1
    assert marker_of(lab.d1, name) == marker
    assert task.progress == "now on lab1"


def test_a_running_instance_is_refused_without_consent(admin_user, unix_host, https_host, lab, made):
    name, _ = made.make(lab.d1, running=True)
    with pytest.raises(TransferRefused) as refused:
        plan_transfer(admin_user, TransferSpec(unix_host, name, https_host, move=True))
    assert refused.value.http_status == 409
    assert "is running" in str(refused.value) and "stopped" in str(refused.value)
    assert describe(lab.d1, name)["status"] == "Running" and describe(lab.d2, name) is None
    assert AuditEntry.objects.get(action="instance.move").outcome == "refused"


def test_a_copy_or_move_between_lxd_and_incus_is_refused_before_anything_is_sent(
    admin_user, unix_host, incus_host, lab, made
):
    on_lxd, _ = made.make(lab.d1)
    on_incus, _ = made.make(lab.incus, snapshots=1)
    for spec, reason in (
        (TransferSpec(unix_host, on_lxd, incus_host), "lab1 runs LXD and inc1 runs Incus"),
        (TransferSpec(incus_host, on_incus, unix_host, move=True), "inc1 runs Incus and lab1 runs LXD"),
    ):
        with pytest.raises(TransferRefused) as refused:
            plan_transfer(admin_user, spec)
        assert refused.value.http_status == 409
        assert str(refused.value).startswith(reason + ": instances cannot be copied or moved")
    assert describe(lab.incus, on_lxd) is None and describe(lab.d1, on_incus) is None
    assert describe(lab.incus, on_incus) is not None  # the move's source stays
    for daemon in (lab.d1, lab.incus):
        assert not [op for op in daemon.admin().operations() if op.description == "Migrating instance"]
    outcomes = AuditEntry.objects.filter(action__in=("instance.copy", "instance.move")).values_list(
        "action", "outcome"
    )
    assert sorted(outcomes) == [("instance.copy", "refused"), ("instance.move", "refused")]


def test_a_taken_target_name_is_refused_before_anything_is_sent(admin_user, unix_host, https_host, lab, made):
    name, _ = made.make(lab.d1)
    other, _ = made.make(lab.d2)
    with pytest.raises(TransferRefused) as refused:
        plan_transfer(admin_user, TransferSpec(unix_host, name, https_host, target_name=other, move=True))
    assert str(refused.value).startswith(f"lab2 already has an instance named {other}")
    assert not [op for op in lab.d1.admin().operations() if op.description == "Migrating instance"]


def test_a_profile_the_target_lacks_is_named_and_a_mapping_works(
    admin_user, unix_host, https_host, lab, made
):
    name, _ = made.make(lab.d1)
    lab.d1.lxc("profile", "create", "mv-only-d1", check=False)
    try:
        lab.d1.lxc("profile", "add", name, "mv-only-d1")
        with pytest.raises(TransferRefused) as refused:
            plan_transfer(admin_user, TransferSpec(unix_host, name, https_host))
        assert refused.value.missing_profiles == ["mv-only-d1"]
        assert "default" in refused.value.target_profiles
        assert "lab2 has no profile mv-only-d1 (its profiles: default)" in str(refused.value)
        # mapped: the target's own profiles instead
        _, outcome = run(admin_user, TransferSpec(unix_host, name, https_host, profiles=["default"]))
        assert outcome.ok, outcome
        assert describe(lab.d2, name)["profiles"] == ["default"]
    finally:
        lab.d1.lxc("delete", "--force", name, check=False)
        lab.d1.lxc("profile", "delete", "mv-only-d1", check=False)


def test_a_pool_the_target_lacks_is_named(admin_user, unix_host, https_host, lab, made):
    name, _ = made.make(lab.d1)
    with pytest.raises(TransferRefused) as refused:
        plan_transfer(admin_user, TransferSpec(unix_host, name, https_host, pool="fast"))
    assert refused.value.missing_pool == "fast" and refused.value.target_pools == ["default"]
    assert "lab2 has no storage pool fast (its pools: default)" in str(refused.value)


def test_copy_and_rename_within_one_host(admin_user, unix_host, lab, made):
    name, marker = made.make(lab.d1, snapshots=1)
    copy = made.name()
    _, outcome = run(admin_user, TransferSpec(unix_host, name, unix_host, target_name=copy))
    assert outcome.ok, outcome
    # The copy's files are read once it is renamed: LXD 5.0.2 and Incus 6.0 answer the first
    # file request to a stopped instance renamed after its files were read 15 s late.
    assert snapshot_names(lab.d1, copy) == ["s1"]
    renamed = made.name()
    task, outcome = run(admin_user, TransferSpec(unix_host, copy, unix_host, target_name=renamed, move=True))
    assert outcome.ok, outcome
    assert describe(lab.d1, copy) is None and marker_of(lab.d1, renamed) == marker
    assert task.progress == f"now on lab1 as {renamed}"


def test_copy_and_move_within_one_host_on_each_server_kind(admin_user, served, made):
    daemon, host = served.daemon, served.host
    name, marker = made.make(daemon, snapshots=1)
    copy = made.name()
    task, outcome = run(admin_user, TransferSpec(host, name, host, target_name=copy))
    assert outcome.ok, outcome
    assert snapshot_names(daemon, copy) == ["s1"]  # its files: once renamed (see above)
    assert task.status == Task.Status.SUCCESS
    renamed = made.name()
    _, outcome = run(admin_user, TransferSpec(host, copy, host, target_name=renamed, move=True))
    assert outcome.ok, outcome
    assert describe(daemon, copy) is None and marker_of(daemon, renamed) == marker


def test_an_operator_cannot_copy_a_privileged_instance_to_another_host(
    unix_host, https_host, lab, made, django_user_model
):
    operator = django_user_model.objects.create_user("op", password="pw-op-12345")
    operator.groups.add(Group.objects.get_or_create(name="operator")[0])
    operator = User.objects.get(pk=operator.pk)
    name, _ = made.make(lab.d1)
    lab.d1.lxc("config", "set", name, "security.privileged", "true")
    with pytest.raises(PolicyRefused) as refused:
        plan_transfer(operator, TransferSpec(unix_host, name, https_host))
    assert "security.privileged needs the admin role" in str(refused.value)
    assert describe(lab.d2, name) is None
    assert AuditEntry.objects.get(action="instance.copy", username="op").outcome == "refused"


def test_not_enough_space_on_the_target_fails_cleanly(admin_user, unix_host, https_host, lab, made):
    name, _ = made.make(lab.d1, data_mib=40)
    with small_pool(lab.d2, "mv-small", 16) as pool:
        task, outcome = run(admin_user, TransferSpec(unix_host, name, https_host, pool=pool, move=True))
        assert not outcome.ok
        assert task.status == Task.Status.FAILURE
        # Both ends of the rsync report the first error either saw: the receiver's "no space
        # left" (said as not enough space, with what was free), or only the sender's broken
        # pipe when no progress said how much had gone (then LXD's words are the reason).
        if task.error.startswith("not enough space on lab2 (pool mv-small)"):
            assert "were free there before the move" in task.error
        else:
            assert task.error.startswith("lab2: ") and "Broken pipe" in task.error, task.error
        assert describe(lab.d2, name) is None  # nothing half-made
        assert describe(lab.d1, name) is not None  # the move did not touch the source
        assert task.progress.startswith(f"{name} is still on lab1")
        assert not PendingCleanup.objects.exists()


def test_a_pending_cleanup_removes_only_an_instance_made_after_the_copy_began(unix_host, lab, made):
    from django.utils import timezone

    name, _ = made.make(lab.d1)
    older = PendingCleanup.objects.create(
        host_name="lab1", instance=name, not_before=timezone.now() + timezone.timedelta(hours=1)
    )
    assert clean_pending() == [] and describe(lab.d1, name) is not None  # older than the copy: kept
    assert not PendingCleanup.objects.filter(pk=older.pk).exists()
    PendingCleanup.objects.create(
        host_name="lab1", instance=name, not_before=timezone.now() - timezone.timedelta(minutes=5)
    )
    assert clean_pending() == [f"lab1/{name}"]
    assert describe(lab.d1, name) is None


def test_migration_secrets_are_kept_out_of_the_operation_and_its_repr(unix_host, lab, made):
    name, _ = made.make(lab.d1)
    client = unix_host.client(timeout=(5, 30))
    end = client.migration_source(name, instance_only=True)
    try:
        values = end.secrets.values
        assert set(values) == {"control", "fs"} and all(len(v) >= 32 for v in values.values())
        assert not set(values) & set(end.operation.metadata)
        assert not any(secret in repr(end) or secret in repr(end.operation) for secret in values.values())
    finally:
        client.cancel_operation(end.operation.id)


def test_copy_into_another_project_of_the_target(admin_user, unix_host, https_host, lab, made):
    name, marker = made.make(lab.d1, snapshots=1)
    lab.d2.lxc("project", "create", "mv-proj", "-c", "features.profiles=false", "-c", "features.images=false")
    try:
        task, outcome = run(admin_user, TransferSpec(unix_host, name, https_host, project="mv-proj"))
        assert outcome.ok, outcome
        inside = lab.d2.admin().for_project("mv-proj").instance(name)
        assert len(inside["snapshots"]) == 1 and inside["project"] == "mv-proj"
        assert describe(lab.d2, name) is None  # not in the host's own project
    finally:
        lab.d2.lxc("delete", "--force", "--project", "mv-proj", name, check=False)
        lab.d2.lxc("project", "delete", "mv-proj", check=False)
