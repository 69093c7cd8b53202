"""chat.services.plugin_request: the `__request__` a caller's plugins get, end to end."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import Client

from chat.services.catalog import build_catalog
from chat.services.connections import connection_create
from chat.services.plugin_request import plugin_request_for
from functions.models import ModelSettings

pytestmark = pytest.mark.django_db

UPSTREAM_KEY = "sk-upstream-never-shown"


@pytest.fixture
def relay(make_function, alice):
    make_function("echo_pipe", is_active=True)
    make_function("request_relay_pipe", is_active=True)
    hidden = make_function("echo_pipe", id="alice_only", is_active=True)
    ModelSettings.objects.create(model_id=hidden.id).allowed_users.add(alice)
    connection_create(
        user=alice,
        name="up",
        base_url="https://user:pw@llm.example.com/v1",
        api_key=UPSTREAM_KEY,
        model_ids=["x"],
    )


def _ask(client: Client, **headers) -> dict:
    body = {"model": "request_relay_pipe", "messages": [{"role": "user", "content": "hi"}]}
    response = client.post(
        "/api/chat/completions?lang=en&api_key=q-secret",
        json.dumps(body),
        content_type="application/json",
        HTTP_USER_AGENT="relay-test/1.0",
        HTTP_X_RELAY_TEST="yes",
        **headers,
    )
    assert response.status_code == 200, response.content
    return json.loads(response.json()["choices"][0]["message"]["content"])


def _secrets(*more: str) -> list[str]:
    # The server's secret key, the valves encryption key, the upstream's API key.
    return [settings.SECRET_KEY, settings.FNPLATFORM_SECRETS_KEY, UPSTREAM_KEY, *more]


def test_a_pipe_reads_the_request_and_passes_it_to_generate_chat_completion(relay, bob):
    client = Client()
    client.force_login(bob)
    client.cookies["theme"] = "dark"
    async_to_sync(build_catalog)()  # the listing MODELS is taken from

    seen = _ask(client)

    assert seen["answer"] == "echo: relay"  # the nested completion went through
    assert (seen["method"], seen["path"]) == ("POST", "/api/chat/completions")
    assert seen["base_url"] == "http://testserver/"
    assert (seen["user_agent"], seen["custom_header"]) == ("relay-test/1.0", "yes")
    assert seen["cookies"] == {"theme": "dark"}
    assert seen["query"] == {"lang": "en"}
    assert seen["client_host"] == "127.0.0.1"
    assert seen["state_user"] == {"id": str(bob.pk), "email": "bob@example.com"}
    assert seen["config"] == {
        "WEBUI_URL": "http://testserver",
        "ENABLE_OPENAI_API": True,
        "OPENAI_API_KEYS": [""],
        "ENABLE_WEB_SEARCH": False,
    }
    assert "alice_only" not in seen["models"]
    assert {"echo_pipe", "request_relay_pipe"} <= set(seen["models"])
    assert seen["body_keys"] == ["messages", "model", "stream"]


def test_no_secret_reaches_the_request(relay, bob_key, bob):
    bearer = Client(HTTP_AUTHORIZATION=f"Bearer {bob_key}")
    bearer.cookies["csrftoken"] = "csrf-never-shown"
    seen = json.dumps(_ask(bearer))
    for secret in _secrets(bob_key, "csrf-never-shown", "q-secret", "pw@"):
        assert secret not in seen

    session = Client()
    session.force_login(bob)
    seen = json.dumps(_ask(session))
    assert session.cookies["sessionid"].value not in seen
    assert "sessionid" not in seen


def test_the_data_names_only_the_caller_and_no_upstream_key(relay, bob, alice):
    async_to_sync(build_catalog)()
    data = json.dumps(plugin_request_for(user=bob, origin=None))
    for secret in _secrets(alice.email, "alice_only"):
        assert secret not in data
    config = plugin_request_for(user=alice, origin=None)["app"]["state"]["config"]
    assert config["OPENAI_API_BASE_URLS"] == ["https://llm.example.com/v1"]
    assert config["OPENAI_API_KEYS"] == [""]
    assert "alice_only" in plugin_request_for(user=alice, origin=None)["app"]["state"]["MODELS"]


def test_actions_get_the_request_too(make_function, alice_client):
    source = (
        "class Action:\n    async def action(self, body, __request__=None):\n"
        "        return {'path': __request__.url.path, 'user': __request__.state.user.name}\n"
    )
    make_function("echo_pipe", is_active=True)
    make_function("req_action", content=source, is_active=True)
    response = alice_client.post(
        "/api/chat/actions/req_action",
        json.dumps({"model": "echo_pipe", "messages": [], "id": "m1"}),
        content_type="application/json",
    )
    assert response.json() == {
        "path": "/api/chat/actions/req_action",
        "user": "alice",
        "events": [],
    }
