"""The chat admin: staff look at users' chats, their messages inline, and delete them."""

import pytest

from chat.models import Chat, Message
from chat.services.chats import chat_create

pytestmark = pytest.mark.django_db

DOCUMENT = {
    "title": "Bob's",
    "history": {
        "currentId": "a",
        "messages": {
            "u": {"id": "u", "role": "user", "content": "question", "childrenIds": ["a"]},
            "a": {"id": "a", "parentId": "u", "role": "assistant", "content": "answer"},
        },
    },
}


@pytest.fixture
def chat(bob):
    return chat_create(user=bob, document=DOCUMENT)


def test_a_chats_page_shows_its_messages(alice_client, chat):
    response = alice_client.get(f"/admin/chat/chat/{chat.pk}/change/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "question" in text and "answer" in text and "assistant" in text


def test_deleting_a_chat_deletes_its_messages(alice_client, chat):
    response = alice_client.post(f"/admin/chat/chat/{chat.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Chat.objects.exists() and not Message.objects.exists()


def test_deleting_chats_in_bulk_goes_through_the_service(alice_client, chat, bob):
    other = chat_create(user=bob, document={"title": "Second"})
    data = {"action": "delete_selected", "_selected_action": [chat.pk, other.pk], "post": "yes"}
    assert alice_client.post("/admin/chat/chat/", data).status_code == 302
    assert not Chat.objects.exists() and not Message.objects.exists()


def test_an_ordinary_user_cannot_open_the_chat_admin(bob_client, chat):
    assert bob_client.get(f"/admin/chat/chat/{chat.pk}/change/").status_code == 302
