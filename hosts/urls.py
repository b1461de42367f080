from django.urls import path

from .views import audit, backups, copy, files, fleet, hosts, instances, operations, snapshots, tasks

# LXD names in a URL are matched loosely and checked in the views against hosts/lxd/names.py,
# so a bad one is a 400 that says the rule rather than a bare 404.
instance = "hosts/<slug:host>/instances/<str:name>/"

urlpatterns = [
    path("", fleet.fleet, name="home"),
    path("fleet/state/<slug:name>/", fleet.fleet_state, name="fleet-state"),
    path("hosts/", hosts.host_list, name="host-list"),
    path("hosts/add/", hosts.host_add, name="host-add"),
    path("hosts/<slug:name>/", hosts.host_detail, name="host-detail"),
    path("hosts/<slug:name>/config/", hosts.host_config, name="host-config"),
    path("hosts/<slug:name>/remove/", hosts.host_remove, name="host-remove"),
    path("hosts/<slug:name>/repin/", hosts.host_repin, name="host-repin"),
    path("hosts/<slug:name>/profiles/", hosts.host_profiles, name="host-profiles"),
    # Instances (names are checked against LXD's rule in the views, for a clear 400)
    path("instances/create/", instances.instance_create, name="instance-create"),
    path("instances/bulk/", instances.instance_bulk, name="instance-bulk"),
    path("instances/bulk/move/", copy.instance_bulk_move, name="instance-bulk-move"),
    path("hosts/<slug:host>/instances/<str:name>/", instances.instance_detail, name="instance-detail"),
    path("hosts/<slug:host>/instances/<str:name>/row/", instances.instance_row, name="instance-row"),
    path(
        "hosts/<slug:host>/instances/<str:name>/state/<slug:action>/",
        instances.instance_action,
        name="instance-action",
    ),
    path("hosts/<slug:host>/instances/<str:name>/delete/", instances.instance_delete, name="instance-delete"),
    path(
        "hosts/<slug:host>/instances/<str:name>/logs/<str:filename>/",
        instances.instance_log,
        name="instance-log",
    ),
    # Operations
    path("operations/", operations.operation_list, name="operation-list"),
    path("operations/<slug:host>/<str:op_id>/cancel/", operations.operation_cancel, name="operation-cancel"),
    path("operations/<slug:host>/<str:op_id>/wait/", operations.operation_wait, name="operation-wait"),
    path("tasks/", tasks.task_list, name="task-list"),
    path("audit/", audit.audit_log, name="audit"),
    # files and snapshots of one instance (?path= names the file or directory)
    path(instance + "files/", files.instance_files, name="instance-files"),
    path(instance + "files/download/", files.file_download, name="instance-file-download"),
    path(instance + "files/upload/", files.file_upload, name="instance-file-upload"),
    path(instance + "files/mkdir/", files.file_mkdir, name="instance-file-mkdir"),
    path(instance + "files/delete/", files.file_delete, name="instance-file-delete"),
    path(instance + "snapshots/", snapshots.instance_snapshots, name="instance-snapshots"),
    # copy / move, backups
    path(instance + "transfer/", copy.instance_transfer, name="instance-transfer"),
    path(instance + "backups/", backups.instance_backups, name="instance-backups"),
    path(instance + "backups/create/", backups.backup_create, name="instance-backup-create"),
    path(
        instance + "backups/<path:backup>/download/", backups.backup_download, name="instance-backup-download"
    ),
    path(instance + "backups/<path:backup>/delete/", backups.backup_delete, name="instance-backup-delete"),
    path("backups/", backups.backups_home, name="backups"),
    path("backups/stale/", backups.backups_stale, name="backups-stale"),
    path("backups/restore/", backups.backup_restore, name="backup-restore"),
    path("backups/files/<int:pk>/download/", backups.record_download, name="backup-record-download"),
    path("backups/files/<int:pk>/delete/", backups.record_delete, name="backup-record-delete"),
    path("backups/schedules/new/", backups.schedule_edit, name="schedule-new"),
    path("backups/schedules/<int:pk>/", backups.schedule_edit, name="schedule-edit"),
    path("backups/schedules/<int:pk>/delete/", backups.schedule_delete, name="schedule-delete"),
    # <path:snap>: a snapshot name with an encoded '/' (a%2Fb arrives decoded) still reaches the
    # view and is refused with the rule; the detail route comes last, as it matches the others.
    path(
        instance + "snapshots/<path:snap>/restore/",
        snapshots.snapshot_restore,
        name="instance-snapshot-restore",
    ),
    path(
        instance + "snapshots/<path:snap>/rename/", snapshots.snapshot_rename, name="instance-snapshot-rename"
    ),
    path(
        instance + "snapshots/<path:snap>/delete/", snapshots.snapshot_delete, name="instance-snapshot-delete"
    ),
    path(instance + "snapshots/<path:snap>/", snapshots.snapshot_detail, name="instance-snapshot"),
]
