"""chat.services.history: Open WebUI's history shape to and from Message rows."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from chat.models import Message, MessageStatus
from chat.services.history import (
    document_nodes,
    effective_status,
    message_values,
    moment_of,
    render_history,
    status_of_new,
)


def node_ids(document: dict) -> list[str]:
    return [message_id for message_id, _ in document_nodes(document)]


def test_parents_come_before_children_in_children_ids_order():
    messages = {
        "b2": {"parentId": "u"},
        "u": {"childrenIds": ["b1", "b2"]},
        "b1": {"parentId": "u"},
        "c": {"parentId": "b2"},
    }
    assert node_ids({"history": {"messages": messages}}) == ["u", "b1", "b2", "c"]


def test_a_parent_cycle_does_not_lose_its_messages():
    messages = {"x": {"parentId": "y"}, "y": {"parentId": "x"}, "r": {}}
    nodes = dict(document_nodes({"history": {"messages": messages}}))
    assert set(nodes) == {"r", "x", "y"} and nodes["x"]["parentId"] is None


def test_a_document_without_messages_names_none():
    assert document_nodes({"title": "x"}) is None
    assert document_nodes({"history": {"messages": {}}}) == []


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"history": "x"}, id="history-not-an-object"),
        pytest.param({"history": {"messages": [1]}}, id="messages-a-list"),
        pytest.param({"messages": [1]}, id="list-of-non-objects"),
        pytest.param({"history": {"messages": {"m": {"sources": {}}}}}, id="sources-not-a-list"),
    ],
)
def test_what_is_not_a_history_is_refused(document):
    with pytest.raises(ValidationError) as info:
        for _, raw in document_nodes(document):
            message_values(raw)
    assert info.value.code == "invalid_message"


def test_a_client_left_answer_unfinished_reads_as_interrupted():
    assert status_of_new(message_values({"done": False})) == MessageStatus.INTERRUPTED
    assert status_of_new(message_values({"error": "boom"})) == MessageStatus.ERROR
    assert status_of_new(message_values({"content": "x"})) == MessageStatus.DONE


@pytest.mark.parametrize(
    ("timestamp", "seconds"),
    [(1767000000, 1767000000), (1767000000123, 1767000000), ("x", None), (True, None), (-5, None)],
)
def test_timestamps_are_seconds_or_milliseconds(timestamp, seconds):
    moment = moment_of(timestamp)
    assert (int(moment.timestamp()) if moment else None) == seconds


def _row(pk: int, message_id: str, parent=None, **fields) -> Message:
    message = Message(pk=pk, message_id=message_id, parent_id=parent, **fields)
    message.created_at = timezone.now()
    return message


def test_rows_render_the_keys_they_were_written_with():
    parts = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "u"}}]
    rows = [
        _row(1, "u", role="user", content="", data={"id": None, "content": parts, "extra": 1}),
        _row(2, "a", parent=1, content="hi", data={"content": None, "parentId": None}),
    ]
    history, path = render_history(rows, "a")
    assert history["messages"]["u"] == {"id": "u", "content": parts, "extra": 1}
    assert history["messages"]["a"] == {"content": "hi", "parentId": "u"}
    assert [m for m in path] == [history["messages"]["u"], history["messages"]["a"]]


def test_a_streaming_answer_past_its_lease_is_interrupted():
    now = timezone.now()
    live = Message(status=MessageStatus.STREAMING, lease_expires_at=now + timedelta(seconds=5))
    dead = Message(status=MessageStatus.STREAMING, lease_expires_at=now - timedelta(seconds=5))
    assert effective_status(live, now) == MessageStatus.STREAMING
    assert effective_status(dead, now) == MessageStatus.INTERRUPTED
    assert effective_status(Message(status=MessageStatus.STREAMING), now) == "interrupted"
