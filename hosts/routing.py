"""Websocket routes.  Every consumer refuses anonymous users."""

from django.urls import path

from .live.consumers import LiveConsumer
from .views.backup_upload_socket import BackupUploadConsumer
from .views.image_import_socket import ImageImportConsumer
from .views.terminal_socket import TerminalConsumer
from .views.upload_socket import FileUploadConsumer

websocket_urlpatterns: list = [
    path("ws/live/", LiveConsumer.as_asgi()),
    path("ws/hosts/<slug:host>/instances/<slug:name>/files/upload/", FileUploadConsumer.as_asgi()),
    # <str:name>: a bad instance name reaches the consumer, which refuses it with the rule.
    path("ws/hosts/<slug:host>/instances/<str:name>/terminal/", TerminalConsumer.as_asgi()),
    path("ws/hosts/<slug:host>/images/import/", ImageImportConsumer.as_asgi()),
    path("ws/backups/restore/", BackupUploadConsumer.as_asgi()),
]
