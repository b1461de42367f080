"""Websocket routes.  Every consumer refuses anonymous users."""

websocket_urlpatterns: list = []
