"""chat.services.chat_names: what an event names its chat, saved as it comes and told
to the owner's pages; a failure to save is logged, never raised."""

import logging

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from chat.models import Chat
from chat.services import broadcast
from chat.services.chat_names import name_chat_from, names_of
from chat.services.chats import chat_create
from functions.services.events import parse_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ({"type": "chat:title", "data": "  The   Moon "}, ("The Moon", None)),
        ({"type": "chat:title", "data": {"title": "Tides"}}, ("Tides", None)),
        (
            {"type": "chat:tags", "data": ["space", {"name": "tides"}, "space"]},
            (None, ["space", "tides"]),
        ),
        (
            {"type": "chat:completion", "data": {"content": "x", "title": "From a completion"}},
            ("From a completion", None),
        ),
        ({"type": "chat:completion", "data": {"content": "x"}}, (None, None)),
        ({"type": "status", "data": {"description": "Working"}}, (None, None)),
        ({"type": "chat:title", "data": ""}, (None, None)),
    ],
)
def test_what_an_event_names_its_chat(raw, names):
    assert names_of(parse_event(raw)) == names


async def test_a_named_chat_is_saved_and_its_owners_pages_are_told(bob):
    chat = await sync_to_async(chat_create)(user=bob, document={"title": "Before"})
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(broadcast.user_group(bob.pk), channel)
    event = parse_event({"type": "chat:completion", "data": {"title": "After"}})
    await name_chat_from(event, chat_id=chat.id, user_id=bob.pk)
    assert (await Chat.objects.aget(pk=chat.id)).title == "After"
    told = await layer.receive(channel)
    assert (told["type"], told["chat_id"], told["title"]) == (
        broadcast.CHAT_NAMED,
        chat.id,
        "After",
    )


async def test_a_chat_that_cannot_be_named_is_logged_and_the_answer_goes_on(
    bob, caplog, monkeypatch
):
    from chat.services import chat_names

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(chat_names, "chat_name", broken)
    event = parse_event({"type": "chat:title", "data": "Lost"})
    with caplog.at_level(logging.ERROR, logger="chat.services.chat_names"):
        await name_chat_from(event, chat_id="c1", user_id=bob.pk)  # does not raise
    assert "Could not name the chat c1" in caplog.text


async def test_a_chat_gone_meanwhile_is_named_nowhere(bob):
    event = parse_event({"type": "chat:title", "data": "Nobody's"})
    await name_chat_from(event, chat_id="no-such-chat", user_id=bob.pk)
    assert not await Chat.objects.filter(title="Nobody's").aexists()
