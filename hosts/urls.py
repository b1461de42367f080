from django.urls import path

from .views import (
    audit,
    backups,
    copy,
    files,
    fleet,
    hosts,
    images,
    instances,
    networks,
    operations,
    snapshots,
    storage,
    tasks,
)

# LXD names in a URL are matched loosely and checked in the views against hosts/lxd/names.py,
# so a bad one is a 400 that says the rule rather than a bare 404.
instance = "hosts/<slug:host>/instances/<str:name>/"
image = "hosts/<slug:host>/images/<str:fingerprint>/"
network = "hosts/<slug:host>/networks/<str:network>/"
pool = "hosts/<slug:host>/storage/<str:pool>/"
volume = pool + "volumes/<str:volume>/"

urlpatterns = [
    path("", fleet.fleet, name="home"),
    path("fleet/state/<slug:host>/", fleet.fleet_state, name="fleet-state"),
    path("hosts/", hosts.host_list, name="host-list"),
    path("hosts/add/", hosts.host_add, name="host-add"),
    path("hosts/<slug:host>/", hosts.host_detail, name="host-detail"),
    path("hosts/<slug:host>/config/", hosts.host_config, name="host-config"),
    path("hosts/<slug:host>/remove/", hosts.host_remove, name="host-remove"),
    path("hosts/<slug:host>/repin/", hosts.host_repin, name="host-repin"),
    path("hosts/<slug:host>/profiles/", hosts.host_profiles, name="host-profiles"),
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
    # images: the fleet's, one host's copy
    path("images/", images.image_list, name="image-list"),
    path("images/import/", images.image_import, name="image-import"),
    path(image, images.image_detail, name="image-detail"),
    path(image + "edit/", images.image_edit, name="image-edit"),
    path(image + "aliases/", images.image_aliases, name="image-aliases"),
    path(image + "copy/", images.image_copy, name="image-copy"),
    path(image + "export/", images.image_export, name="image-export"),
    path(image + "delete/", images.image_delete, name="image-delete"),
    # networks and storage of one host (a POST to a list creates in it)
    path("hosts/<slug:host>/networks/", networks.network_list, name="network-list"),
    path(network, networks.network_detail, name="network-detail"),
    path(network + "edit/", networks.network_edit, name="network-edit"),
    path(network + "rename/", networks.network_rename, name="network-rename"),
    path(network + "delete/", networks.network_delete, name="network-delete"),
    path("hosts/<slug:host>/storage/", storage.pool_list, name="pool-list"),
    path(pool, storage.pool_detail, name="pool-detail"),
    path(pool + "delete/", storage.pool_delete, name="pool-delete"),
    path(volume, storage.volume_detail, name="volume-detail"),
    path(volume + "resize/", storage.volume_resize, name="volume-resize"),
    path(volume + "copy/", storage.volume_copy, name="volume-copy"),
    path(volume + "delete/", storage.volume_delete, name="volume-delete"),
    path(volume + "attach/", storage.volume_attach, name="volume-attach"),
    path(volume + "detach/", storage.volume_detach, name="volume-detach"),
    path(volume + "snapshots/", storage.volume_snapshot_create, name="volume-snapshot-create"),
    path(
        volume + "snapshots/<str:snap>/restore/",
        storage.volume_snapshot_restore,
        name="volume-snapshot-restore",
    ),
    path(
        volume + "snapshots/<str:snap>/delete/", storage.volume_snapshot_delete, name="volume-snapshot-delete"
    ),
]
