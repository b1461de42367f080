from django.contrib.admin.apps import AdminConfig


class AuditedAdminConfig(AdminConfig):
    """Django's admin, whose site audits every add, change and delete (hosts/admin_site.py)."""

    default_site = "hosts.admin_site.AuditedAdminSite"
