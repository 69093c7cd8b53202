"""chat's data migration: the messages of documents saved before Message rows existed."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("chat", "0003_messages")]
AFTER = [("chat", "0004_messages_from_documents")]

HISTORY = {
    "title": "Saved before",
    "history": {
        "currentId": "a",
        "messages": {
            "a": {
                "id": "a",
                "parentId": "u",
                "childrenIds": [],
                "role": "assistant",
                "content": "answer",
                "model": "m",
                "done": True,
                "timestamp": 1767000001,
                "statusHistory": [{"description": "ok", "done": True}],
                "sources": [{"source": {"name": "s"}}],
                "rating": 1,
            },
            "u": {
                "id": "u",
                "parentId": None,
                "childrenIds": ["a"],
                "role": "user",
                "content": "q",
            },
        },
    },
}
FLAT = {
    "title": "Oldest",
    "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo", "done": False},
    ],
}


@pytest.fixture
def latest_schema_after():
    """Leave the database at the latest migrations, whichever the test went back to."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_existing_documents_messages_become_rows(django_user_model, latest_schema_after):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = django_user_model.objects.create_user("old")
    Chat = old.get_model("chat", "Chat")
    Chat.objects.create(id="c1", user_id=user.pk, title="Saved before", chat=HISTORY)
    Chat.objects.create(id="c2", user_id=user.pk, title="Oldest", chat=FLAT)
    Chat.objects.create(id="c3", user_id=user.pk, title="Empty", chat={})

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    from chat.models import Chat as NewChat
    from chat.selectors import chat_document

    saved = NewChat.objects.get(pk="c1")
    assert saved.current_message_id == "a"
    expected = HISTORY["history"]["messages"]
    rendered = chat_document(chat=saved)["history"]["messages"]
    assert rendered["a"] == expected["a"]
    assert rendered["u"] == expected["u"]
    oldest = chat_document(chat=NewChat.objects.get(pk="c2"))
    assert [m["content"] for m in oldest["messages"]] == ["hi", "yo"]
    assert oldest["messages"][-1]["done"] is True  # unfinished long ago: interrupted
    assert saved.messages.get(message_id="a").status == "done"
    assert NewChat.objects.get(pk="c2").messages.get(message_id="message-1").status == "interrupted"
    assert not NewChat.objects.get(pk="c3").messages.exists()
