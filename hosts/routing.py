"""Websocket routes.  Every consumer refuses anonymous users."""

from django.urls import path

from .consumers import LiveConsumer

websocket_urlpatterns: list = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
