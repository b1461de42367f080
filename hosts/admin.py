from django.contrib import admin

from .models import ClientCertificate, Host


@admin.register(ClientCertificate)
class ClientCertificateAdmin(admin.ModelAdmin):
    # The encrypted private key is never shown, not even encrypted.
    list_display = ("name", "fingerprint", "not_after", "created_at")
    fields = ("name", "certificate", "fingerprint", "not_after", "created_at")
    readonly_fields = ("certificate", "fingerprint", "not_after", "created_at")

    def has_add_permission(self, request):
        return False


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ("name", "endpoint", "status", "server_fingerprint", "last_checked")
    search_fields = ("name", "endpoint")
    # What registration checked against the host (hosts/registration.py): where it is, which
    # certificates.  Changing any of these is a new registration, never an edit.
    readonly_fields = (
        "endpoint",
        "client_certificate",
        "server_certificate",
        "server_fingerprint",
        "status",
        "status_detail",
        "last_checked",
    )
    fields = ("name", *readonly_fields)

    def has_add_permission(self, request):
        return False  # hosts are registered from the dashboard or with `manage.py addhost`
