"""Upstream connections: the write services, env config, model listing, chat calls, the admin."""

import asyncio
import json
import time
from contextlib import aclosing

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection as db
from django.test import Client
from django.urls import reverse

from chat.models import Connection
from chat.services import connections as services
from chat.services.connections import (
    UpstreamConnection,
    UpstreamError,
    connection_all,
    connection_api_key,
    connection_create,
    connection_delete,
    connection_update,
    env_connections,
    find_upstream_model,
    upstream_chat,
    upstream_chat_stream,
    upstream_models,
)
from tests.support.openai_server import FakeOpenAI

DEAD_URL = "http://127.0.0.1:1/v1"
HELLO = {"model": "fake-small", "messages": [{"role": "user", "content": "hello there world"}]}


def upstream(fake_or_url, *, id: str = "db:1", **overrides) -> UpstreamConnection:
    url = fake_or_url if isinstance(fake_or_url, str) else fake_or_url.url
    fields = {"id": id, "name": id, "base_url": url, "timeout": 5.0, **overrides}
    return UpstreamConnection(**fields)


def raw_key_column(connection: Connection) -> str:
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT api_key_encrypted FROM chat_connection WHERE id = %s", [connection.pk]
        )
        return cursor.fetchone()[0]


def model_requests(fake: FakeOpenAI) -> list:
    return [r for r in fake.requests if r[0] == "/v1/models"]


@pytest.fixture
def local(alice):
    """A stored connection with a key."""
    return connection_create(
        user=alice, name="Local", base_url="http://127.0.0.1:11434/v1", api_key="sk-secret-1"
    )


# Write services


@pytest.mark.django_db
def test_create_stores_the_api_key_encrypted_at_rest(local):
    raw = raw_key_column(local)

    assert raw
    assert "sk-secret-1" not in raw
    assert connection_api_key(local) == "sk-secret-1"


@pytest.mark.django_db
def test_create_without_a_key_stores_nothing(alice):
    connection = connection_create(user=alice, name="Open", base_url="http://a/v1")

    assert raw_key_column(connection) == ""
    assert connection_api_key(connection) == ""
    assert connection.has_api_key is False


@pytest.mark.django_db
def test_create_normalises_the_url_and_the_allow_list(alice):
    connection = connection_create(
        user=alice,
        name="  Spaced  ",
        base_url=" http://a:8000/v1/ ",
        model_ids=[" m1 ", "m2", "m1", ""],
    )

    connection.refresh_from_db()
    assert connection.name == "Spaced"
    assert connection.base_url == "http://a:8000/v1"
    assert connection.model_ids == ["m1", "m2"]
    assert connection.timeout == 60.0
    assert connection.dom_id == f"connection-{connection.pk}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, field",
    [
        pytest.param({"base_url": "ftp://a/v1"}, "base_url", id="scheme"),
        pytest.param({"base_url": "not a url"}, "base_url", id="no-host"),
        pytest.param({"base_url": "http://a/v1?x=1"}, "base_url", id="query"),
        pytest.param({"name": "   "}, "name", id="blank-name"),
        pytest.param({"timeout": 0}, "timeout", id="zero-timeout"),
        pytest.param({"model_ids": "m1"}, "model_ids", id="allow-list-not-a-list"),
    ],
)
def test_create_rejects_bad_input_and_stores_nothing(alice, fields, field):
    data = {"name": "X", "base_url": "http://a/v1", **fields}

    with pytest.raises(ValidationError) as caught:
        connection_create(user=alice, **data)

    assert field in caught.value.message_dict
    assert not Connection.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("api_key", [None, ""])
def test_update_without_a_new_key_keeps_the_stored_one(alice, local, api_key):
    updated = connection_update(user=alice, connection=local, name="Renamed", api_key=api_key)

    assert updated.name == "Renamed"
    assert connection_api_key(updated) == "sk-secret-1"


@pytest.mark.django_db
def test_update_with_a_new_key_replaces_it(alice, local):
    updated = connection_update(user=alice, connection=local, api_key=" sk-new \n")

    assert connection_api_key(updated) == "sk-new"
    assert "sk-new" not in raw_key_column(updated)


@pytest.mark.django_db
def test_update_with_the_clear_flag_removes_the_key(alice, local):
    updated = connection_update(user=alice, connection=local, clear_api_key=True)

    assert raw_key_column(updated) == ""
    assert connection_api_key(updated) == ""


@pytest.mark.django_db
def test_update_refuses_a_new_key_together_with_clearing(alice, local):
    with pytest.raises(ValidationError) as caught:
        connection_update(user=alice, connection=local, api_key="sk-2", clear_api_key=True)

    assert caught.value.error_dict["api_key"][0].code == "ambiguous_api_key"
    assert connection_api_key(Connection.objects.get()) == "sk-secret-1"


@pytest.mark.django_db
def test_update_changes_only_the_given_fields(alice, local):
    updated = connection_update(
        user=alice, connection=local, model_ids=["a"], timeout=5, is_active=False
    )

    assert (updated.name, updated.base_url) == ("Local", "http://127.0.0.1:11434/v1")
    assert (updated.model_ids, updated.timeout, updated.is_active) == (["a"], 5.0, False)


@pytest.mark.django_db
def test_delete_removes_the_connection(alice, local):
    connection_delete(user=alice, connection=local)

    assert not Connection.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["bob", "anonymous", "inactive-staff"])
def test_only_active_staff_can_manage_connections(who, local, bob, django_user_model):
    from django.contrib.auth.models import AnonymousUser

    users = {
        "bob": bob,
        "anonymous": AnonymousUser(),
        "inactive-staff": django_user_model.objects.create_user(
            "ghost", is_staff=True, is_active=False
        ),
    }
    user = users[who]

    with pytest.raises(PermissionDenied):
        connection_create(user=user, name="X", base_url="http://x/v1")
    with pytest.raises(PermissionDenied):
        connection_update(user=user, connection=local, name="Hijacked", api_key="sk-evil")
    with pytest.raises(PermissionDenied):
        connection_delete(user=user, connection=local)

    local.refresh_from_db()
    assert (Connection.objects.count(), local.name) == (1, "Local")
    assert connection_api_key(local) == "sk-secret-1"


# Environment connections


def test_env_connections_pair_urls_and_keys_by_index(monkeypatch):
    monkeypatch.setenv("OPENAI_API_BASE_URLS", "http://a/v1;http://b/v1/")
    monkeypatch.setenv("OPENAI_API_KEYS", "k1;")

    first, second = env_connections()

    assert (first.id, first.name, first.base_url, first.api_key) == (
        "env:0",
        "a",
        "http://a/v1",
        "k1",
    )
    assert (second.id, second.name, second.base_url, second.api_key) == (
        "env:1",
        "b",
        "http://b/v1",
        "",
    )
    assert first.model_ids == ()


def test_env_connections_are_read_at_call_time(monkeypatch):
    monkeypatch.delenv("OPENAI_API_BASE_URLS", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE_URL", raising=False)
    assert env_connections() == []

    monkeypatch.setenv("OPENAI_API_BASE_URLS", "http://later/v1")

    assert [c.base_url for c in env_connections()] == ["http://later/v1"]


def test_env_connections_with_more_urls_than_keys_have_no_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_BASE_URLS", "http://a/v1;http://b/v1;http://c/v1")
    monkeypatch.setenv("OPENAI_API_KEYS", "k1")

    assert [c.api_key for c in env_connections()] == ["k1", "", ""]


def test_env_connections_skip_invalid_or_empty_urls_but_keep_indexes(monkeypatch):
    monkeypatch.setenv("OPENAI_API_BASE_URLS", "not a url;;http://c/v1")
    monkeypatch.setenv("OPENAI_API_KEYS", "k0;k1;k2")

    (only,) = env_connections()

    assert (only.id, only.api_key) == ("env:2", "k2")


def test_env_connections_fall_back_to_the_single_variables(monkeypatch):
    monkeypatch.delenv("OPENAI_API_BASE_URLS", raising=False)
    monkeypatch.delenv("OPENAI_API_KEYS", raising=False)
    monkeypatch.setenv("OPENAI_API_BASE_URL", "http://single/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-single")
    monkeypatch.setenv("AIOHTTP_CLIENT_TIMEOUT", "12.5")

    (only,) = env_connections()

    assert (only.base_url, only.api_key, only.timeout) == ("http://single/v1", "sk-single", 12.5)


def test_the_api_key_never_shows_in_an_upstream_repr():
    assert "sk-hidden" not in repr(upstream(DEAD_URL, api_key="sk-hidden"))


@pytest.mark.django_db
def test_connection_all_lists_active_stored_connections_then_env_ones(alice, local, monkeypatch):
    connection_create(user=alice, name="Off", base_url="http://off/v1", is_active=False)
    monkeypatch.setenv("OPENAI_API_BASE_URLS", "http://env/v1")
    monkeypatch.setenv("OPENAI_API_KEYS", "k-env")

    stored, env = connection_all()

    assert (stored.id, stored.api_key) == (f"db:{local.pk}", "sk-secret-1")
    assert (env.id, env.api_key) == ("env:0", "k-env")


@pytest.mark.django_db
def test_connection_all_skips_a_connection_whose_key_cannot_be_decrypted(
    alice, local, settings, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_BASE_URLS", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE_URL", raising=False)
    other = connection_create(user=alice, name="Open", base_url="http://open/v1")
    settings.FNPLATFORM_SECRETS_KEY = "a different key"

    assert [c.id for c in connection_all()] == [f"db:{other.pk}"]


# Model listing (connections passed explicitly: no database in these async tests)


async def test_models_come_from_every_upstream_and_a_dead_one_is_one_error(fake_openai):
    with FakeOpenAI(models=["other-model"]) as second:
        connections = [
            upstream(fake_openai, id="db:1"),
            upstream(DEAD_URL, id="env:0"),
            upstream(second, id="db:2"),
        ]
        started = time.monotonic()
        listing = await upstream_models(connections=connections)

    assert [m["id"] for m in listing.models] == ["fake-small", "fake-large", "other-model"]
    assert [m["connection_id"] for m in listing.models] == ["db:1", "db:1", "db:2"]
    (error,) = listing.errors
    assert (error["connection_id"], error["name"]) == ("env:0", "env:0")
    assert "Cannot reach http://127.0.0.1:1/v1" in error["error"]
    # A refused connection fails at once; nowhere near the 10 s listing timeout.
    assert time.monotonic() - started < 5


async def test_model_dicts_have_the_openai_shape_and_their_connection(fake_openai):
    listing = await upstream_models(connections=[upstream(fake_openai, id="env:3")])

    assert listing.models[0] == {
        "id": "fake-small",
        "object": "model",
        "created": 1_700_000_000,
        "owned_by": "fake",
        "name": "fake-small",
        "connection_id": "env:3",
    }
    assert listing.connection("env:3").base_url == fake_openai.url


async def test_the_allow_list_filters_the_listed_ids(fake_openai):
    connection = upstream(fake_openai, model_ids=["fake-large", "not-offered"])

    listing = await upstream_models(connections=[connection])

    assert [m["id"] for m in listing.models] == ["fake-large"]


async def test_the_first_connection_wins_a_model_id_offered_twice(fake_openai):
    with FakeOpenAI() as twin:
        connections = [upstream(fake_openai, id="db:1"), upstream(twin, id="db:2")]
        listing = await upstream_models(connections=connections)

    assert [m["connection_id"] for m in listing.models] == ["db:1", "db:1"]


async def test_the_listing_is_cached_and_refresh_bypasses_the_cache(fake_openai):
    connections = [upstream(fake_openai)]

    await upstream_models(connections=connections)
    await upstream_models(connections=connections)
    assert len(model_requests(fake_openai)) == 1

    await upstream_models(connections=connections, refresh=True)
    assert len(model_requests(fake_openai)) == 2


async def test_the_cache_expires(fake_openai, monkeypatch):
    monkeypatch.setattr(services, "MODELS_CACHE_SECONDS", 0)
    connections = [upstream(fake_openai)]

    await upstream_models(connections=connections)
    await upstream_models(connections=connections)

    assert len(model_requests(fake_openai)) == 2


async def test_an_edited_connection_misses_the_cache(fake_openai):
    await upstream_models(connections=[upstream(fake_openai)])

    listing = await upstream_models(connections=[upstream(fake_openai, model_ids=("fake-small",))])

    assert len(model_requests(fake_openai)) == 2
    assert [m["id"] for m in listing.models] == ["fake-small"]


async def test_listing_sends_the_bearer_key_only_when_one_is_set(fake_openai):
    with_key = upstream(fake_openai, id="db:1", api_key="sk-list")
    without = upstream(fake_openai, id="db:2")

    await upstream_models(connections=[with_key, without])

    headers = sorted((h.get("Authorization", "") for _, h, _ in fake_openai.requests), key=len)
    assert headers == ["", "Bearer sk-list"]


async def test_a_refusing_upstream_is_reported_with_its_message_and_cached():
    with FakeOpenAI(require_key="sk-right") as fake:
        connections = [upstream(fake, api_key="sk-wrong")]
        first = await upstream_models(connections=connections)
        second = await upstream_models(connections=connections)

    assert first.models == second.models == []
    assert first.errors[0]["error"] == "Incorrect API key provided."
    assert second.errors == first.errors
    assert len(model_requests(fake)) == 1


async def test_the_listing_hands_out_copies_of_the_cached_models(fake_openai):
    connections = [upstream(fake_openai)]
    (await upstream_models(connections=connections)).models[0]["id"] = "mutated"

    listing = await upstream_models(connections=connections)

    assert listing.models[0]["id"] == "fake-small"


@pytest.mark.django_db(transaction=True)
async def test_without_arguments_models_of_stored_and_env_connections_are_listed(
    alice, fake_openai, monkeypatch
):
    with FakeOpenAI(models=["env-model"]) as env_fake:
        monkeypatch.setenv("OPENAI_API_BASE_URLS", env_fake.url)
        monkeypatch.setenv("OPENAI_API_KEYS", "sk-env")
        stored = await sync_to_async(connection_create)(
            user=alice, name="Fake", base_url=fake_openai.url, api_key="sk-db"
        )

        listing = await upstream_models()
        found = await find_upstream_model("env-model")
        missing = await find_upstream_model("no-such-model")

    assert [m["id"] for m in listing.models] == ["fake-small", "fake-large", "env-model"]
    assert fake_openai.requests[0][1]["Authorization"] == "Bearer sk-db"
    assert listing.models[0]["connection_id"] == f"db:{stored.pk}"
    connection, model = found
    assert (connection.id, connection.api_key, model["id"]) == ("env:0", "sk-env", "env-model")
    assert missing is None
    assert len(model_requests(env_fake)) == 1  # find_upstream_model used the cached listing


# Chat calls


async def test_upstream_chat_returns_the_completion(fake_openai):
    data = await upstream_chat(upstream(fake_openai, api_key="sk-chat"), {**HELLO, "stream": True})

    assert data["choices"][0]["message"]["content"] == "echo: hello there world"
    assert data["usage"]["total_tokens"] == 7
    path, headers, body = fake_openai.requests[-1]
    assert (path, headers["Authorization"]) == ("/v1/chat/completions", "Bearer sk-chat")
    assert body == {**HELLO, "stream": False}


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_500_raises_upstream_error_with_its_message(fake_openai, stream):
    body = {**HELLO, "model": "fake-error"}

    with pytest.raises(UpstreamError) as caught:
        if stream:
            async with aclosing(upstream_chat_stream(upstream(fake_openai), body)) as chunks:
                await anext(chunks)
        else:
            await upstream_chat(upstream(fake_openai), body)

    assert (caught.value.status, caught.value.message) == (500, "upstream exploded")
    assert caught.value.connection_id == "db:1"


async def test_a_wrong_key_raises_upstream_error_401():
    with FakeOpenAI(require_key="sk-right") as fake, pytest.raises(UpstreamError) as caught:
        await upstream_chat(upstream(fake, api_key="sk-wrong"), HELLO)

    assert (caught.value.status, caught.value.message) == (401, "Incorrect API key provided.")


async def test_an_unreachable_upstream_raises_upstream_error_without_status():
    with pytest.raises(UpstreamError) as caught:
        await upstream_chat(upstream(DEAD_URL), HELLO)

    assert caught.value.status is None
    assert "Cannot reach" in caught.value.message


async def test_an_upstream_slower_than_the_timeout_raises_upstream_error():
    with FakeOpenAI(slow_seconds=2) as fake, pytest.raises(UpstreamError) as caught:
        await upstream_chat(upstream(fake, timeout=0.2), {**HELLO, "model": "fake-slow"})

    assert "did not answer within 0.2 s" in caught.value.message


async def test_the_stream_yields_chunks_that_join_to_the_reply(fake_openai):
    body = {**HELLO, "stream_options": {"include_usage": True}}

    chunks = [c async for c in upstream_chat_stream(upstream(fake_openai), body)]

    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "echo: hello there world"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    assert fake_openai.requests[-1][2]["stream"] is True


async def test_the_stream_is_not_buffered():
    with FakeOpenAI(chunk_delay=0.2) as fake:
        arrived = []
        async for _chunk in upstream_chat_stream(upstream(fake), HELLO):
            arrived.append(time.monotonic())
        sent = fake.chunk_sent_at

    # Each chunk reached us before the server even sent the next (paced) one; the
    # stop chunk and [DONE] go out together, and [DONE] is not yielded.
    assert len(arrived) == len(sent) - 1 == 6
    assert all(arrived[i] < sent[i + 1] for i in range(len(arrived) - 1))


async def test_closing_the_stream_early_disconnects_from_the_upstream():
    long_body = {**HELLO, "messages": [{"role": "user", "content": "word " * 100}]}
    with FakeOpenAI(chunk_delay=0.05) as fake:
        async with aclosing(upstream_chat_stream(upstream(fake), long_body)) as chunks:
            await anext(chunks)

        assert await asyncio.to_thread(fake.client_disconnected.wait, 5)
        assert len(fake.chunk_sent_at) < 100


async def test_cancelling_the_consumer_disconnects_from_the_upstream():
    long_body = {**HELLO, "messages": [{"role": "user", "content": "word " * 100}]}
    first_chunk = asyncio.Event()

    async def consume(connection: UpstreamConnection) -> None:
        async for _chunk in upstream_chat_stream(connection, long_body):
            first_chunk.set()

    with FakeOpenAI(chunk_delay=0.05) as fake:
        task = asyncio.create_task(consume(upstream(fake)))
        await asyncio.wait_for(first_chunk.wait(), timeout=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert await asyncio.to_thread(fake.client_disconnected.wait, 5)


@pytest.mark.parametrize(
    "line, data",
    [
        pytest.param('data: {"a": 1}', '{"a": 1}', id="spaced"),
        pytest.param('data:{"a": 1}', '{"a": 1}', id="unspaced"),
        pytest.param("data: [DONE]", "[DONE]", id="done"),
        pytest.param(": keep-alive", None, id="comment"),
        pytest.param("event: completion", None, id="other-field"),
        pytest.param("", None, id="blank"),
        pytest.param("data:", None, id="empty-data"),
    ],
)
def test_sse_lines_are_read_tolerantly(line, data):
    assert services._sse_data(line) == data


# The admin


def admin_url(name: str, *args) -> str:
    return reverse(f"admin:chat_connection_{name}", args=args)


def form_data(**overrides) -> dict:
    return {
        "name": "Fake",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": "",
        "model_ids": "",
        "timeout": "60",
        "is_active": "on",
        **overrides,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["changelist", "add", "change"])
def test_admin_pages_render_without_the_api_key(alice_client, local, page):
    url = admin_url(page, local.pk) if page == "change" else admin_url(page)

    response = alice_client.get(url)

    html = response.content.decode()
    assert response.status_code == 200
    assert "sk-secret-1" not in html
    assert local.api_key_encrypted not in html


@pytest.mark.django_db
def test_admin_change_page_says_whether_a_key_is_set(alice_client, alice, local):
    other = connection_create(user=alice, name="Open", base_url="http://open/v1")

    with_key = alice_client.get(admin_url("change", local.pk)).content.decode()
    without = alice_client.get(admin_url("change", other.pk)).content.decode()

    assert "A key is set" in with_key
    assert 'name="clear_api_key"' in with_key
    assert "Not set." in without
    assert 'name="clear_api_key"' not in without


@pytest.mark.django_db
def test_admin_pages_redirect_non_staff(bob_client, local):
    for client in (bob_client, Client()):
        response = client.get(admin_url("changelist"))
        assert response.status_code == 302


@pytest.mark.django_db
def test_admin_add_stores_the_key_encrypted(alice_client):
    data = form_data(api_key="sk-from-form", model_ids="m1\nm2, m3")

    response = alice_client.post(admin_url("add"), data)

    assert response.status_code == 302
    connection = Connection.objects.get()
    assert connection.model_ids == ["m1", "m2", "m3"]
    assert connection_api_key(connection) == "sk-from-form"
    assert "sk-from-form" not in raw_key_column(connection)


@pytest.mark.django_db
def test_admin_change_with_an_empty_key_keeps_it(alice_client, local):
    response = alice_client.post(admin_url("change", local.pk), form_data(name="Renamed"))

    assert response.status_code == 302
    local.refresh_from_db()
    assert (local.name, connection_api_key(local)) == ("Renamed", "sk-secret-1")


@pytest.mark.django_db
def test_admin_change_with_clear_removes_the_key(alice_client, local):
    alice_client.post(admin_url("change", local.pk), form_data(clear_api_key="on"))

    local.refresh_from_db()
    assert not local.has_api_key


@pytest.mark.django_db
def test_admin_refuses_a_new_key_together_with_clear(alice_client, local):
    data = form_data(api_key="sk-2", clear_api_key="on")

    response = alice_client.post(admin_url("change", local.pk), data)

    assert response.status_code == 200
    assert "api_key" in response.context["adminform"].form.errors
    assert connection_api_key(Connection.objects.get()) == "sk-secret-1"


@pytest.mark.django_db
def test_admin_shows_a_bad_url_as_a_form_error(alice_client):
    response = alice_client.post(admin_url("add"), form_data(base_url="ftp://x"))

    assert "base_url" in response.context["adminform"].form.errors
    assert not Connection.objects.exists()


@pytest.mark.django_db
def test_admin_delete_goes_through_the_service(alice_client, local, monkeypatch):
    calls = []
    monkeypatch.setattr(
        services, "connection_delete", lambda **kw: calls.append(kw) or connection_delete(**kw)
    )

    response = alice_client.post(admin_url("delete", local.pk), {"post": "yes"})

    assert response.status_code == 302
    assert [c["connection"].pk for c in calls] == [local.pk]
    assert not Connection.objects.exists()


@pytest.mark.django_db
def test_admin_test_action_reports_model_counts_and_errors(alice_client, alice, fake_openai):
    live = connection_create(user=alice, name="Live", base_url=fake_openai.url, api_key="sk-t")
    dead = connection_create(user=alice, name="Dead", base_url=DEAD_URL, is_active=False)
    data = {"action": "test_connection", ACTION_CHECKBOX_NAME: [live.pk, dead.pk]}

    response = alice_client.post(admin_url("changelist"), data, follow=True)

    texts = {str(m) for m in response.context["messages"]}
    assert "Live: 2 model(s)." in texts
    assert any(t.startswith("Dead: Cannot reach http://127.0.0.1:1/v1") for t in texts)
    assert fake_openai.requests[0][1]["Authorization"] == "Bearer sk-t"


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["chat", "file", "memory"])
def test_user_data_admin_pages_render_read_only(alice_client, model):
    response = alice_client.get(f"/admin/chat/{model}/")
    assert response.status_code == 200
    assert alice_client.get(f"/admin/chat/{model}/add/").status_code == 403


class _Reads(httpx.AsyncByteStream):
    """A response body that arrives in these network reads."""

    def __init__(self, reads: list[bytes]) -> None:
        self.reads = reads

    async def __aiter__(self):
        for read in self.reads:
            yield read


def _sse(*contents: str) -> bytes:
    return b"".join(
        f"data: {json.dumps({'choices': [{'delta': {'content': c}}]})}\n\n".encode()
        for c in contents
    )


async def _batches(reads: list[bytes]) -> list[list[str]]:
    response = httpx.Response(200, stream=_Reads(reads))
    batches = services._sse_batches(upstream("http://unused/v1"), response)
    return [[c["choices"][0]["delta"]["content"] for c in b] async for b in batches]


async def test_chunks_of_one_network_read_form_one_batch():
    reads = [_sse("a", "b", "c"), _sse("d") + b"data: [DONE]\n\n" + _sse("never")]

    assert await _batches(reads) == [["a", "b", "c"], ["d"]]


async def test_a_chunk_split_across_reads_and_other_line_ends_are_read_whole():
    frame = _sse("split \u2028 line")  # U+2028 ends a line for str.splitlines, not for SSE
    crlf = _sse("crlf").replace(b"\n", b"\r\n")

    batches = await _batches([frame[:9], frame[9:-3], frame[-3:] + crlf[:-1], crlf[-1:]])

    assert [c for batch in batches for c in batch] == ["split \u2028 line", "crlf"]
