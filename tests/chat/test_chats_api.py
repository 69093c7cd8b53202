"""Open WebUI's chat API (/api/v1/chats): the caller's chats, in Open WebUI's shapes."""

import json

import pytest
from django.test import Client

from chat.models import Chat, Message, MessageStatus
from chat.services.chats import chat_create
from tests.support.payloads import assert_refused_or_accepted, typed_cases

pytestmark = pytest.mark.django_db

CHATS = "/api/v1/chats"

# A chat as Open WebUI's frontend saves it: a question, two answers (a regenerated
# branch) and the current one shown.
DOCUMENT = {
    "id": "",
    "title": "Moon facts",
    "models": ["fake-small"],
    "params": {},
    "tags": [],
    "timestamp": 1767000000000,
    "files": [],
    "history": {
        "currentId": "a2",
        "messages": {
            "u1": {
                "id": "u1",
                "parentId": None,
                "childrenIds": ["a1", "a2"],
                "role": "user",
                "content": "How far is the moon?",
                "timestamp": 1767000000,
                "models": ["fake-small"],
            },
            "a1": {
                "id": "a1",
                "parentId": "u1",
                "childrenIds": [],
                "role": "assistant",
                "content": "Far.",
                "model": "fake-small",
                "modelName": "Fake small",
                "modelIdx": 0,
                "timestamp": 1767000001,
                "done": True,
            },
            "a2": {
                "id": "a2",
                "parentId": "u1",
                "childrenIds": [],
                "role": "assistant",
                "content": "About 384,400 km.",
                "model": "fake-small",
                "timestamp": 1767000002,
                "done": True,
                "statusHistory": [{"description": "Looked it up", "done": True}],
                "sources": [{"source": {"name": "almanac"}, "document": ["384,400 km"]}],
                "usage": {"total_tokens": 12},
                "annotation": {"rating": 1},
            },
        },
    },
    "messages": [],
}


def post(client: Client, path: str, body) -> object:
    return client.post(path, json.dumps(body), content_type="application/json")


def bobs_chat(bob, document=DOCUMENT) -> Chat:
    return chat_create(user=bob, document=json.loads(json.dumps(document)))


def anonymous() -> Client:
    return Client()


# POST /new


def test_new_chat_answers_open_webuis_chat_response(bob_client, bob):
    response = post(bob_client, f"{CHATS}/new", {"chat": DOCUMENT})
    assert response.status_code == 200, response.content
    out = response.json()
    assert set(out) == {
        "id",
        "user_id",
        "title",
        "chat",
        "updated_at",
        "created_at",
        "share_id",
        "archived",
        "pinned",
        "meta",
        "folder_id",
        "current_message_id",
    }
    assert (out["user_id"], out["title"], out["current_message_id"]) == (
        str(bob.pk),
        "Moon facts",
        "a2",
    )
    assert out["chat"]["history"] == DOCUMENT["history"]
    assert [m["id"] for m in out["chat"]["messages"]] == ["u1", "a2"]
    assert out["chat"]["models"] == ["fake-small"] and isinstance(out["created_at"], int)


def test_new_chat_keeps_each_message_as_a_row(bob_client):
    chat_id = post(bob_client, f"{CHATS}/new", {"chat": DOCUMENT}).json()["id"]
    rows = {m.message_id: m for m in Message.objects.filter(chat_id=chat_id)}
    assert set(rows) == {"u1", "a1", "a2"}
    answer = rows["a2"]
    assert (answer.role, answer.model, answer.status) == ("assistant", "fake-small", "done")
    assert answer.parent == rows["u1"] and answer.content == "About 384,400 km."
    assert answer.sources == DOCUMENT["history"]["messages"]["a2"]["sources"]
    assert answer.events == [
        {"type": "status", "data": {"description": "Looked it up", "done": True}}
    ]
    assert answer.usage == {"total_tokens": 12} and answer.data["annotation"] == {"rating": 1}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({}, 422, id="no-chat"),
        pytest.param({"chat": "text"}, 422, id="chat-not-an-object"),
        pytest.param({"chat": {"history": {"messages": []}}}, 400, id="messages-not-a-map"),
        pytest.param(
            {"chat": {"history": {"messages": {"m": "hi"}}}}, 400, id="message-not-an-object"
        ),
        pytest.param({"chat": {"messages": "hi"}}, 400, id="list-not-a-list"),
        pytest.param(
            {"chat": {"history": {"messages": {"m": {"role": "user", "files": "x"}}}}},
            400,
            id="files-not-a-list",
        ),
        pytest.param({"chat": {"history": {"messages": {"x" * 300: {}}}}}, 400, id="long-id"),
        pytest.param({"chat": {}, "folder_id": "f1"}, 404, id="no-such-folder"),
    ],
)
def test_new_chat_refuses_what_is_not_open_webuis_shape(bob_client, body, status):
    response = post(bob_client, f"{CHATS}/new", body)
    assert response.status_code == status, response.content
    assert "detail" in response.json()
    assert not Chat.objects.exists()


def test_new_chat_reads_open_webuis_oldest_flat_message_list(bob_client):
    document = {
        "title": "Old",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    }
    out = post(bob_client, f"{CHATS}/new", {"chat": document}).json()
    history = out["chat"]["history"]
    assert [m["content"] for m in out["chat"]["messages"]] == ["hi", "yo"]
    assert history["messages"][history["currentId"]]["parentId"] == "message-0"


def test_new_chat_strips_nul_characters(bob_client):
    document = {"title": "a\x00b", "history": {"messages": {"m": {"content": "x\x00y"}}}}
    out = post(bob_client, f"{CHATS}/new", {"chat": document}).json()
    assert out["title"] == "ab" and out["chat"]["history"]["messages"]["m"] == {"content": "xy"}


# GET / and /list


def test_list_is_the_callers_chats_newest_first(bob_client, bob, outsider):
    first, second = bobs_chat(bob), bobs_chat(bob, {"title": "Second"})
    bobs_chat(outsider)
    Chat.objects.create(user=bob, title="Archived", archived=True)
    pinned = Chat.objects.create(user=bob, title="Pinned", pinned=True)
    for path in (f"{CHATS}/", f"{CHATS}/list"):
        out = bob_client.get(path).json()
        assert [c["id"] for c in out] == [second.id, first.id]
        assert set(out[0]) == {"id", "title", "updated_at", "created_at"}
    with_pinned = bob_client.get(f"{CHATS}/?include_pinned=true").json()
    assert pinned.id in {c["id"] for c in with_pinned}


def test_list_pages_hold_sixty_chats(bob_client, bob):
    for n in range(61):
        Chat.objects.create(user=bob, title=f"c{n}")
    assert len(bob_client.get(f"{CHATS}/?page=1").json()) == 60
    assert len(bob_client.get(f"{CHATS}/list?page=2").json()) == 1
    assert bob_client.get(f"{CHATS}/?page=3").json() == []
    assert bob_client.get(f"{CHATS}/?page=0").status_code == 422
    assert bob_client.get(f"{CHATS}/?page=x").status_code == 422


# GET /{id}


def test_get_answers_the_chat_with_its_history_from_the_rows(bob_client, bob):
    chat = bobs_chat(bob)
    Message.objects.filter(chat=chat, message_id="a2").update(content="Changed in the row.")
    out = bob_client.get(f"{CHATS}/{chat.id}").json()
    assert out["chat"]["history"]["messages"]["a2"]["content"] == "Changed in the row."
    assert out["chat"]["messages"][-1]["content"] == "Changed in the row."


# POST /{id}


def test_update_merges_the_document_and_keeps_unlisted_messages(bob_client, bob):
    chat = bobs_chat(bob)
    edited = {
        "title": "Renamed",
        "history": {
            "currentId": "a1",
            "messages": {"a1": {**DOCUMENT["history"]["messages"]["a1"], "content": "Far away."}},
        },
    }
    out = post(bob_client, f"{CHATS}/{chat.id}", {"chat": edited}).json()
    messages = out["chat"]["history"]["messages"]
    assert out["title"] == "Renamed" and out["chat"]["models"] == ["fake-small"]
    assert set(messages) == {"u1", "a1", "a2"} and messages["a1"]["content"] == "Far away."
    assert out["current_message_id"] == "a1"


def test_update_deletes_listed_messages_with_their_replies(bob_client, bob):
    chat = bobs_chat(bob)
    out = post(bob_client, f"{CHATS}/{chat.id}", {"chat": {}, "deleted_message_ids": ["u1"]}).json()
    assert out["chat"]["history"] == {"messages": {}, "currentId": None}
    assert not Message.objects.filter(chat=chat).exists()


def test_update_leaves_a_message_a_run_is_writing_alone(bob_client, bob):
    from datetime import timedelta

    from django.utils import timezone

    chat = bobs_chat(bob)
    lease = timezone.now() + timedelta(hours=1)
    Message.objects.filter(chat=chat, message_id="a2").update(
        status=MessageStatus.STREAMING, content="so far", lease_expires_at=lease
    )
    stale = {"history": {"messages": {"a2": {"id": "a2", "content": "", "done": False}}}}
    body = {"chat": stale, "deleted_message_ids": ["a2"]}
    out = post(bob_client, f"{CHATS}/{chat.id}", body).json()
    answer = out["chat"]["history"]["messages"]["a2"]
    assert (answer["content"], answer["done"]) == ("so far", False)


# Access: owner, another user, anonymous, for every endpoint.

ENDPOINTS = [
    pytest.param("get", "{chats}/{id}", None, id="get"),
    pytest.param("post", "{chats}/{id}", {"chat": {"title": "Hijacked"}}, id="update"),
    pytest.param("delete", "{chats}/{id}", None, id="delete"),
]


def _call(client: Client, method: str, path: str, body):
    if method == "post":
        return post(client, path, body)
    return getattr(client, method)(path)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_the_owner_reaches_their_chat(bob_client, bob, method, path, body):
    chat = bobs_chat(bob)
    response = _call(bob_client, method, path.format(chats=CHATS, id=chat.id), body)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("caller", ["outsider", "alice"])
def test_another_users_chat_is_a_404_even_for_staff(request, bob, method, path, body, caller):
    chat = bobs_chat(bob)
    client = Client()
    client.force_login(request.getfixturevalue(caller))
    response = _call(client, method, path.format(chats=CHATS, id=chat.id), body)
    assert response.status_code == 404, response.content
    chat.refresh_from_db()
    assert chat.title == "Moon facts" and Message.objects.filter(chat=chat).count() == 3


def test_a_missing_chat_is_a_404(bob_client):
    assert bob_client.get(f"{CHATS}/nope").status_code == 404
    assert bob_client.delete(f"{CHATS}/nope").status_code == 404


def test_delete_removes_the_chat_and_its_messages(bob_client, bob):
    chat = bobs_chat(bob)
    assert bob_client.delete(f"{CHATS}/{chat.id}").json() is True
    assert not Chat.objects.exists() and not Message.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("post", "{chats}/new", {"chat": {}}, id="new"),
        pytest.param("get", "{chats}/", None, id="list"),
        pytest.param("get", "{chats}/list", None, id="list-alias"),
        *ENDPOINTS,
    ],
)
def test_anonymous_callers_get_401(bob, method, path, body):
    chat = bobs_chat(bob)
    response = _call(anonymous(), method, path.format(chats=CHATS, id=chat.id), body)
    assert response.status_code == 401


def test_an_api_key_reaches_the_keys_owner_chats(bob, bob_key, outsider):
    mine, theirs = bobs_chat(bob), bobs_chat(outsider)
    client = Client(headers={"Authorization": f"Bearer {bob_key}"})
    assert [c["id"] for c in client.get(f"{CHATS}/").json()] == [mine.id]
    assert client.get(f"{CHATS}/{theirs.id}").status_code == 404
    created = post(client, f"{CHATS}/new", {"chat": {"title": "By key"}})
    assert created.status_code == 200 and created.json()["user_id"] == str(bob.pk)


# Wrong-typed documents are a 4xx, never a 500.

MESSAGE = {
    "id": "m",
    "parentId": None,
    "childrenIds": [],
    "role": "user",
    "content": "hi",
    "model": "x",
    "timestamp": 1767000000,
    "done": True,
    "statusHistory": [],
    "sources": [],
    "files": [],
    "embeds": [],
    "usage": {},
    "error": None,
    "annotation": {},
}
FORM = {
    "chat": {"title": "T", "history": {"currentId": "m", "messages": {"m": MESSAGE}}},
    "folder_id": None,
    "deleted_message_ids": [],
}
ANY = {"null", "bool", "int", "float", "string", "array", "object"}
MESSAGE_FIELDS = {f"chat.history.messages.m.{key}": ANY for key in MESSAGE}
MESSAGE_FIELDS |= {
    f"chat.history.messages.m.{key}": {"null", "array"} for key in ("sources", "files", "embeds")
}
MESSAGE_FIELDS["chat.history.messages.m.statusHistory"] = {"null", "array"}
FORM_FIELDS = {
    "chat": {"object"},
    "chat.title": ANY,
    "chat.history": {"null", "object"},
    "chat.history.messages": {"object"},
    "chat.history.currentId": ANY,
    "chat.history.messages.m": {"object"},
    **MESSAGE_FIELDS,
    "folder_id": {"null"},  # there are no folders: any id is a 404
    "deleted_message_ids": {"null", "array"},
}


@pytest.mark.parametrize(("body", "must_refuse"), list(typed_cases(FORM, FORM_FIELDS)))
def test_wrong_typed_chat_forms_are_a_4xx_never_a_500(bob_client, bob, body, must_refuse):
    created = post(bob_client, f"{CHATS}/new", body)
    assert_refused_or_accepted(created, must_refuse)
    updated = post(bob_client, f"{CHATS}/{bobs_chat(bob).id}", body)
    # An update names no folder (it keeps the chat where it is), as Open WebUI's.
    assert_refused_or_accepted(updated, must_refuse and body.get("folder_id") is None)


def test_the_well_typed_form_those_cases_start_from_is_answered(bob_client):
    assert post(bob_client, f"{CHATS}/new", FORM).status_code == 200
