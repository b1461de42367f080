from django.urls import path

from .views import hosts, tasks

urlpatterns = [
    path("", hosts.host_list, name="home"),
    path("hosts/", hosts.host_list, name="host-list"),
    path("hosts/add/", hosts.host_add, name="host-add"),
    path("hosts/<slug:name>/", hosts.host_detail, name="host-detail"),
    path("hosts/<slug:name>/config/", hosts.host_config, name="host-config"),
    path("hosts/<slug:name>/remove/", hosts.host_remove, name="host-remove"),
    path("hosts/<slug:name>/repin/", hosts.host_repin, name="host-repin"),
    path("tasks/", tasks.task_list, name="task-list"),
]
