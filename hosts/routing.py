"""Websocket routes.  Every consumer refuses anonymous users."""

from django.urls import path

from .live.consumers import LiveConsumer
from .views.upload_socket import FileUploadConsumer

websocket_urlpatterns: list = [
    path("ws/live/", LiveConsumer.as_asgi()),
    path("ws/hosts/<slug:host>/instances/<slug:name>/files/upload/", FileUploadConsumer.as_asgi()),
]
