"""chat.views: the chat pages over HTTP (the socket's side is tests/chat/test_consumers.py,
the browser's tests/chat/test_pages_browser.py)."""

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client
from django.urls import reverse

from chat.models import Chat, ChatPreferences, Message
from chat.pages import date_groups
from chat.services.chats import chat_create, message_add_user
from chat.services.run_manager import run_manager
from functions.models import ModelSettings

pytestmark = pytest.mark.django_db(transaction=True)

PIPE = '''"""
title: Helpful Pipe
description: Answers politely.
"""
class Pipe:
    def pipe(self, body):
        return "You said: " + body["messages"][-1]["content"]
'''
OTHER_PIPE = PIPE.replace("Helpful Pipe", "Other Pipe").replace("politely", "tersely")
TOGGLE = '''"""
title: Shouting
"""
class Filter:
    def __init__(self):
        self.toggle = True
        self.icon = "data:image/svg+xml;base64,PHN2Zy8+"

    def inlet(self, body):
        body["messages"][-1]["content"] = body["messages"][-1]["content"].upper()
        return body
'''
ACTION = '''"""
title: Mark
"""
class Action:
    async def action(self, body, __event_emitter__=None):
        await __event_emitter__({"type": "status", "data": {"description": "marked", "done": True}})
'''


@pytest.fixture
def pipes(make_function):
    make_function("helpful_pipe", content=PIPE, is_active=True)
    make_function("other_pipe", content=OTHER_PIPE, is_active=True)


@pytest.fixture
def toggle(make_function, pipes):
    make_function("shouting", content=TOGGLE, is_active=True, is_global=True)
    ModelSettings.objects.create(model_id="helpful_pipe", default_filter_ids=["shouting"])


@pytest.fixture
def chat(bob, pipes):
    document = {"title": "Mine", "models": ["helpful_pipe"], "filter_ids": []}
    chat = chat_create(user=bob, document=document)
    message_add_user(chat=chat, content="hello")
    return Chat.objects.get(pk=chat.pk)


@pytest.fixture
def eve_client(outsider):
    client = Client()
    client.force_login(outsider)
    return client


async def wait_for_runs() -> None:
    for run in list(run_manager().runs.values()):
        await asyncio.wait_for(run.wait(), 20)


# A new chat.


def test_the_new_chat_page_offers_the_users_models_with_descriptions(bob_client, pipes, alice):
    restricted = ModelSettings.objects.create(model_id="other_pipe")
    restricted.allowed_users.add(alice)
    page = bob_client.get(reverse("chat:new")).text
    assert ">Helpful Pipe</option>" in page and "Answers politely." in page
    assert "Other Pipe" not in page  # not for bob


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("chat:new"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_a_user_without_models_is_told_so(bob_client):
    assert "No model is available to you yet" in bob_client.get(reverse("chat:new")).text


def test_the_model_panel_seeds_the_toggles_from_the_models_defaults(bob_client, toggle):
    panel = bob_client.get(reverse("chat:model_panel"), {"model": "helpful_pipe"}).text
    assert 'value="shouting" checked' in panel and "Shouting" in panel
    panel = bob_client.get(reverse("chat:model_panel"), {"model": "other_pipe"}).text
    assert 'value="shouting">' in panel  # offered (global), not on by default


async def test_sending_a_first_message_creates_the_chat_and_answers_it(bob, toggle):
    client = AsyncClient()
    await client.aforce_login(bob)
    form = {"model": "helpful_pipe", "content": "hi there\nsecond line", "filter_ids": "shouting"}
    response = await client.post(reverse("chat:new"), form)
    chat = await Chat.objects.aget(user=bob)
    assert response.status_code == 302 and response.url == reverse("chat:chat", args=[chat.id])
    assert chat.title == "hi there"
    assert chat.chat["models"] == ["helpful_pipe"] and chat.chat["filter_ids"] == ["shouting"]
    await wait_for_runs()
    answer = await Message.objects.aget(chat=chat, role="assistant")
    assert (answer.status, answer.content) == ("done", "You said: HI THERE\nSECOND LINE")
    preferences = await ChatPreferences.objects.aget(user=bob)
    assert preferences.default_model == "helpful_pipe"  # remembered for the next chat


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"model": "helpful_pipe", "content": "  "}, "Write a message first."),
        ({"model": "no_such_model", "content": "hi"}, "Pick one of the models offered."),
    ],
)
def test_a_first_message_that_cannot_be_sent_is_refused_and_kept(bob_client, pipes, form, reason):
    response = bob_client.post(reverse("chat:new"), form)
    assert response.status_code == 400 and reason in response.text
    assert form["content"] in response.text
    assert not Chat.objects.exists()


def test_the_default_model_is_picked_on_the_next_new_chat(bob_client, bob, pipes):
    ChatPreferences.objects.create(user=bob, default_model="other_pipe")
    page = bob_client.get(reverse("chat:new")).text
    assert '<option value="other_pipe" selected>' in page


# A chat.


def test_a_chat_page_shows_the_conversation_and_its_socket(bob_client, chat):
    page = bob_client.get(reverse("chat:chat", args=[chat.id])).text
    assert 'aria-label="Your message"' in page and "hello" in page
    # The socket's URL names the page (chat.dialogs: which page runs a plugin script).
    assert re.search(f'ws-connect="/ws/chat/{chat.id}/\\?tab=[0-9a-f-]{{36}}"', page)
    assert '<option value="helpful_pipe" selected>' in page


def test_another_users_chat_is_a_404_on_every_page(eve_client, chat):
    pages = [
        ("get", reverse("chat:chat", args=[chat.id]), {}),
        ("get", reverse("chat:rename", args=[chat.id]), {}),
        ("post", reverse("chat:rename", args=[chat.id]), {"title": "mine now"}),
        ("post", reverse("chat:delete", args=[chat.id]), {}),
        ("post", reverse("chat:choose_model", args=[chat.id]), {"model": "helpful_pipe"}),
        ("get", reverse("chat:edit_message", args=[chat.id]), {"message_id": "x"}),
        ("post", reverse("chat:run_action", args=[chat.id]), {"message_id": "x"}),
    ]
    for method, url, data in pages:
        assert getattr(eve_client, method)(url, data).status_code == 404, url
    chat.refresh_from_db()
    assert chat.title == "Mine"


def test_choosing_a_model_remembers_it_and_seeds_its_toggles(bob_client, bob, chat, toggle):
    url = reverse("chat:choose_model", args=[chat.id])
    response = bob_client.post(url, {"model": "helpful_pipe"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and 'aria-pressed="true"' in response.text
    chat.refresh_from_db()
    assert chat.chat["models"] == ["helpful_pipe"] and chat.chat["filter_ids"] == ["shouting"]
    assert ChatPreferences.objects.get(user=bob).default_model == "helpful_pipe"
    response = bob_client.post(url, {"model": "nope"}, headers={"HX-Request": "true"})
    assert response.status_code == 400 and response.headers["HX-Reswap"] == "none"


def test_a_toggle_is_switched_per_chat(bob_client, chat, toggle):
    url = reverse("chat:switch_filter", args=[chat.id, "shouting"])
    response = bob_client.post(url, {"on": "true"})
    assert 'aria-pressed="true"' in response.text
    chat.refresh_from_db()
    assert chat.chat["filter_ids"] == ["shouting"]
    bob_client.post(url, {"on": "false"})
    chat.refresh_from_db()
    assert chat.chat["filter_ids"] == []
    missing = bob_client.post(reverse("chat:switch_filter", args=[chat.id, "nope"]), {"on": "true"})
    assert missing.status_code == 404


def test_the_last_user_message_can_be_edited(bob_client, chat):
    message = Message.objects.get(chat=chat, role="user")
    url = reverse("chat:edit_message", args=[chat.id])
    form = bob_client.get(url, {"message_id": message.message_id}).text
    assert (
        "ws-send" in form and 'name="action" value="edit"' in form and ">hello</textarea>" in form
    )
    assert bob_client.get(url, {"message_id": "nope"}).status_code == 404


async def test_an_action_runs_on_a_message_and_answers_it_as_it_is_now(bob, make_function, pipes):
    await sync_to_async(make_function)("mark", content=ACTION, is_active=True, is_global=True)
    client = AsyncClient()
    await client.aforce_login(bob)
    await client.post(reverse("chat:new"), {"model": "helpful_pipe", "content": "hi"})
    await wait_for_runs()
    chat = await Chat.objects.aget(user=bob)
    answer = await Message.objects.aget(chat=chat, role="assistant")
    page = (await client.get(reverse("chat:chat", args=[chat.id]))).text
    assert 'aria-label="Answer tools"' in page and "<span>Mark</span>" in page
    form = {"message_id": answer.message_id, "action_id": "mark"}
    response = await client.post(reverse("chat:run_action", args=[chat.id]), form)
    assert response.status_code == 200 and f'id="msg-{answer.message_id}"' in response.text
    unknown = {**form, "action_id": "no_such_action"}
    response = await client.post(reverse("chat:run_action", args=[chat.id]), unknown)
    assert response.status_code == 404 and 'role="alert"' in response.text


# The sidebar.


def test_the_sidebar_lists_only_the_users_chats_newest_first(bob_client, chat, outsider):
    chat_create(user=outsider, document={"title": "Eve's secret"})
    newer = chat_create(user=chat.user, document={"title": "Newer"})
    page = bob_client.get(reverse("chat:new")).text
    assert 'aria-label="Chats"' in page and "Eve&#x27;s secret" not in page
    assert page.index(f"entry-{newer.id}") < page.index(f"entry-{chat.id}")


def test_the_sidebar_search_finds_titles_and_message_text(bob_client, chat):
    chat_create(user=chat.user, document={"title": "Recipes"})
    found = bob_client.get(reverse("chat:sidebar"), {"q": "HELLO"}).text
    assert "Mine" in found and "Recipes" not in found
    assert "Recipes" in bob_client.get(reverse("chat:sidebar"), {"q": "recip"}).text
    assert "No chat matches" in bob_client.get(reverse("chat:sidebar"), {"q": "zzz"}).text


def test_chats_are_grouped_by_date():
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    chats = [
        Chat(id=str(days), title=str(days), updated_at=now - timedelta(days=days))
        for days in (0, 1, 3, 20, 90)
    ]
    labels = [label for label, _ in date_groups(chats, now)]
    assert labels == ["Today", "Yesterday", "Previous 7 days", "Previous 30 days", "September 2026"]


def test_a_chat_is_renamed_in_place(bob_client, chat):
    url = reverse("chat:rename", args=[chat.id])
    assert 'name="title"' in bob_client.get(url).text
    response = bob_client.post(url, {"title": "  Renamed  "})
    assert response.status_code == 200 and ">Renamed</a>" in response.text
    chat.refresh_from_db()
    assert chat.title == "Renamed" and chat.chat["title"] == "Renamed"
    refused = bob_client.post(url, {"title": " "})
    assert refused.status_code == 400 and "cannot be empty" in refused.text
    chat.refresh_from_db()
    assert chat.title == "Renamed"


def test_deleting_the_open_chat_leaves_it_and_another_in_place(bob_client, chat):
    other = chat_create(user=chat.user, document={"title": "Other"})
    url = reverse("chat:delete", args=[other.id])
    response = bob_client.post(url, {"active": chat.id}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.text == ""
    url = reverse("chat:delete", args=[chat.id])
    response = bob_client.post(url, {"active": chat.id}, headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"] == reverse("chat:new")
    assert not Chat.objects.exists() and not Message.objects.exists()


# The layout.


@pytest.mark.parametrize("name", ["accounts:settings", "valves:list"])
def test_the_settings_pages_share_the_chat_layout(bob_client, name):
    page = bob_client.get(reverse(name)).text
    assert 'aria-label="Chats"' in page and reverse("chat:new") in page


def test_what_a_model_writes_is_rendered_inert(bob_client, chat):
    answer = Message.objects.create(
        chat=chat,
        message_id="evil",
        role="assistant",
        content="<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>",
        status="done",
    )
    Chat.objects.filter(pk=chat.pk).update(current_message_id=answer.message_id)
    page = bob_client.get(reverse("chat:chat", args=[chat.id])).text
    thread = page.split('id="thread"', 1)[1].split('id="problem"', 1)[0]
    assert "<script" not in thread and 'href="javascript' not in thread.lower()
    assert "<img" not in thread and "onerror=" not in thread.replace("onerror=alert", "")
    assert "&lt;script&gt;" in thread and "&lt;img src=x onerror=alert(1)&gt;" in thread
