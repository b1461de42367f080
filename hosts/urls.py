from django.urls import path

from .views import fleet, hosts, instances, operations

urlpatterns = [
    path("", fleet.fleet, name="home"),
    path("fleet/state/<slug:name>/", fleet.fleet_state, name="fleet-state"),
    path("hosts/", hosts.host_list, name="host-list"),
    path("hosts/add/", hosts.host_add, name="host-add"),
    path("hosts/<slug:name>/", hosts.host_detail, name="host-detail"),
    path("hosts/<slug:name>/config/", hosts.host_config, name="host-config"),
    path("hosts/<slug:name>/remove/", hosts.host_remove, name="host-remove"),
    path("hosts/<slug:name>/repin/", hosts.host_repin, name="host-repin"),
    # Instances (names are checked against LXD's rule in the views, for a clear 400)
    path("instances/create/", instances.instance_create, name="instance-create"),
    path("instances/bulk/", instances.instance_bulk, name="instance-bulk"),
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
]
