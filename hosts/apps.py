from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "hosts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db import transaction
        from django.db.models.signals import post_delete, post_save

        from .live.publish import on_task_saved
        from .live.relay import notify_hosts_changed
        from .live.socket_auth import connect_signals
        from .models import Host, Task

        def hosts_changed(sender, **kwargs) -> None:
            # After the commit: the relay reads the hosts from another connection.
            transaction.on_commit(notify_hosts_changed)

        # The relay follows the host list: connect to a new host at once, drop a removed one.
        post_save.connect(hosts_changed, sender=Host, weak=False, dispatch_uid="relay-hosts-changed-save")
        post_delete.connect(hosts_changed, sender=Host, weak=False, dispatch_uid="relay-hosts-changed-delete")
        # The dashboard's own jobs (copies, moves, scheduled backups) show live as task rows.
        post_save.connect(on_task_saved, sender=Task, weak=False, dispatch_uid="live-job-saved")
        # Live sockets close when their login ends (logout, deactivation, role lost).
        connect_signals()
