"""Websocket routes. The chat consumer arrives with the chat pages issue."""

websocket_urlpatterns: list = []
