"""Websocket routes of the live dashboard (mounted by quantsite/asgi.py behind
AuthMiddlewareStack)."""

from django.urls import path

from reporting.consumers import PortfolioConsumer

websocket_urlpatterns = [
    path("ws/portfolio/<int:portfolio_id>/", PortfolioConsumer.as_asgi()),
]
