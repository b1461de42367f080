"""Websocket routes.  Every consumer refuses anonymous users."""

from django.urls import path

from .consumers import LiveConsumer
from .upload_consumer import FileUploadConsumer
from .views.backup_upload_socket import BackupUploadConsumer

websocket_urlpatterns: list = [
    path("ws/live/", LiveConsumer.as_asgi()),
    path("ws/hosts/<slug:host>/instances/<slug:name>/files/upload/", FileUploadConsumer.as_asgi()),
    path("ws/backups/restore/", BackupUploadConsumer.as_asgi()),
]
