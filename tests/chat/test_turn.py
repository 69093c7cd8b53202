"""chat.services.turn: what the chunks and events of one turn make of its message."""

import pytest

from chat.services.turn import Change, Turn
from functions.services.events import parse_event


def chunk(text: str | None = None, usage: dict | None = None) -> dict:
    data = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}}]}
    if text is not None:
        data["choices"][0]["delta"]["content"] = text
    if usage:
        data["usage"] = usage
    return data


def test_chunks_add_their_text_and_the_last_usage():
    turn = Turn()
    assert turn.take_batch([chunk("a"), chunk("b"), chunk(None, {"total_tokens": 3})]) == "ab"
    assert turn.take_batch([chunk("c")]) == "c"
    assert (turn.content, turn.usage, turn.error) == ("abc", {"total_tokens": 3}, None)


def test_an_error_frame_fails_the_turn_without_adding_text():
    turn = Turn()
    turn.take_batch([chunk("partial")])
    frame = {"error": {"message": "Function flaky failed: boom", "type": "function_error"}}
    assert turn.take_batch([frame]) == ""
    assert turn.content == "partial" and turn.error == {"content": "Function flaky failed: boom"}
    assert turn.error_frame == frame


@pytest.mark.parametrize(
    ("raw", "change", "expect"),
    [
        pytest.param(
            {"type": "message", "data": {"content": " more"}},
            Change("delta", " more"),
            {"content": "so far more"},
            id="message-adds",
        ),
        pytest.param(
            {"type": "chat:message:delta", "data": {"content": "!"}},
            Change("delta", "!"),
            {"content": "so far!"},
            id="delta-alias-adds",
        ),
        pytest.param(
            {"type": "replace", "data": {"content": "new"}},
            Change("content", "new"),
            {"content": "new"},
            id="replace-replaces",
        ),
        pytest.param(
            {"type": "source", "data": {"source": {"name": "doc"}, "document": ["x"]}},
            None,
            {"sources": [{"source": {"name": "doc"}, "document": ["x"], "metadata": None}]},
            id="source-adds-a-source",
        ),
        pytest.param(
            {"type": "chat:message:files", "data": {"files": [{"id": "f"}]}},
            None,
            {"files": [{"id": "f"}]},
            id="files-sets-files",
        ),
        pytest.param(
            {"type": "chat:message:error", "data": {"error": {"content": "bad"}}},
            None,
            {"error": {"content": "bad"}},
            id="error-fails",
        ),
        pytest.param(
            {"type": "status", "data": {"description": "working", "done": True}},
            None,
            {
                "events": [
                    {
                        "type": "status",
                        "data": {"description": "working", "done": True, "hidden": None},
                    }
                ]
            },
            id="status-is-kept",
        ),
        pytest.param(
            {"type": "error", "data": {"description": "the API key is wrong"}},
            None,
            {"error": {"content": "the API key is wrong"}},
            id="a-plugins-error-fails",
        ),
        pytest.param(
            {
                "type": "chat:completion",
                "data": {
                    "content": "whole answer",
                    "usage": {"total_tokens": 7},
                    "sources": [{"source": {"name": "s"}}],
                    "done": True,
                },
            },
            None,
            {
                "content": "whole answer",
                "usage": {"total_tokens": 7},
                "sources": [{"source": {"name": "s"}}],
                "events": [],
            },
            id="completion-replaces-and-adds",
        ),
        pytest.param(
            {"type": "chat:completion", "data": {"error": {"message": "upstream down"}}},
            None,
            {"content": "so far", "error": {"content": "upstream down"}},
            id="completion-error-fails",
        ),
        pytest.param(
            {"type": "chat:title", "data": "  Moon\ntrip "},
            None,
            {"title": "Moon trip"},
            id="title-names-the-chat",
        ),
        pytest.param(
            {"type": "chat:tags", "data": ["space", {"name": "moon"}, "space", 3, ""]},
            None,
            {"tags": ["space", "moon"]},
            id="tags-tag-the-chat",
        ),
        pytest.param(
            {"type": "notification", "data": {"type": "success", "content": "hi"}},
            None,
            {"events": []},
            id="notification-is-shown-not-kept",
        ),
    ],
)
def test_each_event_does_what_open_webui_does_with_it(raw, change, expect):
    turn = Turn(content="so far")
    event = parse_event(raw)
    got = turn.take_event(event)
    expected = change or Change("event", event.as_dict())
    assert (got.kind, got.value) == (expected.kind, expected.value)
    state = turn.state()
    assert {key: state[key] for key in expect} == expect
    # Its listeners are told the columns it changed, with their values.
    before = Turn(content="so far").state()
    columns = {"content", "sources", "files", "embeds", "usage", "error"}
    changed = {key for key in columns & set(expect) if expect[key] != before[key]}
    assert got.columns == ({key: state[key] for key in changed} if got.kind == "event" else {})


def test_embeds_add_up_unless_replaced():
    turn = Turn()
    turn.take_event(parse_event({"type": "embeds", "data": {"embeds": ["<a>"]}}))
    turn.take_event(parse_event({"type": "embeds", "data": {"embeds": ["<b>"]}}))
    assert turn.embeds == ["<a>", "<b>"]
    turn.take_event(parse_event({"type": "embeds", "data": {"embeds": ["<c>"], "replace": True}}))
    assert turn.embeds == ["<c>"] and turn.events == []


def test_events_folded_into_columns_are_not_kept_twice():
    turn = Turn()
    for raw in [
        {"type": "message", "data": {"content": "x"}},
        {"type": "source", "data": {}},
        {"type": "chat:completion", "data": {"content": "y"}},
        {"type": "notification", "data": {"content": "hi"}},
        {"type": "chat:title", "data": "kept"},
        {"type": "x-custom", "data": {"any": "thing"}},
    ]:
        turn.take_event(parse_event(raw))
    assert [e["type"] for e in turn.events] == ["chat:title", "x-custom"]


def test_a_turn_stores_only_the_columns_it_set():
    turn = Turn()
    turn.take_batch([chunk("hi")])
    assert turn.values() == {"content": "hi", "events": []}
    turn.take_event(parse_event({"type": "source", "data": {"source": {"name": "s"}}}))
    turn.take_batch([chunk(None, {"total_tokens": 1})])
    assert set(turn.values()) == {"content", "events", "sources", "usage"}
    assert set(turn.state()) == {
        "content",
        "events",
        "sources",
        "files",
        "embeds",
        "usage",
        "error",
        "title",
        "tags",
    }
