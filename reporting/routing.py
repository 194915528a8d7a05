"""Websocket routes. The live dashboard consumers arrive with the dashboard issue."""

websocket_urlpatterns: list = []
