"""chat.services.message_events: an action run on a saved assistant message changes it
as Open WebUI's does. Each event the action emits is folded into the message (Turn
semantics), the message as it then is published to the chat's group as each is
emitted (`message.updated`), and the message is saved once when the action ends,
even when it failed.

The actions run in the test process (the inline executor); a gated one waits for the
test to open its gate (tests.support.gates), so the test sees what is published while
the action is still running, without sleeping.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.test import AsyncClient

from chat.models import Chat, Message, MessageStatus
from chat.selectors import chat_document
from chat.services import broadcast
from chat.services.actions import aprepare_action, perform_action
from chat.services.chats import chat_create, message_apply
from chat.services.message_events import message_events_for

pytestmark = pytest.mark.django_db(transaction=True)

# Adds to the message, waits until the test opens the gate named by the last message
# of the body, then a status, a replace and another addition (Open WebUI's aliases).
EDITING_ACTION = """
import asyncio
from tests.support.gates import wait_gate

class Action:
    async def action(self, body, __event_emitter__=None):
        await __event_emitter__({"type": "message", "data": {"content": " more"}})
        await asyncio.to_thread(wait_gate, body["messages"][-1]["content"])
        status = {"description": "checked", "done": True}
        await __event_emitter__({"type": "status", "data": status})
        await __event_emitter__({"type": "chat:message", "data": {"content": "Replaced"}})
        await __event_emitter__({"type": "chat:message:delta", "data": {"content": "!"}})
        return {"content": "edited"}
"""

FAILING_ACTION = """
class Action:
    async def action(self, body, __event_emitter__=None):
        await __event_emitter__({"type": "message", "data": {"content": " partial"}})
        source = {"source": {"name": "doc"}, "document": ["text"], "metadata": [{}]}
        await __event_emitter__({"type": "citation", "data": source})
        raise RuntimeError("broke after emitting")
"""

# An HTML card as a plain (html, headers) tuple (upstream PR #21294).
HTML_ACTION = """
class Action:
    async def action(self, body, __event_emitter__=None):
        return "<div class='card'>card</div>", {"Content-Disposition": "inline"}
"""

# The statuses as the event recorder stores them (schema-checked).
THOUGHT = {"type": "status", "data": {"description": "thought", "done": True}}
CHECKED = {"type": "status", "data": {"description": "checked", "done": True, "hidden": None}}
PINGING = {"type": "status", "data": {"description": "Pinging...", "done": True, "hidden": None}}
CARD = "<div class='card'>card</div>"


def history(content: str = "Hello") -> dict:
    """A saved turn: the user's "u1" and the assistant's "a1" (one status line)."""
    messages = {
        "u1": {"id": "u1", "parentId": None, "role": "user", "content": "hi"},
        "a1": {
            "id": "a1",
            "parentId": "u1",
            "role": "assistant",
            "content": content,
            "statusHistory": [THOUGHT["data"]],
            "done": True,
        },
    }
    return {"title": "Actions", "history": {"messages": messages, "currentId": "a1"}}


@pytest.fixture
def chat(bob):
    return chat_create(user=bob, document=history())


@pytest.fixture
def actions(make_function):
    """The actions, active and offered on every model."""
    make_function("editing_action", content=EDITING_ACTION, is_active=True, is_global=True)
    make_function("failing_action", content=FAILING_ACTION, is_active=True, is_global=True)
    make_function("html_action", content=HTML_ACTION, is_active=True, is_global=True)
    make_function("ping_action", is_active=True, is_global=True)


def action_body(chat_id: str | None, message_id: str | None = "a1", text: str = "Hello") -> dict:
    body = {"model": "echo_pipe", "messages": [{"id": "a1", "role": "assistant", "content": text}]}
    if chat_id is not None:
        body["chat_id"] = chat_id
    if message_id is not None:
        body["id"] = message_id
    return body


async def post_action(user, action_id: str, body: dict):
    """POST /api/chat/actions/{action_id} as `user` (the API door)."""
    client = AsyncClient()
    await client.aforce_login(user)
    return await client.post(
        f"/api/chat/actions/{action_id}", body, content_type="application/json"
    )


async def listener(chat_id: str) -> str:
    """A channel in the chat's group, as a page's consumer would be."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(broadcast.chat_group(chat_id), channel)
    return channel


async def receive(channel: str) -> dict:
    # A safety net for a broken action, not a timing the test relies on.
    return await asyncio.wait_for(get_channel_layer().receive(channel), 30)


async def nothing_published(chat_id: str, channel: str) -> bool:
    """Whether the channel got nothing before a marker sent now to the chat's group."""
    marker = {"type": "test.marker"}
    await get_channel_layer().group_send(broadcast.chat_group(chat_id), marker)
    return await receive(channel) == marker


async def saved(chat_id: str, message_id: str = "a1") -> Message:
    return await Message.objects.aget(chat_id=chat_id, message_id=message_id)


def told(chat, event: dict | None = None, **state) -> dict:
    """What the chat's pages are told after an event: the message as it now is (the
    keys given; the rest of the state as the message started), and the event (None:
    text added or replaced)."""
    start = {"content": "Hello", "events": [THOUGHT], "sources": [], "files": [], "embeds": []}
    rest = {"usage": None, "error": None, "title": None, "tags": None}
    return {
        "type": broadcast.MESSAGE_UPDATED,
        "chat_id": chat.id,
        "message_id": "a1",
        "seq": None,
        **start,
        **rest,
        **state,
        "event": event,
    }


async def test_events_change_the_message_as_they_are_emitted(bob, chat, actions, gates):
    channel = await listener(chat.id)
    request = asyncio.create_task(
        post_action(bob, "editing_action", action_body(chat.id, text="go"))
    )
    assert await receive(channel) == told(chat, content="Hello more")
    # Published live; saved once, at the end: the row is as it was while it runs.
    assert not request.done()
    assert (await saved(chat.id)).content == "Hello"
    gates.open_gate("go")
    response = await request
    # The API answers the result with the events, as the recorder took them.
    emitted = [
        {"type": "message", "data": {"content": " more"}},
        CHECKED,
        {"type": "replace", "data": {"content": "Replaced"}},
        {"type": "message", "data": {"content": "!"}},
    ]
    assert (response.status_code, response.json()) == (
        200,
        {"content": "edited", "events": emitted},
    )
    assert [await receive(channel) for _ in range(3)] == [
        told(chat, CHECKED, content="Hello more", events=[THOUGHT, CHECKED]),
        told(chat, content="Replaced", events=[THOUGHT, CHECKED]),
        told(chat, content="Replaced!", events=[THOUGHT, CHECKED]),
    ]
    assert await nothing_published(chat.id, channel)
    message = await saved(chat.id)
    assert (message.content, message.events) == ("Replaced!", [THOUGHT, CHECKED])
    assert message.status == MessageStatus.DONE
    # The document's copy is rewritten too: the stored chat reads the same.
    stored = (await Chat.objects.aget(pk=chat.pk)).chat["history"]["messages"]["a1"]
    assert stored["content"] == "Replaced!"
    assert stored["statusHistory"] == [THOUGHT["data"], CHECKED["data"]]
    user_message = await saved(chat.id, "u1")
    assert user_message.content == "hi"


async def test_the_chat_pages_call_the_same_service(bob, chat, actions):
    channel = await listener(chat.id)
    req = await aprepare_action(user=bob, action_id="ping_action", body=action_body(chat.id))
    assert await perform_action(req) == {"content": "pong"}
    assert req.followed is not None and req.followed.message_id == "a1"
    assert await receive(channel) == told(chat, PINGING, events=[THOUGHT, PINGING])
    assert await nothing_published(chat.id, channel)
    message = await saved(chat.id)
    assert (message.content, message.events) == ("Hello", [THOUGHT, PINGING])
    document = await sync_to_async(chat_document)(chat=await Chat.objects.aget(pk=chat.pk))
    rendered = document["history"]["messages"]["a1"]
    assert rendered["statusHistory"] == [THOUGHT["data"], PINGING["data"]]


async def test_an_html_result_is_folded_as_an_embed(bob, chat, actions):
    channel = await listener(chat.id)
    response = await post_action(bob, "html_action", action_body(chat.id))
    embed = {"type": "embeds", "data": {"embeds": [CARD], "replace": None}}
    assert response.json() == {"status": True, "embeds": [CARD], "events": [embed]}
    assert await receive(channel) == told(chat, embed, embeds=[CARD])
    message = await saved(chat.id)
    assert (message.content, message.embeds, message.events) == ("Hello", [CARD], [THOUGHT])
    rendered = (await Chat.objects.aget(pk=chat.pk)).chat["history"]["messages"]["a1"]
    assert rendered["embeds"] == [CARD]


async def test_what_a_failing_action_emitted_is_kept(bob, chat, actions):
    channel = await listener(chat.id)
    response = await post_action(bob, "failing_action", action_body(chat.id))
    assert response.status_code == 500
    assert "broke after emitting" in response.json()["detail"]
    source = {"source": {"name": "doc"}, "document": ["text"], "metadata": [{}]}
    assert [await receive(channel) for _ in range(2)] == [
        told(chat, content="Hello partial"),
        told(chat, {"type": "source", "data": source}, content="Hello partial", sources=[source]),
    ]
    message = await saved(chat.id)
    assert (message.content, message.sources) == ("Hello partial", [source])
    assert (message.events, message.status) == ([THOUGHT], MessageStatus.DONE)


@pytest.mark.parametrize("case", ["another-users-chat", "missing-message", "users-message"])
async def test_an_action_elsewhere_runs_as_before(bob, outsider, chat, actions, case):
    theirs = await sync_to_async(chat_create)(user=outsider, document=history())
    target, message_id = {
        "another-users-chat": (theirs, "a1"),
        "missing-message": (chat, "nope"),
        "users-message": (chat, "u1"),
    }[case]
    channel = await listener(target.id)
    before = {m.message_id: m async for m in Message.objects.filter(chat_id=target.id)}
    response = await post_action(bob, "ping_action", action_body(target.id, message_id))
    plain = await post_action(bob, "ping_action", action_body(None, None))
    assert (response.status_code, response.json()) == (plain.status_code, plain.json())
    assert response.json() == {"content": "pong", "events": [PINGING]}
    assert await nothing_published(target.id, channel)
    after = {m.message_id: m async for m in Message.objects.filter(chat_id=target.id)}
    assert [(m.content, m.events, m.updated_at) for m in after.values()] == [
        (m.content, m.events, m.updated_at) for m in before.values()
    ]


async def test_a_temporary_chat_is_not_looked_for(bob, actions):
    response = await post_action(bob, "ping_action", action_body("local:abc"))
    assert (response.status_code, response.json()) == (
        200,
        {"content": "pong", "events": [PINGING]},
    )


def test_a_message_a_run_is_writing_is_left_to_the_run(bob, chat):
    from chat.services.answers import answer_start

    answer_start(chat=chat, message_id="a1", model="m", runner="r!1", lease_seconds=30)
    assert message_events_for(user=bob, chat_id=chat.id, message_id="a1") is None
    # Should it start meanwhile, the save keeps the run's content.
    message_apply(chat=chat, message_id="a1", values={"content": "x", "events": [CHECKED]})
    message = Message.objects.get(chat=chat, message_id="a1")
    assert (message.content, message.events, message.status) == ("", [CHECKED], "streaming")


def test_message_apply_sets_only_the_event_columns(chat):
    with pytest.raises(ValueError, match="status"):
        message_apply(chat=chat, message_id="a1", values={"status": "error"})
    assert message_apply(chat=chat, message_id="gone", values={"content": "x"}) is None
