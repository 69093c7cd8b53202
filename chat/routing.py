"""Websocket routes: the chat pages' socket (chat.consumers)."""

from django.urls import path

from chat.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/<str:chat_id>/", ChatConsumer.as_asgi()),
]
