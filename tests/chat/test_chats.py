"""chat.services.chats: the writes clients, plugins (the compat Chats shim) and staff make."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chat.models import Message, MessageStatus
from chat.selectors import chat_document
from chat.services.chats import (
    chat_create,
    chat_edit,
    message_add_files,
    message_add_user,
    message_upsert,
)
from functions.services.host import set_caller

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(bob):
    return chat_create(user=bob, document={"title": "Chat", "models": ["m"]})


def streaming(chat, message_id: str = "a") -> Message:
    return Message.objects.create(
        chat=chat,
        message_id=message_id,
        role="assistant",
        status=MessageStatus.STREAMING,
        content="the run's words",
        runner="specific.x!y",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
        data=dict.fromkeys(["id", "role", "content", "done"]),
    )


def test_a_users_message_answers_the_current_one(chat):
    first = message_add_user(chat=chat, content="one")
    second = message_add_user(chat=chat, content="two")
    assert second.parent == first
    chat.refresh_from_db()
    assert chat.current_message_id == second.message_id
    rendered = chat_document(chat=chat)["history"]["messages"][second.message_id]
    assert rendered["parentId"] == first.message_id and rendered["role"] == "user"
    assert set(rendered) == {"id", "parentId", "childrenIds", "role", "content", "timestamp"}


def test_a_plugins_upsert_cannot_overwrite_what_a_run_is_writing(chat):
    streaming(chat)
    message_upsert(chat=chat, message_id="a", message={"content": "clobbered", "rating": 5})
    row = Message.objects.get(message_id="a")
    assert row.content == "the run's words" and row.data["rating"] == 5


def test_files_are_added_to_a_message(chat):
    message_upsert(chat=chat, message_id="m", message={"role": "user", "content": "x"})
    assert message_add_files(chat=chat, message_id="m", files=[{"id": "f"}]) == [{"id": "f"}]
    assert message_add_files(chat=chat, message_id="nope", files=[{"id": "f"}]) is None


def test_an_edit_of_the_document_keeps_the_messages(chat):
    message_upsert(chat=chat, message_id="m", message={"role": "user", "content": "x"})
    chat_edit(chat=chat, change=lambda document: document.update(files=[{"id": "f"}]))
    chat.refresh_from_db()
    assert chat.chat["files"] == [{"id": "f"}] and "m" in chat.chat["history"]["messages"]


def test_the_compat_shim_reads_and_writes_the_rows(chat, bob):
    from open_webui.models.chats import Chats

    set_caller({"id": str(bob.pk), "role": "user"})
    try:
        streaming(chat)
        Chats.upsert_message_to_chat_by_id_and_message_id(chat.id, "u", {"role": "user"})
        messages = Chats.get_messages_map_by_chat_id(chat.id)
        model = Chats.get_chat_by_id(chat.id)
    finally:
        set_caller(None)
    assert messages["a"] == {
        "id": "a",
        "role": "assistant",
        "content": "the run's words",
        "done": False,
    }
    assert model.chat["models"] == ["m"] and model.chat["history"]["currentId"] == "u"
    assert Message.objects.filter(chat=chat).count() == 2


def test_files_a_plugin_adds_to_its_answer_outlast_the_run(chat):
    from chat.services.answers import answer_finish, answer_save, answer_start

    message = answer_start(
        chat=chat, message_id="a", model="m", runner="specific.me!1", lease_seconds=30
    )
    message_add_files(chat=chat, message_id="a", files=[{"type": "image", "url": "x.png"}])
    answer_save(pk=message.pk, runner="specific.me!1", values={"content": "so"}, lease_seconds=30)
    answer_finish(pk=message.pk, runner="specific.me!1", status="done", values={"content": "done"})
    message.refresh_from_db()
    assert (message.content, message.files) == ("done", [{"type": "image", "url": "x.png"}])
    rendered = chat_document(chat=chat)["history"]["messages"]["a"]
    assert rendered["files"] == [{"type": "image", "url": "x.png"}] and rendered["done"] is True


def test_a_document_cannot_make_a_parent_cycle(chat):
    from chat.services.chats import chat_update

    message_upsert(chat=chat, message_id="x", message={"role": "user"})
    message_upsert(chat=chat, message_id="y", message={"role": "assistant", "parentId": "x"})
    cycle = {"history": {"messages": {"x": {"parentId": "y"}}}}
    chat_update(chat=chat, document=cycle, deleted_message_ids=["x"])
    assert not Message.objects.filter(chat=chat).exists()  # x and its reply y, once each
