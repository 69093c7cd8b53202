import asyncio

import pytest
from channels.layers import channel_layers
from django.db import connection
from django.urls import reverse

from fnplatform import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_channel_layers():
    """Drop channels' cached layer instances so a CHANNEL_LAYERS override takes effect."""
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


def test_health_reports_versions_and_reachable_dependencies(client, settings, fresh_channel_layers):
    response = client.get(reverse("health"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"]
    assert set(body["versions"]) == {"python", "django", "channels", "daphne", "ninja", "pydantic"}
    # The suite runs on SQLite and the in-memory layer, and again on PostgreSQL and Redis.
    assert body["database"] == {"ok": True, "vendor": connection.vendor}
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[1]
    assert body["channel_layer"] == {"ok": True, "backend": backend}
    assert body["plugin_environment"]["ok"]  # make test builds it
    assert "no-cache" in response["Cache-Control"]


def test_health_says_when_the_plugin_environment_is_not_built(client, settings, tmp_path):
    settings.FUNCTIONS_PLUGIN_ENV = tmp_path / "missing"
    body = client.get(reverse("health")).json()
    assert body["plugin_environment"]["ok"] is False
    assert "not built" in body["plugin_environment"]["error"]


def test_unreachable_channel_layer_is_degraded_not_down(client, settings, fresh_channel_layers):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }

    response = client.get(reverse("health"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body["channel_layer"]["ok"] is False
    assert body["channel_layer"]["backend"] == "RedisChannelLayer"
    assert body["channel_layer"]["error"]


async def test_channel_layer_check_gives_up_after_the_timeout(monkeypatch):
    class SilentLayer:
        async def new_channel(self):
            return "health!x"

        async def send(self, channel, message):
            pass

        async def receive(self, channel):
            await asyncio.sleep(60)

    monkeypatch.setattr(health, "get_channel_layer", SilentLayer)
    monkeypatch.setattr(health, "CHANNEL_LAYER_TIMEOUT", 0.05)

    result = await health.check_channel_layer()

    assert result == {"ok": False, "backend": "SilentLayer", "error": "no round trip within 0.05 s"}


async def test_misconfigured_channel_layer_is_reported(settings, fresh_channel_layers):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "no.such.Layer"}}

    result = await health.check_channel_layer()

    assert result["ok"] is False
    assert result["error"]
