"""Websocket routes.  Every consumer refuses anonymous users."""

from django.urls import path

from .upload_consumer import FileUploadConsumer

websocket_urlpatterns: list = [
    path("ws/hosts/<slug:host>/instances/<slug:name>/files/upload/", FileUploadConsumer.as_asgi()),
]
