"""chat.services.live: server-owned runs that save a chat's answer as it streams,
followed by any number of listeners over the channel layer, stopped from anywhere.

The plugins run in the test process (the inline executor); a gated pipe waits for
the test to open its gate (tests.support.gates), so each test decides when the
answer goes on, without sleeping.
"""

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import AsyncClient
from django.utils import timezone

from chat.models import Message, MessageStatus
from chat.selectors import chat_document
from chat.services import broadcast
from chat.services.answers import answers_interrupt_stale
from chat.services.chats import chat_create
from chat.services.live import (
    request_snapshots,
    start_answer,
    start_chat_run,
    start_turn,
    stop_chat_runs,
)
from chat.services.run_manager import run_manager

pytestmark = pytest.mark.django_db(transaction=True)

# Says "first ", waits until the test opens the gate named by the user's message,
# then says "second".
GATED_PIPE = """
import asyncio
from tests.support.gates import wait_gate

class Pipe:
    async def pipe(self, body, __event_emitter__=None):
        yield "first "
        status = {"description": "thinking", "done": False}
        await __event_emitter__({"type": "status", "data": status})
        await asyncio.to_thread(wait_gate, body["messages"][-1]["content"])
        yield "second"
"""


# The status the gated pipe emits, as the event recorder stores it (schema-checked).
THINKING = {"description": "thinking", "done": False, "hidden": None}


@pytest.fixture
def gated(make_function):
    return make_function("gated_pipe", content=GATED_PIPE, is_active=True)


@pytest.fixture
def chat(bob):
    return chat_create(user=bob, document={"title": "Live"})


def completion(chat, gate: str, *, message_id: str = "a1", stream: bool = True, **extra) -> dict:
    return {
        "model": "gated_pipe",
        "messages": [{"role": "user", "content": gate}],
        "stream": stream,
        "chat_id": chat.id,
        "id": message_id,
        **extra,
    }


async def listener(chat_id: str) -> str:
    """A channel in the chat's group, as a page's consumer would be."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(broadcast.chat_group(chat_id), channel)
    return channel


async def receive_until(channel: str, kind: str) -> list[dict]:
    """The messages the channel gets, up to and including the first of type `kind`."""
    got = []
    while not got or got[-1]["type"] != kind:
        # A safety net for a broken run, not a timing the test relies on.
        got.append(await asyncio.wait_for(get_channel_layer().receive(channel), 30))
    return got


async def saved(chat_id: str, message_id: str = "a1") -> Message:
    return await Message.objects.aget(chat_id=chat_id, message_id=message_id)


async def the_run(chat, message_id: str = "a1"):
    return run_manager().runs[(chat.id, message_id)]


# The completion door with chat_id and id.


async def test_a_streamed_completion_with_chat_id_and_id_is_saved(bob, gated, chat, gates):
    gates.open_gate("go")
    client = AsyncClient()
    await client.aforce_login(bob)
    response = await client.post(
        "/api/chat/completions", completion(chat, "go"), content_type="application/json"
    )
    frames = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert "first " in frames and "second" in frames and frames.endswith("data: [DONE]\n\n")
    message = await saved(chat.id)
    assert (message.status, message.content, message.role) == ("done", "first second", "assistant")
    assert message.events == [{"type": "status", "data": THINKING}]
    document = await sync_to_async(chat_document)(
        chat=await chat.__class__.objects.aget(pk=chat.pk)
    )
    answer = document["history"]["messages"]["a1"]
    assert answer["done"] is True and answer["status"] == "done" and answer["model"] == "gated_pipe"
    assert answer["statusHistory"] == [THINKING]
    assert document["history"]["currentId"] == "a1"


async def test_a_completion_not_streamed_is_saved_and_answered_whole(bob, gated, chat, gates):
    gates.open_gate("whole")
    client = AsyncClient()
    await client.aforce_login(bob)
    body = completion(chat, "whole", stream=False)
    response = await client.post("/api/chat/completions", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["choices"][0]["message"]["content"] == "first second"
    assert (await saved(chat.id)).content == "first second"


async def test_an_answer_goes_under_the_parent_the_client_names(bob, gated, gates):
    gates.open_gate("p")
    document = {"history": {"messages": {"u1": {"id": "u1", "role": "user", "content": "p"}}}}
    chat = await sync_to_async(chat_create)(user=bob, document=document)
    live = await start_chat_run(user=bob, body=completion(chat, "p", parent_id="u1"))
    assert await live.wait() == "done"
    message = await Message.objects.select_related("parent").aget(chat=chat, message_id="a1")
    assert message.parent.message_id == "u1"


async def test_another_users_chat_is_a_404_before_anything_runs(outsider, gated, chat, gates):
    client = AsyncClient()
    await client.aforce_login(outsider)
    body = completion(chat, "never", stream=False)
    response = await client.post("/api/chat/completions", body, content_type="application/json")
    assert response.status_code == 404
    assert not await Message.objects.filter(chat_id=chat.id).aexists()
    assert not gates.gate("never").is_set() and run_manager().runs == {}


@pytest.mark.parametrize("message_id", ["a1", None], ids=["with-a-message-id", "without"])
async def test_a_chat_that_does_not_exist_is_a_404_and_nothing_runs(bob, gated, message_id):
    # Open WebUI refuses it too: an answer saved nowhere would be lost without a word.
    client = AsyncClient()
    await client.aforce_login(bob)
    body = {**completion(type("C", (), {"id": "no-such-chat"}), "nowhere"), "stream": False}
    body["id"] = message_id
    response = await client.post("/api/chat/completions", body, content_type="application/json")
    assert response.status_code == 404 and "not found" in response.json()["detail"]
    assert not await Message.objects.aexists() and run_manager().runs == {}


async def test_an_inlet_refusal_is_a_400_and_the_message_is_saved_failed(
    bob, make_function, gated, chat
):
    refusing = "class Filter:\n    def inlet(self, body):\n        raise ValueError('no thanks')\n"
    await sync_to_async(make_function)(
        "refusing_filter", content=refusing, is_active=True, is_global=True
    )
    client = AsyncClient()
    await client.aforce_login(bob)
    body = completion(chat, "x", stream=False)
    response = await client.post("/api/chat/completions", body, content_type="application/json")
    assert response.status_code == 400
    message = await saved(chat.id)
    assert message.status == "error" and "no thanks" in message.error["content"]
    assert run_manager().runs == {}


async def test_a_message_being_answered_cannot_be_started_twice(bob, gated, chat, gates):
    from django.core.exceptions import ValidationError

    live = await start_chat_run(user=bob, body=completion(chat, "twice"))
    with pytest.raises(ValidationError) as info:
        await start_chat_run(user=bob, body=completion(chat, "twice"))
    assert info.value.code == "already_running"
    gates.open_gate("twice")
    assert await live.wait() == "done"


async def test_an_upstream_models_answer_is_saved_with_its_usage(bob, alice, chat, fake_openai):
    from chat.services.connections import connection_create

    await sync_to_async(connection_create)(
        user=alice, name="fake", base_url=fake_openai.url, model_ids=["fake-small"]
    )
    client = AsyncClient()
    await client.aforce_login(bob)
    body = {**completion(chat, "hello there"), "model": "fake-small"}
    response = await client.post("/api/chat/completions", body, content_type="application/json")
    frames = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert frames.endswith("data: [DONE]\n\n")
    message = await saved(chat.id)
    assert (message.status, message.content, message.model) == (
        "done",
        "echo: hello there",
        "fake-small",
    )
    assert message.usage["total_tokens"] > 0


TITLED_PIPE = """
import json

class Pipe:
    def pipe(self, body, __task__=None):
        return json.dumps({"title": "Moon trip"}) if __task__ else "an answer"
"""


async def test_a_generated_title_names_the_chat(bob, make_function, chat):
    await sync_to_async(make_function)("titled_pipe", content=TITLED_PIPE, is_active=True)
    client = AsyncClient()
    await client.aforce_login(bob)
    body = {
        **completion(chat, "x", stream=False),
        "model": "titled_pipe",
        "background_tasks": {"title_generation": True},
    }
    response = await client.post("/api/chat/completions", body, content_type="application/json")
    assert response.json()["title"] == "Moon trip"
    await chat.arefresh_from_db()
    assert chat.title == "Moon trip" and chat.chat["title"] == "Moon trip"
    assert (await saved(chat.id)).content == "an answer"


# Listeners.


async def test_listeners_see_the_same_stream_from_start_to_finish(bob, gated, chat, gates):
    first, second = await listener(chat.id), await listener(chat.id)
    user_channel = await get_channel_layer().new_channel()
    await get_channel_layer().group_add(broadcast.user_group(bob.pk), user_channel)
    gates.open_gate("both")
    await start_chat_run(user=bob, body=completion(chat, "both"))
    seen = [await receive_until(channel, broadcast.RUN_FINISHED) for channel in (first, second)]
    assert seen[0] == seen[1]
    kinds = [m["type"] for m in seen[0]]
    assert kinds[0] == broadcast.RUN_STARTED and kinds[-1] == broadcast.RUN_FINISHED
    assert [m["seq"] for m in seen[0]] == list(range(1, len(kinds) + 1))
    deltas = "".join(m["content"] for m in seen[0] if m["type"] == broadcast.RUN_DELTA)
    assert deltas == "first second"
    status = next(m for m in seen[0] if m["type"] == broadcast.RUN_EVENT)
    assert status["event"] == {"type": "status", "data": THINKING}
    finished = seen[0][-1]
    assert (finished["status"], finished["content"], finished["message_id"]) == (
        "done",
        "first second",
        "a1",
    )
    user_kinds = [m["type"] for m in await receive_until(user_channel, broadcast.RUN_FINISHED)]
    assert user_kinds == [broadcast.RUN_STARTED, broadcast.RUN_FINISHED]


async def test_a_late_listener_gets_the_answer_so_far_then_the_rest(bob, gated, chat, gates):
    early = await listener(chat.id)
    await start_chat_run(user=bob, body=completion(chat, "late"))
    await receive_until(early, broadcast.RUN_EVENT)  # "first " and the status are out
    late = await listener(chat.id)
    assert await request_snapshots(user=bob, chat_id=chat.id, reply_channel=late) == 1
    snapshot = (await receive_until(late, broadcast.RUN_SNAPSHOT))[-1]
    assert (snapshot["status"], snapshot["content"]) == ("streaming", "first ")
    assert snapshot["events"] == [{"type": "status", "data": THINKING}]
    gates.open_gate("late")
    rest = await receive_until(late, broadcast.RUN_FINISHED)
    newer = [m for m in rest if m["seq"] > snapshot["seq"]]
    text = snapshot["content"] + "".join(m["content"] for m in newer if m["type"] == "run.delta")
    assert text == "first second" == rest[-1]["content"]


async def test_a_run_outlives_its_requester(bob, gated, chat, gates):
    client = AsyncClient()
    await client.aforce_login(bob)
    response = await client.post(
        "/api/chat/completions", completion(chat, "outlive"), content_type="application/json"
    )
    frames = aiter(response.streaming_content)
    # The status event the pipe emits may go out before its first text (as emitted).
    seen = b""
    while b"first " not in seen:
        seen += await anext(frames)
    await frames.aclose()  # the requester goes away mid-answer
    live = await the_run(chat)
    gates.open_gate("outlive")
    assert await live.wait() == "done"
    message = await saved(chat.id)
    assert (message.status, message.content) == ("done", "first second")


async def test_a_listener_leaving_changes_nothing(bob, gated, chat, gates):
    channel = await listener(chat.id)
    live = await start_chat_run(user=bob, body=completion(chat, "leave"))
    await receive_until(channel, broadcast.RUN_DELTA)
    await get_channel_layer().group_discard(broadcast.chat_group(chat.id), channel)
    gates.open_gate("leave")
    assert await live.wait() == "done"
    assert (await saved(chat.id)).content == "first second"


# Stops.


async def test_stop_ends_the_run_stopped_with_what_it_had(bob, gated, chat, gates):
    channel = await listener(chat.id)
    live = await start_chat_run(user=bob, body=completion(chat, "stop"))
    await receive_until(channel, broadcast.RUN_EVENT)
    assert await sync_to_async(stop_chat_runs)(user=bob, chat_id=chat.id) == 1
    assert await live.wait() == "stopped"
    finished = (await receive_until(channel, broadcast.RUN_FINISHED))[-1]
    assert (finished["status"], finished["content"]) == ("stopped", "first ")
    message = await saved(chat.id)
    assert (message.status, message.content, message.lease_expires_at) == (
        "stopped",
        "first ",
        None,
    )


async def test_the_stop_endpoint_stops_a_saved_run(bob, gated, chat, gates):
    channel = await listener(chat.id)
    client = AsyncClient()
    await client.aforce_login(bob)
    response = await client.post(
        "/api/chat/completions", completion(chat, "endpoint"), content_type="application/json"
    )
    frames = aiter(response.streaming_content)
    await receive_until(channel, broadcast.RUN_EVENT)
    stop = await client.post(f"/api/tasks/chat/{chat.id}/stop")
    assert stop.json() == {"status": True, "stopped": 1}
    tail = b"".join([chunk async for chunk in frames]).decode()
    assert '"finish_reason": "stop"' in tail and tail.endswith("data: [DONE]\n\n")
    assert (await saved(chat.id)).status == "stopped"


async def test_another_user_cannot_stop_the_run(bob, outsider, gated, chat, gates):
    from django.core.exceptions import PermissionDenied

    channel = await listener(chat.id)
    live = await start_chat_run(user=bob, body=completion(chat, "theirs"))
    await receive_until(channel, broadcast.RUN_EVENT)
    with pytest.raises(PermissionDenied):
        await sync_to_async(stop_chat_runs)(user=outsider, chat_id=chat.id)
    gates.open_gate("theirs")
    assert await live.wait() == "done"


# The pages' turns.


async def test_a_turn_saves_the_users_message_then_its_answer(bob, gated, chat, gates):
    gates.open_gate("hello")
    live = await start_turn(user=bob, chat_id=chat.id, content="hello", model="gated_pipe")
    assert await live.wait() == "done"
    rows = [m async for m in Message.objects.filter(chat=chat).order_by("pk")]
    assert [(m.role, m.content, m.status) for m in rows] == [
        ("user", "hello", "done"),
        ("assistant", "first second", "done"),
    ]
    assert rows[1].parent_id == rows[0].pk


ECHO_ALL = """
import json

class Pipe:
    def pipe(self, body):
        return json.dumps([[m["role"], m["content"]] for m in body["messages"]])
"""


async def test_a_regenerated_answer_hears_the_conversation_up_to_its_question(
    bob, make_function, gates
):
    await sync_to_async(make_function)("echo_all", content=ECHO_ALL, is_active=True)
    document = {
        "history": {
            "currentId": "a1",
            "messages": {
                "u0": {"id": "u0", "role": "user", "content": "hi", "childrenIds": ["a0"]},
                "a0": {"id": "a0", "parentId": "u0", "role": "assistant", "content": "yo"},
                "u1": {"id": "u1", "parentId": "a0", "role": "user", "content": "again?"},
                "a1": {"id": "a1", "parentId": "u1", "role": "assistant", "content": "old"},
            },
        }
    }
    chat = await sync_to_async(chat_create)(user=bob, document=document)
    live = await start_answer(user=bob, chat_id=chat.id, user_message_id="u1", model="echo_all")
    assert await live.wait() == "done"
    answer = await Message.objects.select_related("parent").aget(pk=live.message_pk)
    assert answer.parent.message_id == "u1" and answer.message_id != "a1"
    heard = json.loads(answer.content)
    assert heard == [["user", "hi"], ["assistant", "yo"], ["user", "again?"]]


# Saving and leases.


async def test_saves_are_coalesced_not_one_per_chunk(bob, make_function, chat, settings):
    many = (
        "class Pipe:\n    async def pipe(self, body):\n"
        "        for i in range(40):\n            yield f'{i} '\n"
    )
    await sync_to_async(make_function)("many_pipe", content=many, is_active=True)
    settings.CHAT_RUN_SAVE_SECONDS = 3600
    body = {**completion(chat, "x"), "model": "many_pipe"}
    live = await start_chat_run(user=bob, body=body)
    assert await live.wait() == "done"
    assert live.saves == 0  # nothing between its start and its end
    assert (await saved(chat.id)).content == "".join(f"{i} " for i in range(40))


async def test_a_run_saves_what_it_has_when_the_answer_pauses(bob, gated, chat, gates, settings):
    settings.CHAT_RUN_SAVE_SECONDS = 0.05
    channel = await listener(chat.id)
    live = await start_chat_run(user=bob, body=completion(chat, "midway"))
    await receive_until(channel, broadcast.RUN_EVENT)
    while not live.saves:  # the pipe waits at its gate: nothing new comes, the save does
        await asyncio.sleep(0.01)
    message = await saved(chat.id)
    assert (message.status, message.content) == ("streaming", "first ")
    assert message.events == [{"type": "status", "data": THINKING}]
    assert message.lease_expires_at > timezone.now()
    gates.open_gate("midway")
    assert await live.wait() == "done"
    assert (await saved(chat.id)).content == "first second"


def _streaming(chat, message_id: str, lease) -> Message:
    return Message.objects.create(
        chat=chat,
        message_id=message_id,
        role="assistant",
        status=MessageStatus.STREAMING,
        content="half an ans",
        runner="specific.gone!process",
        lease_expires_at=lease,
        data=dict.fromkeys(["id", "role", "content", "done", "status"]),
    )


@pytest.mark.django_db
def test_a_run_whose_process_died_is_marked_interrupted_with_what_it_saved(chat):
    dead = _streaming(chat, "dead", timezone.now() - timedelta(seconds=1))
    alive = _streaming(chat, "alive", timezone.now() + timedelta(minutes=5))
    assert [m.message_id for m in answers_interrupt_stale()] == ["dead"]
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert (dead.status, dead.content, dead.lease_expires_at) == (
        "interrupted",
        "half an ans",
        None,
    )
    assert alive.status == "streaming"
    chat.refresh_from_db()
    stored = chat.chat["history"]["messages"]["dead"]
    assert (stored["status"], stored["done"], stored["content"]) == (
        "interrupted",
        True,
        "half an ans",
    )


@pytest.mark.django_db
def test_an_expired_lease_reads_as_interrupted_before_any_sweep(chat, bob_client):
    _streaming(chat, "dead", timezone.now() - timedelta(seconds=1))
    answer = bob_client.get(f"/api/v1/chats/{chat.id}").json()["chat"]["history"]["messages"][
        "dead"
    ]
    assert (answer["status"], answer["done"]) == ("interrupted", True)


async def test_the_heartbeat_tells_listeners_of_a_dead_processs_answer(
    bob, gated, chat, gates, settings
):
    settings.CHAT_RUN_LEASE_SECONDS = 0.3
    await sync_to_async(_streaming)(chat, "dead", timezone.now() - timedelta(seconds=1))
    channel = await listener(chat.id)
    live = await start_chat_run(user=bob, body=completion(chat, "beat"))
    got = await receive_until(channel, broadcast.RUN_FINISHED)
    finished = got[-1]
    assert (finished["message_id"], finished["status"], finished["seq"]) == (
        "dead",
        "interrupted",
        None,
    )
    assert (await saved(chat.id)).status == "streaming"  # its own lease is renewed
    gates.open_gate("beat")
    assert await live.wait() == "done"


async def test_a_run_stops_when_its_chat_is_deleted(bob, gated, chat, gates, settings):
    settings.CHAT_RUN_SAVE_SECONDS = 0
    channel = await listener(chat.id)
    live = await start_chat_run(user=bob, body=completion(chat, "deleted"))
    await receive_until(channel, broadcast.RUN_DELTA)
    await chat.__class__.objects.filter(pk=chat.pk).adelete()
    gates.open_gate("deleted")
    assert await live.wait() in ("interrupted", "done")
    assert not await Message.objects.aexists()


def test_run_messages_are_plain_data(bob):
    message = {"type": broadcast.RUN_DELTA, "chat_id": "c", "message_id": "m", "seq": 1}
    assert json.loads(json.dumps(message)) == message
    assert broadcast.chat_group("4b0c-9") == "chat.4b0c-9"
    assert broadcast.chat_group("local:odd id/with slashes").startswith("chat.h")
    assert len(broadcast.chat_group("x" * 300)) < 100 and broadcast.user_group(7) == "user.7"


# Across processes: runs in a daphne server process (sandboxed workers), seen and
# stopped from this one.

PAUSING_PIPE = """
import asyncio

class Pipe:
    async def pipe(self, body):
        yield "first "
        await asyncio.sleep(float(body["messages"][-1]["content"]))
        yield "second"
"""
needs_redis = pytest.mark.skipif(
    not settings.REDIS_URL, reason="processes reach each other's runs over Redis"
)


def eventually(condition, timeout: float = 60):
    """Wait for condition() to be true (a safety deadline, not a timing under test)."""
    import time

    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)
    return value


@pytest.fixture
def pausing(alice):
    from functions.services.functions import function_create, function_set_active

    function = function_create(user=alice, id="pausing_pipe", content=PAUSING_PIPE)
    return function_set_active(user=alice, function=function, active=True)


def start_streaming(client, url: str, key: str, chat, seconds: str):
    body = {**completion(chat, seconds), "model": "pausing_pipe"}
    headers = {"Authorization": f"Bearer {key}"}
    return client.stream("POST", f"{url}/api/chat/completions", json=body, headers=headers)


def saved_now(chat, message_id: str = "a1") -> Message | None:
    return Message.objects.filter(chat=chat, message_id=message_id).first()


@pytest.mark.django_db(transaction=True)
def test_a_run_outlives_the_http_client_that_asked(live, pausing, chat, bob_key):
    with (
        httpx.Client(timeout=30) as client,
        start_streaming(client, live.url, bob_key, chat, "0.5") as response,
    ):
        lines = response.iter_lines()
        assert "first" in next(line for line in lines if line.startswith("data:"))
    # The connection is closed: the server's response is cancelled, its run is not.
    message = eventually(lambda: (m := saved_now(chat)) and m.status != "streaming" and m)
    assert (message.status, message.content) == ("done", "first second")


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_server_process_died_is_marked_interrupted(pausing, chat, bob_key, upstream):
    import httpx

    from tests.support.live import LiveServer

    server = LiveServer({"FNPLATFORM_RUN_SAVE_SECONDS": "0", "OPENAI_API_BASE_URLS": upstream.url})
    try:
        with (
            httpx.Client(timeout=30) as client,
            start_streaming(client, server.url, bob_key, chat, "120"),
        ):
            message = eventually(lambda: (m := saved_now(chat)) and m.content == "first " and m)
            server.process.kill()  # no goodbye: the process just dies
            server.process.wait()
    finally:
        server.stop()
    assert answers_interrupt_stale() == []  # its lease still vouches for it
    message.refresh_from_db()
    assert message.status == "streaming"
    later = message.lease_expires_at + timedelta(seconds=1)
    assert [m.message_id for m in answers_interrupt_stale(now=later)] == ["a1"]
    message.refresh_from_db()
    assert (message.status, message.content) == ("interrupted", "first ")


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_stop_from_another_process_stops_the_run(live, pausing, chat, bob, bob_key):
    with (
        httpx.Client(timeout=30) as client,
        start_streaming(client, live.url, bob_key, chat, "120") as response,
    ):
        lines = response.iter_lines()
        assert "first" in next(line for line in lines if line.startswith("data:"))
        eventually(lambda: (m := saved_now(chat)) and m.runner)
        # This process runs nothing: the stop crosses over Redis to the server's.
        assert stop_chat_runs(user=bob, chat_id=chat.id) == 1
        tail = [line for line in lines if line.startswith("data:")]
    assert tail[-1] == "data: [DONE]" and '"finish_reason": "stop"' in tail[-2]
    message = eventually(lambda: (m := saved_now(chat)) and m.status != "streaming" and m)
    assert (message.status, message.content) == ("stopped", "first ")


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_listener_in_another_process_catches_up(live, pausing, chat, bob, bob_key):
    async def catch_up() -> dict:
        channel = await listener(chat.id)
        assert await request_snapshots(user=bob, chat_id=chat.id, reply_channel=channel) == 1
        return (await receive_until(channel, broadcast.RUN_SNAPSHOT))[-1]

    with (
        httpx.Client(timeout=30) as client,
        start_streaming(client, live.url, bob_key, chat, "120") as response,
    ):
        lines = response.iter_lines()
        assert "first" in next(line for line in lines if line.startswith("data:"))
        eventually(lambda: (m := saved_now(chat)) and m.runner)
        snapshot = async_to_sync(catch_up)()
        assert stop_chat_runs(user=bob, chat_id=chat.id) == 1
    assert (snapshot["status"], snapshot["content"], snapshot["message_id"]) == (
        "streaming",
        "first ",
        "a1",
    )
